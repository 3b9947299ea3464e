"""The bench sweep: every backend of a config at every (threads, frames) point, with the bare-generator
baseline and the canonical reference of each point; see the package doc (`harness.bench`)."""
from __future__ import annotations

import gc
import sys
from pathlib import Path

from harness.backends.base import Backend, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.reference import ReferenceBackend
from harness.bench.baseline import BareWays, bare_generator
from harness.bench.measure import bench_backend
from harness.bench.overhead import parity_overhead
from harness.bench.settings import effective_threads, with_threads
from harness.runs.config import SILENCE, ConfigError, ParityConfig
from harness.runs.parity import (
    audio_names,
    models_folder,
    silence_wav,
    start_results,
    unique_names,
)
from harness.system.procfs import cores
from harness.verdicts.results import write_results
from reference.conventions import Conventions

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
    warmup, repeats, threads, frames_sweep = _settings(cfg, warmup, repeats, threads, frames_sweep)
    frame_counts = frames_sweep or [cfg.frames]
    out = cfg.output
    out.mkdir(parents=True, exist_ok=True)
    models = models_folder(cfg)
    first = cfg.audio[0]
    audio = silence_wav(out / "audio", warmup + max(frame_counts)) if first == SILENCE else Path(first)
    results = start_results(cfg, models, [audio])
    results["inputs"]["frames"] = max(frame_counts)
    results["bench"] = {"warmup": warmup, "repeats": repeats, "threads": threads, "frames": frames_sweep,
                        "audio": audio.name, "cores": cores(), "points": []}
    configured = [spec.backend for spec in cfg.backends if spec.backend.runs_here]
    results["bench"]["not_timed"] = [spec.name for spec in cfg.backends if not spec.backend.runs_here]
    canonical = next((b for b in configured if _is_canonical_reference(b)), None)
    added = canonical is None
    if added:
        names = {b.name for b in configured}
        canonical = ReferenceBackend(REFERENCE_NAME if REFERENCE_NAME not in names else f"{REFERENCE_NAME}:canonical")
    sweep = _Sweep(cfg, models, audio, warmup, repeats, progress, [canonical] + [b for b in configured
                                                                              if b is not canonical], added)
    for t in (list(threads) if threads else [None]):
        for n in frame_counts:
            results["bench"]["points"].append(sweep.point(t, n, results, results_path))
    if overhead:
        results["bench"]["overhead"] = _overheads(cfg, results, audio, frame_counts[0], progress)
    results["partial"] = False
    if results_path is not None:
        write_results(results, results_path)
    return results


def _settings(cfg: ParityConfig, warmup, repeats, threads, frames_sweep) -> tuple:
    """(warmup, repeats, threads, frames) from the arguments, a None one from the config's ``[bench]``;
    ConfigError naming the config for a value out of range."""
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
    return warmup, repeats, threads, frames_sweep


class _Sweep:
    """What every point of the sweep shares: the config, models, audio, settings and the backends in
    order (the canonical reference first; `added` when the bench added it)."""

    def __init__(self, cfg: ParityConfig, models: Path, audio: Path, warmup: int, repeats: int, progress: bool,
                 order: list[Backend], added: bool) -> None:
        self.cfg, self.models, self.audio, self.warmup, self.repeats = cfg, models, audio, warmup, repeats
        self.progress, self.order, self.added = progress, order, added
        self.canonical = order[0]

    def point(self, t: int | None, n: int, results: dict, results_path: Path | None) -> dict:
        """Every backend at `t` threads (None: its own) and `n` frames; each record joins `results`."""
        point = {"threads": t, "frames": n, "bare": {}, "reference": self.canonical.name,
                 "reference_added": self.added, "reference_fps": None}
        records = []
        for backend, backend_dir in zip(self.order, unique_names([b.name for b in self.order])):
            record = self._record(backend, backend_dir, t, n, point)
            records.append(record)
            results["runs"].append(record)
            if results_path is not None:
                write_results(results, results_path)
        for record in records:
            if record["status"] == "passed":
                record["bench"]["reference_fps"] = point["reference_fps"]
                record["bench"]["x_reference"] = _ratio(record["bench"]["fps"], point["reference_fps"])
        return point

    def _record(self, backend: Backend, backend_dir: str, t: int | None, n: int, point: dict) -> dict:
        """One backend's bench record at this point, against the bare generator at its thread count."""
        try:
            backend_t = with_threads(backend, t)
        except ValueError as exc:  # an option the rebuilt backend rejects
            return {"backend": backend.name, "kind": backend.kind, "audio": self.audio.name,
                    "status": "error", "failures": [], "frames": 0, "reason": str(exc),
                    "options": backend.options, "bench": {"threads": t, "frames": n}}
        inputs = RunInputs(self.cfg.source, self.cfg.source_kind, self.audio, self.models, self.warmup + n,
                           self.cfg.output / "bench-work" / backend_dir, audio_names(self.cfg)[0])
        bare_t = effective_threads(backend_t)
        bare = (BareWays(self.models, bare_t)
                if bare_t is not None and isinstance(backend_t, PipelineBackend) else None)
        if bare is not None:
            bare.warm(1)
        try:
            record = bench_backend(backend_t, inputs, self.warmup, n, self.repeats, self.audio.name, self.progress,
                                   bare)
        finally:
            if bare is not None:
                bare.close()
        del bare
        is_canonical = backend is self.canonical
        record["bench"].update(point={"threads": t, "frames": n}, canonical_reference=is_canonical,
                               added=is_canonical and self.added)
        if record["status"] == "passed":
            bare_t = record["bench"]["threads"] if record["bench"]["threads"] is not None else (t or 0)
            key = str(bare_t)  # JSON object keys are strings
            if key not in point["bare"]:
                point["bare"][key] = _bare(self.models, bare_t, n, self.warmup, self.repeats)
            record["bench"]["bare_threads"] = bare_t
            interleaved = record["bench"].get("bare_interleaved_fps")
            record["bench"]["bare_fps"] = interleaved or point["bare"][key]["fps"]
            record["bench"]["bare_way"] = (record["bench"]["bare_interleaved_way"] if interleaved
                                           else point["bare"][key]["way"])
            record["bench"]["x_bare"] = _ratio(record["bench"]["fps"], record["bench"]["bare_fps"])
            if is_canonical:
                point["reference_fps"] = record["bench"]["fps"]
        return record


def _overheads(cfg: ParityConfig, results: dict, audio: Path, frames: int, progress: bool) -> list[dict]:
    """Each configured backend's parity overhead (`harness.bench.overhead`) at `frames` frames."""
    found_all = []
    passed = {r["backend"] for r in results["runs"] if r["status"] == "passed"}
    timed = [spec for spec in cfg.backends if spec.backend.runs_here]
    for spec, backend_dir in zip(timed, unique_names([s.name for s in timed])):
        if spec.name not in passed:  # it could not run: nothing to compare its run with
            found_all.append({"backend": spec.name, "status": "not measured", "frames": frames,
                              "wall_s": None, "backend_s": None, "ratio": None, "reason": "its bench run did not pass"})
            continue
        if progress:
            print(f"parity overhead: {spec.name} ...", file=sys.stderr)
        found = parity_overhead(cfg, spec, audio, frames, cfg.output / "bench-overhead" / backend_dir)
        found_all.append({"backend": spec.name, **found})
    return found_all


def _bare(models: Path, threads: int, frames: int, warmup: int, repeats: int) -> dict:
    """The bare generator at this thread count, `repeats` times; the median FPS run's numbers."""
    gc.collect()
    runs = [bare_generator(models, threads=threads, frames=frames, warmup=warmup) for _ in range(repeats)]
    runs.sort(key=lambda r: r["fps"])
    best = dict(runs[len(runs) // 2])
    best["fps_runs"] = [r["fps"] for r in runs]
    return best
