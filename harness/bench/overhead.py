"""Parity overhead: what a `run` costs beyond the backend itself.

For one backend, a one-backend, one-audio parity run (the bench's audio and frame count, the
reference already in the cache, no diagnosis, no video) is timed from `run_parity`'s call to its
return: hashing the inputs, reading the cached reference, streaming every frame's metrics, the
worst-frame crops and results.json. The ratio is that wall time over the backend's own run time
in the same run (``timings.total``: for a port, its process from start to exit; in process, from
loading the models to the last frame).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from harness.backends.base import RunInputs
from harness.runs.config import BackendSpec, ParityConfig
from harness.runs.parity import (
    REFERENCE_DIR,
    fresh_dir,
    golden_audios,
    models_folder,
    reference_of,
    run_parity,
    start_results,
)


def parity_overhead(cfg: ParityConfig, spec: BackendSpec, audio: Path, frames: int, folder: Path) -> dict:
    """``wall_s`` (the whole run), ``backend_s`` (the backend's own run time), ``ratio`` (wall over backend,
    None when the backend did not run), the run's ``status`` and ``reference`` entry; results in `folder`."""
    one = dataclasses.replace(cfg, backends=[spec], audio=[str(audio)], frames=frames, output=folder,
                              explain=False, video=False, report=None, cache=True)
    models = models_folder(one)
    results = start_results(one, models, [audio])
    warm = RunInputs(one.source, one.source_kind, audio, models, frames, fresh_dir(folder / "warm" / REFERENCE_DIR))
    reference_of(one, results, 0, warm, golden_audios(one, results["inputs"]), progress=False)  # cached now
    started = time.perf_counter()
    done, _ = run_parity(one, progress=False)
    wall = time.perf_counter() - started
    record = done["runs"][0]
    backend_s = record.get("timings", {}).get("total")
    return {"wall_s": wall, "backend_s": backend_s, "ratio": wall / backend_s if backend_s else None,
            "status": record["status"], "reason": record.get("reason"), "reference": done["reference"][0],
            "frames": frames}
