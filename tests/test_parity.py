"""Parity runs: config checking, results.json, verdicts, exit codes, compare, the pytest plugin."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from harness.backends.base import Backend, BackendRun, RunInputs
from harness.cli import main
from harness.runs.config import BackendSpec, ConfigError, load_config
from harness.runs.parity import run_backend, run_reference
from harness.verdicts.results import read_results, write_results
from harness.verdicts.tolerances import PROFILES, Thresholds
from reference.errors import InputError

pytestmark = pytest.mark.long

FAKE_PORTS = Path(__file__).parent / "fake_ports"

BASE = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav", "silence"]
frames = 6
[run]
output = "{out}"
profile = "desktop"
"""


def write_config(tmp_path: Path, pack: Path, models: Path, backends: str, base: str = BASE) -> Path:
    path = tmp_path / "parity.toml"
    path.write_text(base.format(pack=pack, models=models, out=tmp_path / "out") + backends)
    return path


@pytest.mark.parametrize("backends, message", [
    ("[backends.a]\nkind = \"onnxruntime\"\nprovder = \"cpu\"\n", "unknown option 'provder'"),
    ("[backends.a]\nkind = \"onnxruntime\"\nintra_op_threads = \"two\"\n", "'intra_op_threads' must be int"),
    ("[backends.a]\nkind = \"tensorflow\"\n", "unknown kind 'tensorflow'"),
    ("[backends.a]\nkind = \"fp16\"\nthresholds = { psnr = 3 }\n", "unknown threshold 'psnr'"),
    ("[backends.a]\nkind = \"fp16\"\n[extra]\n", "unknown section [extra]"),
    ("", "needs at least one backend"),
])
def test_config_errors_name_the_key(tmp_path, synthetic_pack, tiny_models_dir, backends, message):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


@pytest.mark.parametrize("data_line, message", [
    ("frames = \"six\"", r"\[data\].frames must be int"),
    ("fps = 25", r"unknown key \[data\].fps"),
    ("audio = [\"nowhere.wav\"]", r"\[data\].audio\[0\] = 'nowhere.wav'.*does not exist"),
])
def test_data_errors_name_the_key(tmp_path, synthetic_pack, tiny_models_dir, data_line, message):
    base = BASE.replace("frames = 6", "") .replace("[run]", f"{data_line}\n[run]")
    if "audio =" in data_line:
        base = base.replace('audio = ["{pack}/audio.wav", "silence"]\n', "")
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, "[backends.a]\nkind = \"fp16\"\n", base)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    assert main(["run", "--config", str(path), "--quiet"]) == 2


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory, synthetic_pack, tiny_models_dir):
    tmp = tmp_path_factory.mktemp("parity")
    port = FAKE_PORTS / "crash_port.py"
    backends = f"""
[backends.ort_cpu]
kind = "onnxruntime"
provider = "cpu"
[backends.fp16]
kind = "fp16"
thresholds = {{ profile = "mobile", feature_max_abs = 0.05 }}
[backends."reference[channel_order=rgb]"]
[backends.coreml]
kind = "onnxruntime"
provider = "coreml"
[backends.crashing_port]
kind = "subprocess"
command = ["{sys.executable}", "{port}", "--sanders", "{{pack}}", "--audio", "{{audio}}", "--output", "{{output}}", "--frames", "{{frames}}"]
"""
    path = write_config(tmp, synthetic_pack, tiny_models_dir, backends)
    rc = main(["run", "--config", str(path), "--quiet"])
    return rc, tmp / "out" / "results.json"


def _runs(results: dict, backend: str) -> list[dict]:
    return [r for r in results["runs"] if r["backend"] == backend]


def test_parity_run_judges_every_backend_and_audio(parity_run, capsys):
    rc, path = parity_run
    results = read_results(path)
    assert rc == 3  # a backend crashed and one is unavailable
    assert not results["partial"]
    assert {r["audio"] for r in results["runs"]} == {"audio.wav", "silence_1.24s.wav"}
    assert len(results["runs"]) == 10
    for run in _runs(results, "ort_cpu"):
        assert run["status"] == "passed" and run["frames"] == 6 and len(run["per_frame"]) == 6
        assert run["summary"]["full"]["psnr"]["min"] == float("inf")
        assert run["summary"]["full"]["identical_pct"]["min"] == 100.0
        assert run["features"]["embeddings"]["max_abs"] == 0.0
        assert run["timings"]["fps"] > 0 and run["timings"]["p99_ms"] >= run["timings"]["p50_ms"]
        every = run["timings"]["frame_ms"]  # each frame's own latency, in ms, that the percentiles summarise
        assert len(every) == 6 and min(every) > 0 and max(every) == pytest.approx(run["timings"]["max_ms"])
        assert run["info"]["kernels_per_provider"]["CPUExecutionProvider"] > 0
    for run in _runs(results, "fp16"):
        assert run["status"] == "passed", run["failures"]
        assert 0 < run["features"]["generator_outputs"]["max_abs"] < 0.05
    for run in _runs(results, "reference[channel_order=rgb]"):
        assert run["status"] == "failed"
        assert any("PSNR" in f and "< 45 dB" in f for f in run["failures"])
        worst = run["worst_frames"]
        assert len(worst) == 3 and worst[0]["psnr"] <= worst[1]["psnr"] <= worst[2]["psnr"]
        assert worst[0]["psnr"] == run["summary"]["full"]["psnr"]["min"]
        for name in ("reference", "candidate"):
            assert (path.parent / worst[0][name]).is_file()
    for run in _runs(results, "coreml"):
        assert run["status"] == "skipped" and "CoreMLExecutionProvider is not available" in run["reason"]
    for run in _runs(results, "crashing_port"):
        assert run["status"] == "error" and "exited with code 3" in run["reason"]
        assert run["log_tail"]
    assert results["inputs"]["models"]["generator"] and results["inputs"]["source"]["sha256"]
    assert results["machine"]["libraries"]["onnxruntime"] != "absent"


def test_results_are_strict_json_and_validated(parity_run, tmp_path):
    _, path = parity_run
    text = path.read_text()
    assert "Infinity" not in text and '"inf"' in text
    json.loads(text)
    bad = json.loads(text)
    bad["runs"][0]["status"] = "great"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="invalid results.json at runs/0/status"):
        read_results(tmp_path / "bad.json")
    with pytest.raises(jsonschema.ValidationError, match="'great' is not one of"):
        write_results(bad, tmp_path / "never.json")
    assert not (tmp_path / "never.json").exists()


def test_only_a_broken_backend_exits_1(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends."reference[audio_window=tile]"]\n')
    assert main(["run", "--config", str(path), "--quiet", "--frames", "3", "--no-explain"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "why:" in out and "reference[audio_window=tile]" in out
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, "[backends.ort]\nkind = \"onnxruntime\"\n")
    assert main(["run", "--config", str(path), "--quiet", "--frames", "3"]) == 0


class OutsideTheFace(Backend):
    """The reference's own frames, frame 2 with its top-left 128 x 128 corner, far from the face rect, off by 128."""

    kind = "in-process test"

    def __init__(self, ref) -> None:
        super().__init__("outside_the_face")
        self.ref = ref

    def run(self, inputs: RunInputs) -> BackendRun:
        def frames():
            for i in range(inputs.frames):
                frame = self.ref.frame(i)
                if i == 1:
                    frame[:128, :128] += 128  # wraps: every value 128 away
                yield frame
        return BackendRun(frames())


@pytest.fixture(scope="module")
def reference_of_3(synthetic_pack, tiny_models_dir, tmp_path_factory):
    """The reference of the synthetic pack's first 3 frames."""
    return run_reference(RunInputs(synthetic_pack, "pack", synthetic_pack / "audio.wav", tiny_models_dir, 3,
                                   tmp_path_factory.mktemp("reference")), progress=False)


@pytest.mark.parametrize("profile", PROFILES)
def test_a_port_differing_only_outside_the_face_fails_naming_the_frame(reference_of_3, synthetic_pack,
                                                                        tiny_models_dir, tmp_path, profile):
    """Frame criteria hold on the full frame, not the face rect."""
    spec = BackendSpec("outside_the_face", OutsideTheFace(reference_of_3), Thresholds.for_profile(profile))
    inputs = RunInputs(synthetic_pack, "pack", synthetic_pack / "audio.wav", tiny_models_dir, 3, tmp_path / "work")
    record = run_backend(spec, reference_of_3, inputs, "audio.wav", tmp_path / "out", progress=False)
    summary = record["summary"]
    assert summary["face"]["identical_pct"]["min"] == 100.0 and summary["outside_face"]["identical_pct"]["min"] < 100
    assert record["status"] == "failed" and record["failures"], record.get("reason")
    assert all(" on frame 2 < " in f for f in record["failures"]), record["failures"]


def test_compare_two_folders(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    common = ["--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
              "--models", str(tiny_models_dir), "--frames", "4", "--quiet"]
    assert main(["infer", *common, "--output", str(tmp_path / "a")]) == 0
    assert main(["infer", *common, "--output", str(tmp_path / "b"), "--conventions", "quantisation=round"]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 0
    assert "inf" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--pack", str(synthetic_pack),
                 "--json", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "mouth" in out and "outside_face" in out and "worst frames" in out
    pairs = json.loads((tmp_path / "c.json").read_text())["pairs"]
    assert len(pairs) == 4 and pairs[0]["outside_face"]["identical_pct"] == 100.0
    assert pairs[0]["mouth"]["identical_pct"] < 100.0
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2


def test_pytest_plugin_makes_one_test_per_backend_and_audio(pytester, synthetic_pack, tiny_models_dir, tmp_path):
    backends = '[backends.ort_cpu]\nkind = "onnxruntime"\n[backends."reference[channel_order=rgb]"]\n'
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)
    result = pytester.runpytest("--parity-config", str(path), "--parity-frames", "3", "-v")
    result.assert_outcomes(passed=2, failed=2)
    text = result.stdout.str()
    assert "parity.toml::ort_cpu[audio] PASSED" in text
    assert "parity.toml::reference[channel_order=rgb][audio] FAILED" in text
    assert "violated: PSNR" in text and "thresholds: psnr_min=45" in text
    assert "cause: reference[input_channels=rgb,output_channels=rgb] reproduces the candidate: 100.000 % identical" in text
    one = pytester.runpytest("--parity-config", str(path), "--backend", "ort_cpu", "--parity-frames", "2")
    one.assert_outcomes(passed=2)
    bad = pytester.runpytest("--parity-config", str(tmp_path / "missing.toml"))
    assert bad.ret != 0 and "config file not found" in bad.stderr.str() + bad.stdout.str()


@pytest.mark.parametrize("name", ["linux.toml", "apple_silicon.toml", "self_test.toml"])
def test_example_configs_load(shared_data, name):
    cfg = load_config(Path(__file__).resolve().parents[1] / "examples" / name)
    assert cfg.backends and cfg.source.is_dir() and cfg.audio[-1] == "silence"
    kinds = {spec.backend.kind for spec in cfg.backends}
    assert kinds >= ({"onnxruntime", "subprocess", "fp16", "coreml"} if name == "apple_silicon.toml" else {"onnxruntime"})


def test_video_has_three_panels_the_audio_and_a_card_of_the_findings(tmp_path, synthetic_pack, tiny_models_dir,
                                                                     monkeypatch):
    """A failing run's side-by-side video: reference | candidate | difference at half size, the sound under
    the run's frames, then a card of its findings over silence; the report plays it. (The model-based
    diagnosis, tested elsewhere, is left out for time.)"""
    import av

    import harness.runs.parity
    from harness.runs.video import CARD_SECONDS
    from reports.html import render_html
    monkeypatch.setattr(harness.runs.parity, "diagnose", lambda *args, **kwargs: {})
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends."reference[channel_order=rgb]"]\n')
    assert main(["run", "--config", str(path), "--quiet", "--frames", "5", "--video"]) == 1
    results = read_results(tmp_path / "out" / "results.json")
    assert any(f["kind"] == "colour" for f in results["runs"][0]["findings"])
    video = tmp_path / "out" / results["runs"][0]["video"]
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 1920, 360)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        audio_s = float(audio.duration * audio.time_base)
    assert len(frames) == 5 + CARD_SECONDS * 25
    card = frames[-1]
    assert card.max() > 150 and (card > 100).mean() < 0.2  # text on black
    assert abs(audio_s - len(frames) / 25) < 0.1  # the sound runs under the card as silence
    index = render_html([tmp_path / "out" / "results.json"], tmp_path / "report")
    assert '<video controls preload="metadata" width="960" src="img/video-0.mp4">' in index.read_text()
    assert (tmp_path / "report" / "img" / "video-0.mp4").stat().st_size == video.stat().st_size


def test_a_port_that_ignores_its_audio_is_flagged(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    port = FAKE_PORTS / "copy_port.py"  # writes the template frames whatever the audio says
    backends = f"""
[backends.ort_cpu]
kind = "onnxruntime"
[backends.ghost]
kind = "subprocess"
command = ["{sys.executable}", "{port}", "--sanders", "{{pack}}", "--audio", "{{audio}}", "--output", "{{output}}", "--frames", "{{frames}}"]
thresholds = {{ psnr_min = 0 }}
"""
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)
    assert main(["run", "--config", str(path), "--quiet"]) == 1
    results = read_results(tmp_path / "out" / "results.json")
    for run in _runs(results, "ghost"):
        found = run["diagnosis"]["audio_dependence"]
        assert found["ignores_input_audio"] and found["pairs"][0]["mouth_change"] == 0.0
        assert run["status"] == "failed" and any("ignores the input audio" in f for f in run["failures"])
    for run in _runs(results, "ort_cpu"):
        found = run["diagnosis"]["audio_dependence"]
        assert run["status"] == "passed" and not found["ignores_input_audio"]
        assert found["pairs"][0]["reference_mouth_change"] > 0.5
        assert found["pairs"][0]["ratio"] == pytest.approx(1.0)
    assert "ignores the input audio" in capsys.readouterr().out


@pytest.mark.parametrize("variant, expected", [  # every variant and pairs: test_conventions_more, test_explain
    ("channel_order=rgb", {"input_channels": "rgb", "output_channels": "rgb"}),
])
def test_convention_search_names_the_injected_variants(tmp_path, synthetic_pack, tiny_models_dir, variant,
                                                        expected):
    from reference.conventions import Conventions
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, f'[backends."reference[{variant}]"]\n')
    assert main(["run", "--config", str(path), "--quiet", "--frames", "5"]) == 1
    for run in read_results(tmp_path / "out" / "results.json")["runs"]:
        found = run["diagnosis"]["conventions"]
        assert found["explained"], found["text"]
        assert Conventions.parse(found["conventions"]).variants() == expected
        assert found["match"]["regions"]["full"]["psnr_min"] == float("inf") and found["canonical"]["psnr"] < 45
        assert found["text"].startswith("reference[input_channels=rgb,output_channels=rgb] reproduces the candidate")
    assert main(["run", "--config", str(path), "--quiet", "--frames", "5", "--no-explain"]) == 1
    assert all("diagnosis" not in r or "conventions" not in r["diagnosis"]
               for r in read_results(tmp_path / "out" / "results.json")["runs"])


def test_pytest_plugin_flags_a_port_that_ignores_its_audio(pytester, synthetic_pack, tiny_models_dir, tmp_path):
    port = FAKE_PORTS / "copy_port.py"  # the template frames whatever the audio says
    backends = f"""
[backends.ghost]
kind = "subprocess"
command = ["{sys.executable}", "{port}", "--sanders", "{{pack}}", "--audio", "{{audio}}", "--output", "{{output}}", "--frames", "{{frames}}"]
thresholds = {{ psnr_min = 0 }}
"""
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)
    result = pytester.runpytest("--parity-config", str(path), "--parity-frames", "3", "-v")
    result.assert_outcomes(passed=1, failed=1)  # the flag falls on the backend's last audio
    assert "parity.toml::ghost[silence_1.12s] FAILED" in result.stdout.str()
    assert "violated: output ignores the input audio" in result.stdout.str()
    runs = read_results(tmp_path / "out" / "results.json")["runs"]
    assert all(r["diagnosis"]["audio_dependence"]["ignores_input_audio"] for r in runs)
