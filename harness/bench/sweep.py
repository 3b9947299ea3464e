"""The bench sweep: every backend of a config at every (threads, frames) point, with the bare-generator
baseline and the canonical reference of each point; see the package doc (`harness.bench`)."""
from __future__ import annotations

import gc
import sys
from pathlib import Path

from harness.backends.base import Backend, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.reference import ReferenceBackend
from harness.bench.baseline import bare_generator
from harness.bench.measure import bench_backend
from harness.bench.overhead import parity_overhead
from harness.system.procfs import cores
from harness.bench.settings import effective_threads, with_threads
from harness.runs.config import SILENCE, ConfigError, ParityConfig
from harness.runs.parity import audio_names, models_folder, silence_wav, start_results, unique_names
from harness.verdicts.results import write_results
from reference.conventions import Conventions
from reference.models import ModelFiles, Models

REFERENCE_NAME = "reference"


def _is_canonical_reference(backend: Backend) -> bool:
    return isinstance(backend, ReferenceBackend) and backend.conventions == Conventions()


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def run_bench(cfg: ParityConfig, warmup: int | None = None, repeats: int | None = None,
              threads: list[int] | None = None, frames_sweep: list[int] | None = None,
              progress: bool = True, results_path: Path | None = None, overhead: bool = True) -> dict:
    """Benchmark every backend of `cfg` on its first audio; a results document (see the module doc).

    A None argument takes the config's ``[bench]`` value (or its default). With `results_path` the
    document is written (validated, atomically) after every backend, as a parity run does. With
    `overhead`, each configured backend's parity overhead (`harness.bench.overhead`) follows the sweep,
    at the first frame count, under ``bench.overhead``.
    """
    settings = cfg.bench
    warmup = settings["warmup"] if warmup is None else int(warmup)
    repeats = settings["repeats"] if repeats is None else int(repeats)
    threads = settings["threads"] if threads is None else list(threads)
    frames_sweep = settings["frames"] if frames_sweep is None else list(frames_sweep)
    if warmup < 0 or repeats < 1:
        raise ConfigError(f"{cfg.path}: bench needs warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    if threads is not None and (not threads or any(t < 0 for t in threads)):
        raise ConfigError(f"{cfg.path}: bench threads must be integers >= 0, got {threads}")
    if frames_sweep is not None and (not frames_sweep or any(f < 1 for f in frames_sweep)):
        raise ConfigError(f"{cfg.path}: bench frames must be integers >= 1, got {frames_sweep}")
    frame_counts = frames_sweep or [cfg.frames]
    thread_counts: list[int | None] = list(threads) if threads else [None]

    out = cfg.output
    out.mkdir(parents=True, exist_ok=True)
    models = models_folder(cfg)
    first = cfg.audio[0]
    audio = silence_wav(out / "audio", warmup + max(frame_counts)) if first == SILENCE else Path(first)
    results = start_results(cfg, models, [audio])
    results["inputs"]["frames"] = max(frame_counts)
    points: list[dict] = []
    results["bench"] = {"warmup": warmup, "repeats": repeats, "threads": threads, "frames": frames_sweep,
                        "audio": audio.name, "cores": cores(), "points": points}

    configured = [spec.backend for spec in cfg.backends if spec.backend.runs_here]
    results["bench"]["not_timed"] = [spec.name for spec in cfg.backends if not spec.backend.runs_here]
    canonical = next((b for b in configured if _is_canonical_reference(b)), None)
    added = canonical is None
    if added:
        names = {b.name for b in configured}
        name = REFERENCE_NAME if REFERENCE_NAME not in names else f"{REFERENCE_NAME}:canonical"
        canonical = ReferenceBackend(name)
    order = [canonical] + [b for b in configured if b is not canonical]
    work = out / "bench-work"

    for t in thread_counts:
        for n in frame_counts:
            point = {"threads": t, "frames": n, "bare": {}, "reference": canonical.name,
                     "reference_added": added, "reference_fps": None}
            points.append(point)
            records = []
            for backend, backend_dir in zip(order, unique_names([b.name for b in order])):
                try:
                    backend_t = with_threads(backend, t)
                except ValueError as exc:  # an option the rebuilt backend rejects
                    records.append({"backend": backend.name, "kind": backend.kind, "audio": audio.name,
                                    "status": "error", "failures": [], "frames": 0, "reason": str(exc),
                                    "options": backend.options, "bench": {"threads": t, "frames": n}})
                    continue
                inputs = RunInputs(cfg.source, cfg.source_kind, audio, models, warmup + n, work / backend_dir,
                                   audio_names(cfg)[0])
                bare_t = effective_threads(backend_t)
                bare = (Models(ModelFiles.from_dir(models), threads=bare_t)
                        if bare_t is not None and isinstance(backend_t, PipelineBackend) else None)
                record = bench_backend(backend_t, inputs, warmup, n, repeats, audio.name, progress, bare)
                del bare
                record["bench"].update(point={"threads": t, "frames": n},
                                       canonical_reference=backend is canonical,
                                       added=backend is canonical and added)
                if record["status"] == "passed":
                    bare_t = record["bench"]["threads"] if record["bench"]["threads"] is not None else (t or 0)
                    key = str(bare_t)  # JSON object keys are strings
                    if key not in point["bare"]:
                        point["bare"][key] = _bare(models, bare_t, n, warmup, repeats)
                    record["bench"]["bare_threads"] = bare_t
                    record["bench"]["bare_fps"] = record["bench"].get("bare_interleaved_fps") or point["bare"][key]["fps"]
                    record["bench"]["x_bare"] = _ratio(record["bench"]["fps"], record["bench"]["bare_fps"])
                    if backend is canonical:
                        point["reference_fps"] = record["bench"]["fps"]
                records.append(record)
                results["runs"].append(record)
                if results_path is not None:
                    write_results(results, results_path)
            for record in records:
                if record["status"] == "passed":
                    record["bench"]["reference_fps"] = point["reference_fps"]
                    record["bench"]["x_reference"] = _ratio(record["bench"]["fps"], point["reference_fps"])
    if overhead:
        results["bench"]["overhead"] = []
        passed = {r["backend"] for r in results["runs"] if r["status"] == "passed"}
        timed = [spec for spec in cfg.backends if spec.backend.runs_here]
        for spec, backend_dir in zip(timed, unique_names([s.name for s in timed])):
            if spec.name not in passed:  # it could not run: nothing to compare its run with
                results["bench"]["overhead"].append(
                    {"backend": spec.name, "status": "not measured", "frames": frame_counts[0],
                     "wall_s": None, "backend_s": None, "ratio": None, "reason": "its bench run did not pass"})
                continue
            if progress:
                print(f"parity overhead: {spec.name} ...", file=sys.stderr)
            found = parity_overhead(cfg, spec, audio, frame_counts[0], out / "bench-overhead" / backend_dir)
            results["bench"]["overhead"].append({"backend": spec.name, **found})
    results["partial"] = False
    if results_path is not None:
        write_results(results, results_path)
    return results


def _bare(models: Path, threads: int, frames: int, warmup: int, repeats: int) -> dict:
    """The bare generator at this thread count, `repeats` times; the median FPS run's numbers."""
    gc.collect()
    runs = [bare_generator(models, threads=threads, frames=frames, warmup=warmup) for _ in range(repeats)]
    runs.sort(key=lambda r: r["fps"])
    best = dict(runs[len(runs) // 2])
    best["fps_runs"] = [r["fps"] for r in runs]
    return best
