"""Summaries of timings: latency percentiles of per-frame seconds, medians and maxima of repeats."""
from __future__ import annotations

import statistics

import numpy as np


def latency_stats(seconds: list[float] | np.ndarray) -> dict:
    """p50/p90/p99/max/mean of per-frame latencies, in milliseconds ({} for none)."""
    arr = np.asarray(seconds, dtype=np.float64) * 1000.0
    if arr.size == 0:
        return {}
    return {"p50_ms": float(np.percentile(arr, 50)), "p90_ms": float(np.percentile(arr, 90)),
            "p99_ms": float(np.percentile(arr, 99)), "max_ms": float(arr.max()), "mean_ms": float(arr.mean())}


def median_of(values: list) -> float | None:
    """Median of the values that are not None (None when there are none)."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def max_of(values: list) -> float | None:
    """Largest of the values that are not None (None when there are none)."""
    values = [v for v in values if v is not None]
    return max(values) if values else None


STEADY_SKIP = 3  # frames skipped before the steady state: at least this many, or 10 % of the frames


def steady_skip(n: int) -> int:
    """Frames left out of the steady state of `n` frames: max(3, 10 %), leaving at least 2."""
    return max(0, min(max(STEADY_SKIP, -(-n // 10)), n - 2))


def steady_from_appearances(appear: list[float | None]) -> dict:
    """Time to first frame, steady-state FPS and interval percentiles from frame appearance times
    (seconds after the start; {} when a frame was never seen). Steady state: the frames after the
    first `steady_skip`, over the time between their appearances; ``interval`` in ms."""
    if not appear or any(t is None for t in appear):
        return {}
    t = np.sort(np.asarray(appear, dtype=np.float64))
    skip = steady_skip(len(t))
    steady = np.diff(t[skip:])
    span = float(steady.sum())
    return {"ttff_s": float(t[0]), "steady_fps": len(steady) / span if span > 0 else None,
            "steady_frames": len(steady), "skipped_frames": skip, "interval": latency_stats(steady),
            "source": "output folder"}


def frame_ms(latencies: list[float], appear: list[float | None]) -> list[float]:
    """Every frame's latency in ms, in the order the frames came: the backend's own per-frame durations
    (seconds) when it has them, else the intervals between its frame files' appearances (seconds after
    the start; the first frame's from the start); [] when neither is complete."""
    if latencies:
        return [float(s) * 1000.0 for s in latencies]
    if not appear or any(t is None for t in appear):
        return []
    return (np.diff(np.sort(np.asarray(appear, dtype=np.float64)), prepend=0.0) * 1000.0).tolist()


def steady_from_latencies(latencies: list[float], before_first: float = 0.0) -> dict:
    """The same figures from per-frame durations (a backend's own or a port's frame lines): the
    frames after the first `steady_skip`; time to first frame = `before_first` + the first duration."""
    if not latencies:
        return {}
    lat = np.asarray(latencies, dtype=np.float64)
    skip = steady_skip(len(lat))
    steady = lat[skip:]
    total = float(steady.sum())
    return {"ttff_s": before_first + float(lat[0]), "steady_fps": len(steady) / total if total > 0 else None,
            "steady_frames": len(steady), "skipped_frames": skip, "interval": latency_stats(steady),
            "source": "frame latencies"}
