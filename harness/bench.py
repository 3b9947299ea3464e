"""Timing helpers shared by the demo and the benchmarks."""
from __future__ import annotations

import time

import numpy as np

from reference.models import Models


def bare_generator_fps(models: Models, frames: int = 30, warmup: int = 3, seed: int = 0) -> float:
    """Frames per second of the generator alone on pre-built random inputs (same session, same threads)."""
    rng = np.random.default_rng(seed)
    image = rng.random((1, 6, 320, 320), dtype=np.float32)
    audio = rng.random((1, 32, 16, 16), dtype=np.float32)
    for _ in range(warmup):
        models.generate(image, audio)
    start = time.perf_counter()
    for _ in range(frames):
        models.generate(image, audio)
    return frames / (time.perf_counter() - start)
