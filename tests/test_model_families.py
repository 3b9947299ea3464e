"""Every command on every model family: the synthetic `full` models, and the pipeline's models as
PyTorch exports them (../shared/data/torch_export: `legacy/`, the TorchScript exporter's opset 17
with a dynamic batch and its shape arithmetic; `dynamo/`, opset 20 with external weights).

Each family runs `infer`, `run` on ONNX Runtime, OpenVINO and fp16, `golden` / `check-golden`,
`convert coreml` (fp16 and fp32, each audit passing) and `bench`, on FRAMES frames; `explain-layers`
runs on the two exports.
`convert coreml` of the two exports, with their audits, is tests/test_coreml_torch_export.py; here it
runs on the synthetic family. The diagnosis legs, which add nothing family by family, run on the
TorchScript export alone: `explain` names one injected convention, and names OpenVINO's bf16 where
OpenVINO runs bf16 on this CPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.cache import cached_models
from harness.cli import main
from harness.convert.conversion import convert_models
from harness.verdicts.results import read_results

pytestmark = pytest.mark.long

FAMILIES = ("full", "legacy", "dynamo")
FRAMES = 2
ENGINES = {"ort_cpu": {"kind": "onnxruntime", "provider": "cpu"}, "openvino": {"kind": "openvino"},
           "fp16": {"kind": "fp16"}}


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, shared_data) -> tuple[str, Path]:
    """(name, models folder) of one family."""
    if request.param == "full":
        return "full", cached_models("full")
    return request.param, shared_data / "torch_export" / request.param


def _data(shared_data: Path) -> list[str]:
    return ["--pack", str(shared_data / "sanders_pack"), "--audio", str(shared_data / "audio" / "talk_hb.wav")]


def _config(path: Path, shared_data: Path, models: Path, backends: dict, frames: int = FRAMES) -> Path:
    lines = ["[data]", f'pack = "{shared_data / "sanders_pack"}"', f'models = "{models}"',
             f'audio = ["{shared_data / "audio" / "talk_hb.wav"}"]', f"frames = {frames}",
             "[run]", f'output = "{path.parent / "out"}"']
    for name, options in backends.items():
        lines.append(f'[backends."{name}"]')
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_infer(family, shared_data, tmp_path):
    name, models = family
    out = tmp_path / "frames"
    assert main(["infer", *_data(shared_data), "--models", str(models), "--frames", str(FRAMES),
                 "--output", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["frame_00001.png", "frame_00002.png"]


def test_run_on_every_engine(family, shared_data, tmp_path):
    """ONNX Runtime CPU reproduces the reference exactly; OpenVINO and fp16 run and are judged (their
    precision may fail a profile: a verdict, never an error)."""
    name, models = family
    config = _config(tmp_path / "run.toml", shared_data, models, ENGINES)
    rc = main(["run", "--config", str(config), "--no-explain", "--quiet"])
    runs = {r["backend"]: r for r in read_results(tmp_path / "out" / "results.json")["runs"]}
    assert set(runs) == set(ENGINES) and rc in (0, 1)
    assert runs["ort_cpu"]["status"] == "passed", runs["ort_cpu"].get("failures")
    assert runs["ort_cpu"]["features"]["generator_outputs"]["max_abs"] == 0.0
    for engine in ("openvino", "fp16"):
        assert runs[engine]["status"] in ("passed", "failed"), runs[engine].get("reason")
        assert runs[engine]["frames"] == FRAMES


def test_golden_and_check_golden(family, shared_data, tmp_path):
    name, models = family
    golden = tmp_path / "golden"
    assert main(["golden", *_data(shared_data), "--models", str(models), "--frames", str(FRAMES),
                 "--out", str(golden)]) == 0
    assert main(["check-golden", str(golden), "--models", str(models)]) == 0


@pytest.mark.parametrize("export", ["legacy", "dynamo"])
def test_explain_layers(export, shared_data, capsys):
    """OpenVINO at f32 against ONNX Runtime, layer by layer, on the two exports (the synthetic
    family's graph is the dynamo export's, without external data: tests/test_layers.py): the float
    tensors only (the TorchScript export's int64 shape arithmetic is no layer), the final output
    within float32 noise."""
    models = shared_data / "torch_export" / export
    assert main(["explain-layers", *_data(shared_data), "--models", str(models), "--frames", str(FRAMES),
                 "--candidate", "openvino", "--precision", "f32"]) == 0
    out = capsys.readouterr().out
    final = float(out.split("final output max abs ")[1].split()[0])
    assert final < 1e-3, out
    largest = [line for line in out.splitlines() if line.strip().startswith("largest:")]
    assert largest and not any("(Constant)" in line or "(Shape)" in line for line in largest), out


def test_bench(family, shared_data, tmp_path):
    name, models = family
    config = _config(tmp_path / "bench.toml", shared_data, models, {"ort_cpu": ENGINES["ort_cpu"]})
    assert main(["bench", "--config", str(config), "--frames", str(FRAMES), "--warmup", "1", "--no-overhead",
                 "--quiet"]) == 0
    bench = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert bench["runs"] and all(r["timings"]["fps"] > 0 for r in bench["runs"])


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_convert_coreml_of_the_synthetic_family(precision, tmp_path):
    done = convert_models(cached_models("full"), tmp_path / "coreml", precision)
    for item in done.values():
        assert item.audit.faithful, [d.text for d in item.audit.differences if d.fails]
        assert item.audit.precision == precision


def test_explain_names_an_injected_convention_and_openvinos_bf16(shared_data, tmp_path, capsys):
    """The TorchScript export: a reference that pastes without its blend is named `paste=direct`; OpenVINO
    in its default precision, bf16 on CPUs with AMX or avx512_bf16, is named `precision=bf16` with its
    weight in dB (the emulation of bf16 compute, docs/conventions.md)."""
    models = shared_data / "torch_export" / "legacy"
    config = _config(tmp_path / "explain.toml", shared_data, models,
                     {"reference[paste=direct]": {}, "openvino": ENGINES["openvino"]})
    main(["explain", str(config), "--quiet"])
    out = capsys.readouterr().out
    runs = {r["backend"]: r for r in read_results(tmp_path / "out" / "results.json")["runs"]}
    assert runs["reference[paste=direct]"]["status"] == "failed"
    injected = out.split("reference[paste=direct] / talk_hb.wav:")[1].split("\n\n")[0]
    assert "paste=direct" in injected.split("deviation 1:")[1].splitlines()[0], injected
    precision = runs["openvino"]["info"]["precision_effective"]
    if precision != "bf16":
        pytest.skip(f"not on this CPU: OpenVINO runs {precision} here, not bf16, so there is no bf16 to name")
    assert runs["openvino"]["status"] == "failed"
    ov = out.split("openvino / talk_hb.wav:")[1].split("\n\n")[0]
    deviation = ov.split("deviation 1:")[1].splitlines()[0]
    assert deviation.startswith(" precision=bf16 (canonical fp32), worth ") and " dB" in deviation, ov
