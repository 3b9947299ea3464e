"""Timings of the bench against known values: latency percentiles of given seconds, and measured runs
of fakes that sleep a known time (a lower bound the clock cannot beat; upper bounds are loose, for a
loaded machine)."""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.bench import baseline
from harness.bench.measure import measure_inprocess
from harness.bench.settings import parse_int_list
from harness.runs.parity import timing_summary
from harness.verdicts.timing import latency_stats

SLEEP = 0.02  # seconds per measured frame or generator call
SLOW = 0.3  # seconds per warm-up frame


def test_latency_stats_of_1_to_100_ms():
    stats = latency_stats([k / 1000.0 for k in range(1, 101)])  # numpy's linear percentiles, by hand:
    assert stats == pytest.approx({"p50_ms": 50.5, "p90_ms": 90.1, "p99_ms": 99.01, "max_ms": 100.0,
                                   "mean_ms": 50.5})
    assert latency_stats([]) == {}


def test_parity_timing_summary_fps_and_percentiles():
    out = timing_summary({"total": 2.0, "frame_latency": [0.01, 0.03], "stages": {"mel": 0.1}}, frames=10)
    assert out["fps"] == pytest.approx(5.0) and out["stages"] == {"mel": 0.1}
    assert out["p50_ms"] == pytest.approx(20.0) and out["max_ms"] == pytest.approx(30.0)
    assert "frame_latency" not in out and out["frame_ms"] == pytest.approx([10.0, 30.0])
    assert "frame_ms" not in timing_summary({"total": 2.0, "frame_appear_s": [0.5, None]}, frames=2)  # never seen


def test_bare_generator_times_a_known_sleep(monkeypatch):
    class SleepyModels:
        def __init__(self, files, threads: int = 0) -> None:
            pass

        def generate(self, image, audio) -> None:
            time.sleep(SLEEP)

    monkeypatch.setattr(baseline, "Models", SleepyModels)
    monkeypatch.setattr(baseline.ModelFiles, "from_dir", staticmethod(lambda folder: None))
    bare = baseline.bare_generator(Path("unused"), threads=1, frames=5, warmup=2)
    assert 1000 * SLEEP <= bare["p50_ms"] < 1000 * SLEEP * 5
    assert 1 / (SLEEP * 5) < bare["fps"] <= 1 / SLEEP
    assert bare["seconds"] >= 5 * SLEEP and len(bare["warmup_ms"]) == 2
    assert all(w >= 1000 * SLEEP for w in bare["warmup_ms"])


def test_inprocess_measurement_excludes_slow_warmup_frames(tmp_path):
    def frames(total: int, warmup: int):
        for k in range(total):
            time.sleep(SLOW if k < warmup else SLEEP)
            yield k

    backend = SimpleNamespace(run=lambda inputs: SimpleNamespace(frames=frames(7, 2), timings={}, info={}))
    measured = measure_inprocess(backend, SimpleNamespace(), warmup=2, frames=5, progress=False, label="fake")
    assert 1 / (SLEEP * 5) < measured["fps"] <= 1 / SLEEP  # with the warm-up frames it would be < 2.9
    assert len(measured["latencies"]) == 5 and measured["latency_source"] == "interval"
    assert all(x >= SLEEP for x in measured["latencies"])
    assert measured["warmup_s"] >= 2 * SLOW and len(measured["warmup_latencies"]) == 2


def test_inprocess_measurement_end_to_end_and_time_to_first_frame():
    def frames():
        for k in range(6):
            time.sleep(SLOW if k == 0 else SLEEP)
            yield k

    backend = SimpleNamespace(run=lambda inputs: SimpleNamespace(frames=frames(), timings={}, info={}))
    measured = measure_inprocess(backend, SimpleNamespace(), warmup=1, frames=5, progress=False, label="fake")
    assert measured["ttff_s"] >= SLOW and measured["fps_end_to_end"] < 6 / SLOW < measured["fps"]


def test_a_port_is_benched_from_the_frame_files_it_writes(synthetic_pack, tmp_path):
    import sys

    from harness.backends.base import RunInputs
    from harness.backends.subprocess_port import SubprocessBackend, preset_options
    from harness.bench.measure import bench_backend
    port = Path(__file__).parent / "fake_ports" / "slow_port.py"
    options = preset_options([sys.executable, str(port)])
    options["command"] += ["--startup", "1.0", "--per-frame", "0.05"]
    inputs = RunInputs(synthetic_pack, "pack", synthetic_pack / "audio.wav", synthetic_pack / "models", 15, tmp_path / "w")
    record = bench_backend(SubprocessBackend("slow", options), inputs, warmup=3, frames=12, repeats=1,
                           audio_name="a.wav", progress=False)
    b = record["bench"]
    assert record["status"] == "passed" and b["latency_source"] == "output folder"
    assert b["fps"] == pytest.approx(20.0, rel=0.3) and b["ttff_s"] == pytest.approx(1.05, abs=0.6)
    assert b["fps_end_to_end"] < 0.6 * b["fps"] and len(b["frame_latency_ms"][0]) == 12
    assert b["latency"]["p50_ms"] == pytest.approx(50.0, rel=0.3)
    assert record["timings"]["steady_fps"] == b["fps"] and record["timings"]["ttff_s"] == b["ttff_s"]
    assert "background_cpu" in record["timings"]  # what other processes used meanwhile (harness.system.procfs)


@pytest.mark.parametrize("text, message", [
    ("", "expected comma-separated integers >= 0 such as 1,2,4, got ''"),
    ("1,x", "expected comma-separated integers such as 1,2,4, got '1,x'"),
    ("-1", "expected comma-separated integers >= 0 such as 1,2,4, got '-1'"),
])
def test_parse_int_list_errors_say_what_was_expected(text, message):
    import re
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_int_list(text)


OVERHEAD_CONFIG = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav"]
frames = 8
[run]
output = "{out}"
[backends.slow]
kind = "subprocess"
command = ["{python}", "{port}", "--sanders", "{{pack}}", "--audio", "{{audio}}", "--output", "{{output}}",
           "--frames", "{{frames}}", "--startup", "0.3", "--per-frame", "0.1"]
output_pattern = "frame_%05d.jpg"
index_base = 1
thresholds = {{ profile = "lossy", psnr_min = 0 }}
"""


@pytest.mark.parametrize("delay", [0.0, 1.0])
def test_the_parity_overhead_is_the_runs_wall_time_over_the_backends(synthetic_pack, tiny_models_dir, tmp_path,
                                                                       monkeypatch, delay):
    """A port of known speed (0.3 s start-up, 0.1 s per frame): the run's wall time is at least the port's,
    and a second of extra work in the run (in start_results) shows in full in the ratio."""
    import sys

    from harness.bench.overhead import parity_overhead
    from harness.runs import parity
    from harness.runs.config import load_config
    path = tmp_path / "p.toml"
    path.write_text(OVERHEAD_CONFIG.format(pack=synthetic_pack, models=tiny_models_dir, out=tmp_path / "out",
                                           python=sys.executable, port=Path(__file__).parent / "fake_ports" / "slow_port.py"))
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path / "cache"))
    real = parity.start_results
    monkeypatch.setattr(parity, "start_results", lambda *a, **k: time.sleep(delay) or real(*a, **k))  # in run_parity
    cfg = load_config(path)
    found = parity_overhead(cfg, cfg.backends[0], synthetic_pack / "audio.wav", 8, tmp_path / "overhead")
    assert found["status"] == "passed" and found["reference"]["cached"] is True and found["frames"] == 8
    assert found["backend_s"] >= 0.3 + 8 * 0.1
    assert found["wall_s"] >= found["backend_s"] + delay
    assert found["ratio"] == pytest.approx(found["wall_s"] / found["backend_s"])
    if delay:
        assert found["ratio"] >= 1.0 + delay / found["backend_s"]
