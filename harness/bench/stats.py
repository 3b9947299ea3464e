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
