"""Diagnosis time per real port: `pytest --benchmark tests/benchmarks/test_diagnosis_speed.py`.

Both Go ports of ../shared/ports run 40 frames of the Sanders pack with talk_hb.wav and the full
synthetic models, then get the whole diagnosis (stage localisation, offset search, the composed
convention fit and its bill). The budget is expressed in the same run's bare-generator frames, so
the machine's speed cancels out: a diagnosis may cost at most 900 of them.
"""
from __future__ import annotations

from go_ports import go_port_options
from test_go_ports import toml_text

from fixtures.cache import cached_models
from harness.bench.baseline import bare_generator_fps
from harness.runs.config import load_config
from harness.runs.parity import run_parity
from reference.models import ModelFiles, Models

FRAMES = 40
BUDGET_BARE_FRAMES = 900


def test_diagnosis_time_per_go_port(benchmark, go_ports, shared_data, tmp_path):
    models = cached_models("full")
    raw = {"data": {"pack": str(shared_data / "sanders_pack"), "models": str(models),
                    "audio": [str(shared_data / "audio" / "talk_hb.wav")], "frames": FRAMES},
           "run": {"output": str(tmp_path / "out"), "profile": "lossy"},
           "backends": go_port_options(go_ports)}
    path = tmp_path / "go_ports.toml"
    path.write_text(toml_text(raw))
    bare_before = bare_generator_fps(Models(ModelFiles.from_dir(models)))
    results, _ = benchmark.pedantic(lambda: run_parity(load_config(path), progress=False), rounds=1, iterations=1)
    bare = (bare_before + bare_generator_fps(Models(ModelFiles.from_dir(models)))) / 2
    for run in results["runs"]:
        bill = run["diagnosis"]["conventions"]
        seconds = run["diagnosis"]["seconds"]
        cost = seconds * bare
        benchmark.extra_info[run["backend"]] = {"seconds": round(seconds, 1), "bare_frames": round(cost),
                                                "variants": bill["variants_rendered"], "frames": bill["frames_rendered"],
                                                "fitted": bill["fitted"]}
        print(f"\n{run['backend']}: diagnosed in {seconds:.1f} s = {cost:.0f} bare-generator frames "
              f"(bare {bare:.2f} FPS), {bill['variants_rendered']} variants, {bill['frames_rendered']} frames rendered")
        assert cost <= BUDGET_BARE_FRAMES, (run["backend"], seconds, bare)
        assert bill["match"]["regions"]["full"]["psnr_min"] >= 45
