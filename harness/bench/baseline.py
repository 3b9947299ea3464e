"""The bare generator, the baseline every benchmark is measured against.

`bare_generator` runs the generator model alone,
in its own ONNX Runtime session with a given thread count, on pre-built inputs. Nothing of the
pipeline (audio windows, template decoding, masking, pasting) runs, so a backend's FPS divided by
the bare generator's says how much of the machine the pipeline around the model costs.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from harness.verdicts.timing import latency_stats
from reference.models import ModelFiles, Models


def bare_generator_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pre-built generator inputs (image (1,6,320,320), audio (1,32,16,16)) for the bare baseline."""
    rng = np.random.default_rng(seed)
    image = rng.random((1, 6, 320, 320), dtype=np.float32)
    audio = rng.random((1, 32, 16, 16), dtype=np.float32)
    return image, audio


def bare_generator_fps(models: Models, frames: int = 30, warmup: int = 3, seed: int = 0) -> float:
    """Frames per second of the generator alone on pre-built random inputs (same session, same threads)."""
    image, audio = bare_generator_inputs(seed)
    for _ in range(warmup):
        models.generate(image, audio)
    start = time.perf_counter()
    for _ in range(frames):
        models.generate(image, audio)
    return frames / (time.perf_counter() - start)


def bare_generator(models_dir: str | Path, threads: int = 0, frames: int = 30, warmup: int = 3,
                   seed: int = 0) -> dict:
    """The generator alone: a fresh ONNX Runtime CPU session of the model folder's generator with
    `threads` intra-op threads (0: ONNX Runtime's default), `warmup` untimed calls, then `frames`
    timed calls on the same pre-built random inputs.

    Returns {"threads", "frames", "warmup", "seconds", "fps", "p50_ms", "p90_ms", "p99_ms",
    "max_ms", "mean_ms", "warmup_ms": [...]}.
    """
    if frames < 1:
        raise ValueError(f"bare_generator: frames must be at least 1, got {frames}")
    models = Models(ModelFiles.from_dir(models_dir), threads=int(threads))
    image, audio = bare_generator_inputs(seed)
    warm = []
    for _ in range(max(0, warmup)):
        t0 = time.perf_counter()
        models.generate(image, audio)
        warm.append(time.perf_counter() - t0)
    latencies = []
    start = time.perf_counter()
    for _ in range(frames):
        t0 = time.perf_counter()
        models.generate(image, audio)
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - start
    return {"threads": int(threads), "frames": frames, "warmup": max(0, warmup), "seconds": seconds,
            "fps": frames / seconds, **latency_stats(latencies), "warmup_ms": [w * 1000.0 for w in warm]}
