"""`explain`: stage localisation, temporal offset and named causes, on injected defects."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.diagnosis.audio import mouth_thumbnail
from harness.diagnosis.offset import temporal_offset
from harness.diagnosis.stages import localise_stage
from harness.verdicts.results import read_results

pytestmark = pytest.mark.long

FAKE_PORTS = Path(__file__).parent / "fake_ports"
STAGES = ("mel", "embeddings", "padded_features", "audio_windows", "generator_outputs")


RECT = (8, 8, 72, 72)


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).integers(0, 256, (n, 80, 80, 3), dtype=np.uint8))


def _ref_mouths(frames: list[np.ndarray]) -> np.ndarray:
    return np.stack([mouth_thumbnail(f, RECT) for f in frames])


@pytest.mark.parametrize("shift", [-3, -1, 1, 2, 3])
def test_offset_is_found(shift):
    ref = _frames(20)
    cand = [ref[min(max(i + shift, 0), 19)] for i in range(12)]
    found = temporal_offset(cand, _ref_mouths(ref), [RECT] * 20)
    assert found["explains"] and found["offset"] == shift
    assert found["difference"][str(shift)] == 0.0 and f"frame offset {shift:+d}" in found["text"]


def test_no_offset_when_aligned_or_unrelated():
    ref = _frames(20)
    noisy = [np.clip(f.astype(int) + np.random.default_rng(1).integers(-20, 20, f.shape), 0, 255).astype(np.uint8)
             for f in ref[:12]]
    mouths, rects = _ref_mouths(ref), [RECT] * 20
    assert not temporal_offset(noisy, mouths, rects)["explains"]
    assert not temporal_offset(_frames(12, seed=2), mouths, rects)["explains"]  # unrelated: no shift helps
    assert temporal_offset(ref[:4], mouths[:4], rects) is None  # too short to test +-3


def _drift(max_abs: float) -> dict:
    return {"max_abs": max_abs, "mean_abs": max_abs / 2, "rel_l2": max_abs, "cosine": 1.0}


def test_first_stage_out_of_tolerance_is_named():
    features = {s: _drift(0.0) for s in STAGES} | {"embeddings": _drift(0.03), "generator_outputs": _drift(0.5)}
    found = localise_stage(features, ["PSNR 20.00 dB on frame 1 < 45 dB"], 1e-4)
    assert found["first_stage"] == "embeddings"
    assert found["text"].startswith("first stage out of tolerance: embeddings (max abs 0.03 > 0.0001)")
    assert "mel (max abs 0 <= 0.0001)" in found["text"]


def test_frames_only_divergence_points_after_the_generator():
    found = localise_stage({s: _drift(0.0) for s in STAGES}, ["PSNR 20.00 dB on frame 1 < 45 dB"], 1e-4)
    assert found["first_stage"] == "frames" and "although the generator output agrees" in found["text"]
    unseen = localise_stage({}, ["PSNR 20.00 dB on frame 1 < 45 dB"], 1e-4)
    assert unseen["first_stage"] == "frames" and "dumped no stages" in unseen["text"]
    assert localise_stage({s: _drift(0.0) for s in STAGES}, [], 1e-4)["first_stage"] is None


def test_a_stage_with_a_shape_error_is_out_of_tolerance():
    found = localise_stage({"mel": _drift(0.0), "embeddings": {"error": "shape (3, 7) differs"}}, [], 1e-4)
    assert found["first_stage"] == "embeddings" and "shape (3, 7) differs" in found["text"]


BASE = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav"]
frames = 6
[run]
output = "{out}"
profile = "desktop"
"""


def _port(name: str, args: str) -> str:
    command = ", ".join(f'"{a}"' for a in [sys.executable, str(FAKE_PORTS / "defect_port.py"), "--sanders", "{pack}",
                                           "--audio", "{audio}", "--models", "{models}", "--output", "{output}",
                                           "--frames", "{frames}"] + args.split())
    return f'[backends.{name}]\nkind = "subprocess"\ncommand = [{command}]\noutput_pattern = "frame_%05d.png"\n'


def _explain(tmp_path: Path, pack: Path, models: Path, backends: str, capsys) -> tuple[int, dict, str]:
    config = tmp_path / "parity.toml"
    config.write_text(BASE.format(pack=pack, models=models, out=tmp_path / "out") + backends)
    code = main(["explain", str(config), "--quiet"])
    out = capsys.readouterr().out
    results = read_results(tmp_path / "out" / "results.json")
    assert main(["explain", str(tmp_path / "out" / "results.json")]) == code  # the file says the same
    assert capsys.readouterr().out.split("\nresults ->")[0] == out.split("\nresults ->")[0]
    with capsys.disabled():  # the injected-defect table: what explain said, and how long the diagnosis took
        print("\n" + out.split("\nresults ->")[0])
    return code, results, out


def test_canonical_port_has_no_divergence(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    code, results, out = _explain(tmp_path, synthetic_pack, tiny_models_dir, _port("port", ""), capsys)
    assert code == 0 and results["runs"][0]["status"] == "passed"
    assert "port / audio.wav: PASSED\n  - no divergence" in out


def test_offset_by_one_frame_is_named_and_reported(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    from reports.html import render_html
    code, results, out = _explain(tmp_path, synthetic_pack, tiny_models_dir, _port("late", "--offset 1"), capsys)
    found = results["runs"][0]["diagnosis"]
    assert code == 1 and found["offset"]["offset"] == 1, found["offset"]
    assert "frame offset +1: the candidate runs 1 frame ahead of the reference" in out
    html = render_html([tmp_path / "out" / "results.json"], tmp_path / "report").read_text()
    assert '<ul class="causes"><li>frame offset +1: the candidate runs 1 frame ahead' in html


def test_two_defects_at_once_in_a_port_are_named(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    from reference.conventions import Conventions
    backends = _port("two", "--conventions channel_order=rgb,audio_window=tile")
    code, results, out = _explain(tmp_path, synthetic_pack, tiny_models_dir, backends, capsys)
    found = results["runs"][0]["diagnosis"]["conventions"]
    assert code == 1 and found["explained"], found["text"]
    assert Conventions.parse(found["conventions"]).variants() == {"input_channels": "rgb", "output_channels": "rgb",
                                                                  "audio_window": "tile"}
    for knob in ("input_channels=rgb", "output_channels=rgb", "audio_window=tile"):
        assert f": {knob} (canonical" in out


def test_fp16_is_localised_to_a_stage_and_a_layer(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    code, results, out = _explain(tmp_path, synthetic_pack, tiny_models_dir,
                                  '[backends.half]\nkind = "fp16"\nthresholds = { feature_max_abs = 1e-6 }\n', capsys)
    found = results["runs"][0]["diagnosis"]
    assert code == 1 and found["stages"]["first_stage"] == "embeddings", found["stages"]["text"]
    assert found["layers"]["model"] == "audio_encoder.onnx" and found["layers"]["node"] is not None
    assert "first stage out of tolerance: embeddings" in out and "first divergent layer of audio_encoder.onnx" in out



def test_a_port_replaying_aud_ave_ignores_its_audio(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    code, results, out = _explain(tmp_path, synthetic_pack, tiny_models_dir,
                                  _port("ghost", "--conventions audio_source=aud_ave"), capsys)
    found = results["runs"][0]["diagnosis"]
    assert code == 1 and found["conventions"]["conventions"] == "audio_source=aud_ave"
    assert "output ignores the input audio: it matches the reference driven by the pack's aud_ave.bin" in out


def test_a_port_dumping_stages_is_localised_to_its_first_divergent_stage(tmp_path, synthetic_pack, tiny_models_dir,
                                                                          capsys):
    dumps = "".join(f'[backends.htk.stage_dumps.{name}]\npattern = "{{output}}/stages/{name}.npy"\n'
                    for name in ("mel", "embeddings", "audio_windows"))
    backends = _port("htk", "--conventions mel_scale=htk --dump-stages {output}/stages") + dumps
    code, results, out = _explain(tmp_path, synthetic_pack, tiny_models_dir, backends, capsys)
    found = results["runs"][0]["diagnosis"]
    assert code == 1 and found["stages"]["first_stage"] == "mel", found["stages"]["text"]
    assert "first stage out of tolerance: mel (max abs" in out and "(not dumped: padded_features, generator_outputs)" in out
    assert found["conventions"]["conventions"] == "mel_scale=htk"
