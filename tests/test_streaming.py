"""Streamed comparison (issue 14, item 3): a port's frame i is compared while it writes frame i + 1, the
metrics of a frame are computed in a worker while the backend produces the next, results as before."""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import RunInputs
from harness.backends.subprocess_port import SubprocessBackend
from harness.runs import parity
from harness.runs.config import BackendSpec
from harness.verdicts import metrics
from harness.verdicts.tolerances import Thresholds
from reference.ordered_worker import OrderedWorker

SLOW = Path(__file__).parent / "fake_ports" / "slow_port.py"
FRAMES = 8

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ports need POSIX process groups")


def slow_port(*extra: str) -> SubprocessBackend:
    return SubprocessBackend("slow", {"command": [sys.executable, str(SLOW), "--sanders", "{pack}", "--audio", "{audio}",
                                                  "--output", "{output}", "--frames", "{frames}", *extra]})


def inputs(pack: Path, models: Path, workdir: Path) -> RunInputs:
    workdir.mkdir(parents=True, exist_ok=True)
    return RunInputs(pack, "pack", pack / "audio.wav", models, FRAMES, workdir)


@pytest.fixture(scope="module")
def reference(synthetic_pack, tiny_models_dir, tmp_path_factory) -> parity.ReferenceFrames:
    return parity.run_reference(inputs(synthetic_pack, tiny_models_dir, tmp_path_factory.mktemp("ref")), False)


@pytest.fixture
def compared(monkeypatch) -> list[float]:
    """perf_counter() at the start of every frame's metrics."""
    times: list[float] = []
    real = metrics.frame_metrics

    def recorded(*args):
        times.append(time.perf_counter())
        return real(*args)

    monkeypatch.setattr(metrics, "frame_metrics", recorded)
    return times


def run(backend: SubprocessBackend, reference, pack: Path, models: Path, tmp_path: Path) -> dict:
    spec = BackendSpec("slow", backend, Thresholds(psnr_min=0))
    return parity.run_backend(spec, reference, inputs(pack, models, tmp_path / "w"), "audio", tmp_path / "out",
                              progress=False)


def test_frame_0_is_compared_before_the_port_exits(reference, synthetic_pack, tiny_models_dir, tmp_path, compared):
    started = time.perf_counter()
    record = run(slow_port("--startup", "0.3", "--per-frame", "0.2"), reference, synthetic_pack, tiny_models_dir,
                 tmp_path)
    assert record["status"] == "passed" and record["frames"] == FRAMES, record.get("reason")
    exited = started + record["timings"]["total"]  # a lower bound of the exit: the port started after `started`
    assert len(compared) == FRAMES and compared[0] < exited - 0.5, (compared[0] - started, exited - started)
    assert [f["i"] for f in record["per_frame"]] == list(range(FRAMES))


def test_a_port_that_crashes_midway_is_an_error_with_its_log_tail(reference, synthetic_pack, tiny_models_dir,
                                                                  tmp_path, compared):
    record = run(slow_port("--startup", "0.2", "--per-frame", "0.2", "--crash-after", "5"), reference,
                 synthetic_pack, tiny_models_dir, tmp_path)
    assert record["status"] == "error" and record["reason"] == "slow: port exited with code 3: fatal: generator.onnx: out of memory"
    assert "out of memory" in record["log_tail"]
    assert 1 <= len(compared) < FRAMES  # frames were compared while it ran


def test_streamed_frames_and_timings_match_a_run_to_the_end(synthetic_pack, tiny_models_dir, tmp_path):
    backend = slow_port("--startup", "0.1", "--per-frame", "0.02")
    whole = backend.run(inputs(synthetic_pack, tiny_models_dir, tmp_path / "a"))
    streamed = backend.stream(inputs(synthetic_pack, tiny_models_dir, tmp_path / "b"))
    for a, b in zip(list(whole.frames), list(streamed.frames), strict=True):
        np.testing.assert_array_equal(a, b)
    assert set(whole.timings) == set(streamed.timings) and streamed.info["returncode"] == 0


def test_a_stopped_stream_kills_the_port(synthetic_pack, tiny_models_dir, tmp_path):
    streamed = slow_port("--startup", "0.1", "--per-frame", "0.5").stream(
        inputs(synthetic_pack, tiny_models_dir, tmp_path))
    next(streamed.frames)
    started = time.monotonic()
    streamed.frames.close()
    assert time.monotonic() - started < 2 and streamed.timings == {}


class InterruptedAt:
    """The reference, with Ctrl-C pressed when frame `at` is asked for."""

    def __init__(self, ref: parity.ReferenceFrames, at: int) -> None:
        self.ref, self.at, self.templates, self.rects = ref, at, ref.templates, ref.rects

    def frame(self, i: int):
        if i == self.at:
            raise KeyboardInterrupt
        return self.ref.frame(i)


def test_an_interrupted_comparison_stops_the_port_at_once(reference, synthetic_pack, tiny_models_dir, tmp_path):
    """The stream is closed (its port stopped) before Ctrl-C leaves compare_run, not when its generator
    is garbage-collected, which a kept traceback delays to the interpreter's shutdown."""
    streamed = slow_port("--startup", "0.1", "--per-frame", "0.5").stream(
        inputs(synthetic_pack, tiny_models_dir, tmp_path))
    with pytest.raises(KeyboardInterrupt) as caught:
        parity.compare_run(streamed, InterruptedAt(reference, 1), FRAMES, False, "slow")
    assert caught.value.__traceback__ is not None and streamed.frames.gi_frame is None


def test_the_worker_returns_results_in_order():
    def slow_square(x: int) -> int:
        time.sleep(random.random() / 200)
        return x * x

    out = []
    with OrderedWorker(slow_square, depth=2) as worker:
        for x in range(50):
            out += worker.submit(x, x)
            assert len(worker._pending) <= 2
        out += worker.drain()
    assert out == [(x, x * x) for x in range(50)]
