"""Timings of the bench against known values: latency percentiles of given seconds, and measured runs
of fakes that sleep a known time (a lower bound the clock cannot beat; upper bounds are loose, for a
loaded machine)."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.backends.base import BackendRun

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


class SleepySession:
    """A generator session that sleeps `seconds` a call (threads sleep side by side, as ONNX Runtime's
    ``run`` releases the GIL); `fail_after` calls, then it raises."""

    def __init__(self, seconds: float, fail_after: int | None = None) -> None:
        self.seconds, self.fail_after, self.calls = seconds, fail_after, 0

    def run(self, names, feeds) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("the engine gave up")
        time.sleep(self.seconds)


def sleepy_sessions(monkeypatch, seconds: dict, fail: dict | None = None) -> None:
    """Generator sessions of `seconds[(threads, spinning)]` a call; `fail[(threads, spinning)]`: an
    exception to raise when built, or the calls after which it raises."""
    def session(path, threads: int, spinning: bool):
        failing = (fail or {}).get((threads, spinning))
        if isinstance(failing, Exception):
            raise failing
        return SleepySession(seconds[(threads, spinning)], failing)

    monkeypatch.setattr(baseline, "generator_session", session)
    monkeypatch.setattr(baseline.ModelFiles, "from_dir", staticmethod(lambda folder: SimpleNamespace(generator=None)))


def test_bare_generator_times_a_known_sleep(monkeypatch):
    sleepy_sessions(monkeypatch, {(1, False): SLEEP})
    bare = baseline.bare_generator(Path("unused"), threads=1, frames=5, warmup=2)
    assert 1000 * SLEEP <= bare["p50_ms"] < 1000 * SLEEP * 5
    assert 1 / (SLEEP * 5) < bare["fps"] <= 1 / SLEEP
    assert bare["seconds"] >= 5 * SLEEP and len(bare["warmup_ms"]) == 2
    assert all(w >= 1000 * SLEEP for w in bare["warmup_ms"])
    assert bare["way"] == "1 session x 1 thread" and len(bare["ways"]) == 1  # at one thread the ways are one


# per call: spinning 4 SLEEP, not spinning 3 SLEEP, each of the 2 single-threaded sessions 2 SLEEP (1 per frame)
WAYS_2 = {(2, True): 4 * SLEEP, (2, False): 3 * SLEEP, (1, False): 2 * SLEEP}


def test_bare_generator_measures_every_way_and_divides_by_the_fastest(monkeypatch):
    sleepy_sessions(monkeypatch, WAYS_2)
    bare = baseline.bare_generator(Path("unused"), threads=2, frames=8, warmup=1, block=4)
    ways = {w["way"]: w for w in bare["ways"]}
    assert list(ways) == ["1 session x 2 threads, spinning", "1 session x 2 threads, not spinning",
                          "2 sessions x 1 thread"]
    for way in ways.values():  # every way measured and reported, in two rounds of 4 frames
        assert way["error"] is None and way["frames"] == 8 and way["p50_ms"] > 0 and way["fps"] > 0
    assert 1 / (4 * SLEEP * 2) < ways["1 session x 2 threads, spinning"]["fps"] <= 1 / (4 * SLEEP)
    assert 1 / (3 * SLEEP * 2) < ways["1 session x 2 threads, not spinning"]["fps"] <= 1 / (3 * SLEEP)
    assert 1 / (SLEEP * 2) < ways["2 sessions x 1 thread"]["fps"] <= 1 / SLEEP  # two sleep side by side
    assert ways["2 sessions x 1 thread"]["sessions"] == 2 and ways["2 sessions x 1 thread"]["p50_ms"] >= 2000 * SLEEP
    assert bare["way"] == "2 sessions x 1 thread" and bare["fps"] == ways["2 sessions x 1 thread"]["fps"]
    assert bare["threads"] == 2 and bare["cores"] == 2 and bare["block"] == 4


def test_threads_0_spends_every_core(monkeypatch):
    from reference import models
    monkeypatch.setattr(models, "available_cores", lambda: 3)
    assert baseline.ways_for(0) == [("1 session x 3 threads, spinning", 1, 3, True),
                                    ("1 session x 3 threads, not spinning", 1, 3, False),
                                    ("3 sessions x 1 thread", 3, 1, False)]
    assert baseline.block_frames(3, 4) == 6 and baseline.block_frames(1, 4) == 4


def test_past_eight_cores_the_sessions_share_them_out_as_the_reference_does():
    assert baseline.ways_for(16)[2] == ("8 sessions x 2 threads", 8, 2, False)
    assert baseline.ways_for(20)[2] == ("8 sessions x 2 threads", 8, 2, False)
    assert baseline.ways_for(8)[2] == ("8 sessions x 1 thread", 8, 1, False)


def test_the_fastest_way_is_the_baseline_with_a_monkeypatched_clock(monkeypatch):
    """The rounds alternate the ways (the order rotating), and the fastest by frames over wall time wins,
    whatever the order: the not-spinning session is made the fastest by the clock alone."""
    sleepy_sessions(monkeypatch, {(2, True): 0.0, (2, False): 0.0, (1, False): 0.0})
    now, order = [0.0], []
    per_call = {"not spinning": 0.02, "spinning": 0.05, "sessions": 0.04}

    def run(self, frames, feeds):
        key = next(k for k in per_call if k in self.name)
        order.append(key)
        now[0] += per_call[key] * frames
        return [per_call[key]] * frames

    monkeypatch.setattr(baseline.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(baseline.Way, "run", run)
    bare = baseline.bare_generator(Path("unused"), threads=2, frames=4, warmup=0, block=2)
    assert order == ["spinning", "not spinning", "sessions", "not spinning", "sessions", "spinning"]
    assert [w["fps"] for w in bare["ways"]] == pytest.approx([20.0, 50.0, 25.0])
    assert bare["way"] == "1 session x 2 threads, not spinning" and bare["fps"] == pytest.approx(50.0)
    assert bare["p50_ms"] == pytest.approx(20.0)


def test_a_way_that_fails_is_reported_not_hidden(monkeypatch):
    # spinning cannot be built; the two single-threaded sessions fail on their second call (in the second round)
    sleepy_sessions(monkeypatch, WAYS_2, fail={(2, True): RuntimeError("no spinning here"), (1, False): 1})
    bare = baseline.bare_generator(Path("unused"), threads=2, frames=4, warmup=0, block=2)
    ways = {w["way"]: w for w in bare["ways"]}
    assert ways["1 session x 2 threads, spinning"]["error"] == "RuntimeError: no spinning here"
    assert ways["2 sessions x 1 thread"]["error"] == "RuntimeError: the engine gave up"
    assert ways["1 session x 2 threads, not spinning"]["error"] is None
    assert bare["way"] == "1 session x 2 threads, not spinning" and ways["1 session x 2 threads, spinning"]["fps"] is None
    assert ways["1 session x 2 threads, spinning"]["sessions"] == 1 and ways["2 sessions x 1 thread"]["sessions"] == 2
    sleepy_sessions(monkeypatch, WAYS_2, fail={(2, True): RuntimeError("a"), (2, False): RuntimeError("b"),
                                               (1, False): RuntimeError("c")})
    with pytest.raises(RuntimeError, match="no way ran: 1 session x 2 threads, spinning: RuntimeError: a; "
                                           "1 session x 2 threads, not spinning: RuntimeError: b; "
                                           "2 sessions x 1 thread: RuntimeError: c"):
        baseline.bare_generator(Path("unused"), threads=2, frames=2, warmup=0)


def test_inprocess_measurement_interleaves_every_way(monkeypatch):
    """A bench record's x bare divides by the fastest way measured between its frames, and names it."""
    from harness.bench.measure import bench_backend
    sleepy_sessions(monkeypatch, WAYS_2)
    bare = baseline.BareWays(Path("unused"), threads=2)

    def frames():
        for k in range(6):
            time.sleep(SLEEP)
            yield k

    held = []

    @contextlib.contextmanager
    def hold():  # a backend that makes frames ahead is paused for the bare rounds
        held.append("on")
        yield
        held.append("off")

    backend = SimpleNamespace(name="fake", kind="fake", options={}, check_available=lambda: None,
                              run=lambda inputs: BackendRun(frames(), timings={}, info={}, hold=hold))
    monkeypatch.setattr("harness.bench.measure.PipelineBackend", SimpleNamespace)
    monkeypatch.setattr("harness.bench.measure.effective_threads", lambda backend: 2)
    record = bench_backend(backend, SimpleNamespace(workdir=Path("unused-workdir")), warmup=1, frames=5, repeats=1,
                           audio_name="a.wav", progress=False, bare=bare)
    b = record["bench"]
    assert record["status"] == "passed", record.get("reason")
    assert [w["way"] for w in b["bare_interleaved_ways"]] == [w[0] for w in baseline.ways_for(2)]
    assert all(w["frames"] == 6 for w in b["bare_interleaved_ways"])  # one round of 5 frames, rounded up to 6
    assert b["bare_interleaved_way"] == "2 sessions x 1 thread"
    assert held == ["on", "off"]  # one bare round, the backend held throughout
    assert b["bare_interleaved_fps"] == max(w["fps"] for w in b["bare_interleaved_ways"])
    assert 1 / (4 * SLEEP * 2) < b["fps"] <= 1 / SLEEP  # the bare rounds are not the backend's time


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
