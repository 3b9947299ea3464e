"""The two real Go ports (../shared/ports) through a parity run: both run, neither matches the reference.

6 frames of the Sanders pack and talk_hb.wav, tiny synthetic models, diagnosis off. The ports are
built by the go_ports fixture (cached: .ci/run builds them before the tests).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from go_ports import go_port_options

from harness.runs.config import load_config, read_toml
from harness.runs.parity import run_parity

pytestmark = pytest.mark.go_ports

FRAMES = 6


def toml_text(raw: dict) -> str:
    """`raw` as TOML: one ``key = { inline table }`` line per section (JSON strings are TOML strings)."""
    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)
    return "".join(f"{json.dumps(k)} = {value(v)}\n" for k, v in raw.items())


def test_go_ports_run_and_differ_from_the_reference(go_ports, shared_data, tiny_models_dir, tmp_path):
    raw = {
        "data": {"pack": str(shared_data / "sanders_pack"), "models": str(tiny_models_dir),
                 "audio": [str(shared_data / "audio" / "talk_hb.wav")], "frames": FRAMES},
        "run": {"output": str(tmp_path / "out"), "profile": "desktop", "explain": False},
        "backends": go_port_options(go_ports),
    }
    path = tmp_path / "go_ports.toml"
    path.write_text(toml_text(raw))
    assert read_toml(path) == raw
    results, _ = run_parity(load_config(path), progress=False)

    runs = {r["backend"]: r for r in results["runs"]}
    assert set(runs) == {"simple_inference_go", "go_optimized"}
    for name, run in runs.items():
        assert run["status"] == "failed", (name, run.get("reason"), run.get("log_tail"))
        assert run["frames"] == FRAMES and len(run["per_frame"]) == FRAMES
        assert run["failures"] and "diagnosis" not in run
        assert run["info"]["returncode"] == 0
        assert Path(run["info"]["pack"]).parent == tmp_path / "out" / "work" / "talk_hb" / name
    windows = runs["simple_inference_go"]["features"]["audio_windows"]
    assert windows["rows"] == 5  # the port dumps frames 1-5 only
    assert "audio_windows" not in runs["go_optimized"]["features"]
    assert not (shared_data / "sanders_pack" / "models").exists()
    assert not (shared_data / "sanders_pack" / "cache" / "go_tensors").exists()


def test_example_config_holds_the_same_port_options(shared_data):
    path = Path(__file__).resolve().parents[1] / "examples" / "go_ports.toml"
    cfg = load_config(path)  # every key checked
    assert [spec.name for spec in cfg.backends] == ["simple_inference_go", "go_optimized"]
    assert read_toml(path)["backends"] == go_port_options(Path("/root/.cache/synctalk-parity/go-ports"))


def test_go_ports_are_reproduced_by_their_bills(go_ports, shared_data, tiny_models_dir, tmp_path, capsys):
    """explain on both ports, speech and silence: the fitted variant reproduces each at >= 45 dB (worst
    full frame) and >= 40 dB (worst face rect), and every named deviation is worth >= 0.5 dB; the image
    evidence names what it can see without the models."""
    from harness.cli import main
    raw = {
        "data": {"pack": str(shared_data / "sanders_pack"), "models": str(tiny_models_dir),
                 "audio": [str(shared_data / "audio" / "talk_hb.wav"), "silence"], "frames": FRAMES},
        "run": {"output": str(tmp_path / "out"), "profile": "lossy"},
        "backends": go_port_options(go_ports),
    }
    path = tmp_path / "go_ports.toml"
    path.write_text(toml_text(raw))
    assert main(["explain", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    print(out)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(results["runs"]) == 4
    for run in results["runs"]:
        bill = run["diagnosis"]["conventions"]
        full, face = bill["match"]["regions"]["full"], bill["match"]["regions"]["face"]
        assert full["psnr_min"] >= 45 and face["psnr_min"] >= 40, (run["backend"], run["audio"], bill["text"])
        assert all(d["weight_db"] >= 0.5 for d in bill["deviations"]), bill["deviations"]
        named = {d["knob"]: d["value"] for d in bill["deviations"]}
        # what both ports do, whatever the audio: their own template pairing, paste and tiled audio
        assert named["template_order"] == "linear" and named["paste"] == "direct", named
        assert named["audio_window"] == "tile", named
        assert bill["fitted"] in out and f"diagnosed in {run['diagnosis']['seconds']:.1f} s" in out
        assert bill["variants_rendered"] > 0 and bill["seconds"] > 0
        # the image evidence, without the models, names the same template pairing and paste, and the Go
        # encoder: JPEG q95 4:2:0 tables, but not what libjpeg makes of the templates
        found = {f["kind"]: f for f in run["findings"]}
        assert found["template_sequence"]["offset"] == -1 and found["paste_position"]["pattern"] == "scaled", found
        assert (found["jpeg"]["quality_b"], found["jpeg"]["subsampling_b"]) == (95, "4:2:0")
        assert found["jpeg"]["other_encoder"], found["jpeg"]
    from reports.html import render_html
    html = render_html([tmp_path / "out" / "results.json"], tmp_path / "report").read_text()
    bills = html.index('<h2 id="bills">Bills of deviations</h2>')
    assert bills < html.index('<h2 id="charts">')
    for run in results["runs"]:
        assert run["diagnosis"]["conventions"]["fitted"] in html[bills:]
    masks = {r["backend"]: {d["knob"]: d["value"] for d in r["diagnosis"]["conventions"]["deviations"]}
             for r in results["runs"] if r["audio"] == "talk_hb.wav"}
    assert masks["simple_inference_go"]["masked_input"] == "pack"  # reads model_inputs/K.jpg
    assert masks["go_optimized"]["masked_input"] == "none"  # its tensor cache keys both halves "K.jpg"
