"""The bare generator, the baseline every benchmark is measured against: the fastest the engine runs
the generator alone on the given cores, whichever way of spending them that takes.

Nothing of the pipeline (audio windows, template decoding, masking, pasting) runs, so a backend's FPS
divided by the bare generator's says how much of the machine the pipeline around the model costs.
For T threads (0: all the cores the process may use) the ways (`ways_for`) are:

* one ONNX Runtime session with T intra-op threads, spin-waiting on;
* the same with spin-waiting off (the reference's options, `reference.models.session_options`);
* T single-threaded sessions on alternating frames, run from T Python threads (ONNX Runtime releases
  the GIL in ``run``), as the reference runs them (past eight cores, eight sessions sharing the
  cores out); FPS is the frames over the wall time.

At T = 1 the three are one: one session with one thread. `BareWays` measures the ways in rounds, a
block of frames of each in turn (the order rotating every round), so that a drift of the machine's
speed hits all alike; the baseline is the fastest way, and every way is reported, a failed one with
its error.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from harness.text.tables import fmt_number
from harness.verdicts.timing import latency_stats
from reference.models import (GENERATOR_IO, ModelFiles, Models, cores_for, frame_workers, load_session,
                              session_options)

BLOCK = 6  # frames of each way per round (rounded up to a multiple of the sessions of the widest way)


def bare_generator_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pre-built generator inputs (image (1,6,320,320), audio (1,32,16,16)) for the bare baseline."""
    rng = np.random.default_rng(seed)
    image = rng.random((1, 6, 320, 320), dtype=np.float32)
    audio = rng.random((1, 32, 16, 16), dtype=np.float32)
    return image, audio


def bare_generator_fps(models: Models, frames: int = 30, warmup: int = 3, seed: int = 0) -> float:
    """Frames per second of the given models' generator alone on pre-built random inputs (its own
    session and options: a unit of cost, not the baseline, which is `bare_generator`'s fastest way)."""
    image, audio = bare_generator_inputs(seed)
    for _ in range(warmup):
        models.generate(image, audio)
    start = time.perf_counter()
    for _ in range(frames):
        models.generate(image, audio)
    return frames / (time.perf_counter() - start)


def generator_session(path: Path, threads: int, spinning: bool):
    """An ONNX Runtime CPU session of the generator at `path`: `threads` intra-op threads, spin-waiting
    on or off."""
    return load_session(path, GENERATOR_IO, session_options(threads, spinning), ["CPUExecutionProvider"])


def ways_for(threads: int) -> list[tuple[str, int, int, bool]]:
    """The ways of spending `threads` cores (0: all) on the generator: (name, sessions, threads per
    session, spinning) each. The sessions on alternating frames are the reference's own
    (`reference.models.frame_workers`: one single-threaded session per core, at most eight)."""
    t = cores_for(threads)
    if t == 1:
        return [("1 session x 1 thread", 1, 1, False)]
    sessions, each = frame_workers(t)
    return [(f"1 session x {t} threads, spinning", 1, t, True),
            (f"1 session x {t} threads, not spinning", 1, t, False),
            (f"{sessions} sessions x {each} thread{'s' if each > 1 else ''}", sessions, each, False)]


class Way:
    """One way of running the generator: `count` sessions (`build` makes them) take the frames in
    turn, each from its own thread when there are several. `error` holds why it could not be built
    or run (it is then skipped)."""

    def __init__(self, name: str, count: int, session_threads: int, spinning: bool) -> None:
        self.name, self.count, self.session_threads, self.spinning = name, count, session_threads, spinning
        self.sessions: list = []
        self.error: str | None = None
        self.seconds: list[float] = []  # wall time of each measured block
        self.frames = 0
        self.latencies: list[float] = []
        self.warmup: list[float] = []
        self._pool: ThreadPoolExecutor | None = None

    def build(self, path: Path) -> None:
        """The sessions of the generator at `path`; an engine error is kept as `error`, not raised."""
        try:
            self.sessions = [generator_session(path, self.session_threads, self.spinning) for _ in range(self.count)]
        except Exception as exc:  # noqa: BLE001 - a way the engine cannot build is reported, not fatal
            self.error = f"{exc.__class__.__name__}: {exc}"
            return
        if self.count > 1:
            self._pool = ThreadPoolExecutor(self.count)

    def _calls(self, session, count: int, feeds: dict) -> list[float]:
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            session.run(["output"], feeds)
            times.append(time.perf_counter() - t0)
        return times

    def run(self, frames: int, feeds: dict) -> list[float]:
        """`frames` generator calls spread over the sessions (session k takes frames k, k + K, ...);
        each call's seconds."""
        k = len(self.sessions)
        shares = [(frames - i + k - 1) // k for i in range(k)]
        if self._pool is None:
            return self._calls(self.sessions[0], frames, feeds)
        futures = [self._pool.submit(self._calls, s, n, feeds) for s, n in zip(self.sessions, shares) if n]
        return [x for f in futures for x in f.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def report(self) -> dict:
        """This way's numbers: {"way", "sessions", "session_threads", "spinning", "frames", "seconds",
        "fps", latency percentiles, "warmup_ms", "error"}."""
        seconds = sum(self.seconds)
        return {"way": self.name, "sessions": self.count, "session_threads": self.session_threads,
                "spinning": self.spinning, "frames": self.frames, "seconds": seconds,
                "fps": self.frames / seconds if seconds > 0 else None, **latency_stats(self.latencies),
                "warmup_ms": [w * 1000.0 for w in self.warmup], "error": self.error}


def fastest(ways: list[dict]) -> dict | None:
    """The way report (`Way.report`) with the highest FPS among those that ran (None when none ran)."""
    ran = [w for w in ways if w["error"] is None and w["fps"]]
    return max(ran, key=lambda w: w["fps"]) if ran else None


def ways_text(ways: list[dict]) -> str:
    """Every way of a report (`Way.report`) on one line: its FPS or its error, the fastest marked."""
    best = fastest(ways)
    return "; ".join(f"{w['way']} " + (f"FAILED ({w['error']})" if w.get("error") is not None
                                       else f"{fmt_number(w.get('fps'), '.2f')} FPS" + (" (fastest)" if w is best else ""))
                     for w in ways)


class BareWays:
    """Every way (`ways_for`) of running the generator of `models_dir` on `threads` cores, measured
    block by block in rounds; `report` names the fastest."""

    def __init__(self, models_dir: str | Path, threads: int = 0, seed: int = 0) -> None:
        path = ModelFiles.from_dir(models_dir).generator
        self.threads, self.cores = int(threads), cores_for(threads)
        image, audio = bare_generator_inputs(seed)
        self.feeds = {"input": image, "audio": audio}
        self.ways = [Way(*way) for way in ways_for(threads)]
        self.width = max(way.count for way in self.ways)  # the most sessions of a way
        for way in self.ways:
            way.build(path)
        self.rounds = 0

    def _each(self, frames: int, measured: bool) -> None:
        order = self.ways[self.rounds % len(self.ways):] + self.ways[:self.rounds % len(self.ways)]
        for way in order:
            if way.error is not None:
                continue
            try:
                start = time.perf_counter()
                times = way.run(frames if measured else max(frames, len(way.sessions)), self.feeds)
                wall = time.perf_counter() - start
            except Exception as exc:  # noqa: BLE001 - reported with the way, the others go on
                way.error = f"{exc.__class__.__name__}: {exc}"
                continue
            if measured:
                way.seconds.append(wall)
                way.frames += frames
                way.latencies += times
            else:
                way.warmup += times

    def warm(self, frames: int) -> None:
        """`frames` untimed calls of each way, at least one per session (sessions allocate and tune on
        their first calls)."""
        if frames > 0:
            self._each(frames, measured=False)

    def block(self, frames: int) -> None:
        """One round: `frames` timed calls of each way in turn (the order rotates every round)."""
        self._each(frames, measured=True)
        self.rounds += 1

    def report(self) -> dict:
        """The fastest way's numbers at the top ({"threads", "way", "frames", "seconds", "fps",
        latency percentiles, "warmup_ms"}) and every way's under "ways"; RuntimeError naming each
        way's error when none ran."""
        ways = [w.report() for w in self.ways]
        best = fastest(ways)
        if best is None:
            raise RuntimeError("bare generator: no way ran: " + "; ".join(f"{w['way']}: {w['error']}" for w in ways))
        return {"threads": self.threads, "cores": self.cores,
                **{k: v for k, v in best.items() if k != "error"}, "ways": ways}

    def close(self) -> None:
        for way in self.ways:
            way.close()


def block_frames(sessions: int, block: int = BLOCK) -> int:
    """`block` rounded up to a multiple of `sessions`, so that every session of the widest way is busy."""
    return -(-max(1, block) // sessions) * sessions


def bare_generator(models_dir: str | Path, threads: int = 0, frames: int = 30, warmup: int = 3,
                   seed: int = 0, block: int = BLOCK) -> dict:
    """The engine's best on the generator alone: every way of spending `threads` cores (0: all),
    `warmup` untimed calls each, then rounds of `block` timed calls of each way (`block_frames`; the
    last round the rest) until each has made `frames`, on the same pre-built random inputs.

    Returns `BareWays.report` plus {"warmup", "block"}: the top-level numbers are the fastest way's.
    """
    if frames < 1:
        raise ValueError(f"bare_generator: frames must be at least 1, got {frames}")
    ways = BareWays(models_dir, threads, seed)
    try:
        ways.warm(max(0, warmup))
        size = block_frames(ways.width, block)
        for start in range(0, frames, size):
            ways.block(min(size, frames - start))
        return {**ways.report(), "warmup": max(0, warmup), "block": size}
    finally:
        ways.close()
