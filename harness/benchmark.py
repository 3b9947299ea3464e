"""`synctalk-parity bench`: how fast each backend of a parity config is, against the bare generator.

For each backend of the config (and a canonical `reference`, added when the config has none) and
the config's first audio only, a run makes `warmup + frames` frames, `repeats` times; the frames
are consumed and thrown away (no comparison). Per backend and sweep point it records:

* FPS end to end: measured frames / wall time of the measured frames (warm-up frames and the
  load, i.e. model sessions and audio features, excluded; both reported);
* seconds per pipeline stage (the backend's ``timings["stages"]``, covering warm-up frames too);
* per-frame latency p50/p90/p99/max of the measured frames (the backend's own per-frame latency
  when it gives one per frame, else the time between consecutive frames);
* peak RSS, with ``peak_rss_of`` saying whose (in-process: the high-water mark is reset through
  ``/proc/self/clear_refs`` before the backend runs and ``VmHWM`` read after, so it is the
  process's peak during the run, the harness's own memory included; a subprocess port: its own
  peak RSS from ``wait4``, not the harness's), CPU utilisation (user +
  system CPU seconds of the measured frames / wall / cores) and the OS thread count at the end
  of the run (``/proc/self/status``; None off Linux and for ports);
* FPS as a ratio to the **bare generator** (the generator model alone on pre-built inputs, same
  thread count, measured in the same run: `harness.bench.bare_generator`) and to the canonical
  **reference** at the same sweep point.

Sweeps: ``threads`` (every in-process backend rebuilt with its thread option set: ``threads``
for reference, fp16 and openvino, ``intra_op_threads`` for onnxruntime; a subprocess port keeps
its own threading) and ``frames``. Settings come from the arguments, else from the config's
``[bench]`` table (``warmup`` = 5, ``repeats`` = 1, ``threads`` = none, ``frames`` = none, i.e.
the config's own threads and ``[data].frames``).

The results document has the schema of results.json (`harness.results`): one run record per
backend x sweep point with status passed / skipped / error, its ``bench`` measurements and a
``timings`` summary; the top-level ``bench`` key holds the settings, the sweep points and their
bare-generator baselines.
"""
from __future__ import annotations

import gc
import math
import os
import shutil
import statistics
import time
from pathlib import Path

from tqdm import tqdm

from harness.backends.base import Backend, BackendFailed, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.reference import ReferenceBackend
from harness.backends.registry import make_backend
from harness.bench import bare_generator, bare_generator_inputs, latency_stats
from harness.config import SILENCE, ConfigError, ParityConfig, check_bench, load_config, read_toml
from harness.console import grid
from harness.parity import exit_code, models_folder, record_error, silence_wav, start_results, unique_names
from harness.results import write_results
from harness.terminal import colour_enabled
from reference.conventions import Conventions
from reference.models import ModelFiles, Models

BARE_BLOCK = 5  # frames per alternating block of backend frames and bare-generator calls
THREAD_OPTION = {"reference": "threads", "fp16": "threads", "openvino": "threads",
                 "onnxruntime": "intra_op_threads"}
"""The option that sets a backend kind's thread count (kinds not listed cannot be told)."""
AUDIO_STAGES = ("audio_load", "mel", "encoder")
FRAME_STAGES = ("frame_decode", "preprocess", "generator", "postprocess", "encode_write")
STAGE_KEYS = AUDIO_STAGES + FRAME_STAGES
REFERENCE_NAME = "reference"
HARNESS_RSS = "harness process (VmHWM during the run)"  # whose peak RSS an in-process backend reports
TOP_STAGES = 3


# --------------------------------------------------------------------------- settings

def bench_settings(path: str | Path) -> dict:
    """The ``[bench]`` table of a parity config, checked (`harness.config.check_bench`), with defaults."""
    path = Path(path)
    return check_bench(path, read_toml(path).get("bench", {}))


def parse_int_list(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4] (for ``--threads`` / ``--frames``); ValueError on anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers such as 1,2,4, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"expected comma-separated integers >= 0 such as 1,2,4, got {text!r}")
    return values


# --------------------------------------------------------------------------- process probes

def _status_fields() -> dict[str, str]:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """This process's RSS high-water mark (``VmHWM``) in MiB; None off Linux."""
    value = _status_fields().get("VmHWM")
    return int(value.split()[0]) / 1024.0 if value else None


def os_threads() -> int | None:
    """Threads of this process now (``/proc/self/status``); None off Linux."""
    value = _status_fields().get("Threads")
    return int(value.strip()) if value else None


def _cores() -> int:
    return os.cpu_count() or 1


def _cpu_seconds(before: os.times_result, after: os.times_result) -> float:
    return (after.user - before.user) + (after.system - before.system)


# --------------------------------------------------------------------------- one run

def _measure_inprocess(backend: Backend, inputs: RunInputs, warmup: int, frames: int, progress: bool,
                       label: str, bare: Models | None = None) -> dict:
    """One run of an in-process backend: every frame's delivery time, CPU and memory probes.

    With `bare` (the generator alone, same threads), blocks of BARE_BLOCK (at most `frames`)
    bare-generator calls alternate with blocks of measured frames, so a machine whose speed drifts slows both alike;
    the bare blocks are excluded from the backend's time and CPU.
    """
    total = warmup + frames
    block = max(1, min(BARE_BLOCK, frames))
    bare_inputs = bare_generator_inputs() if bare is not None else None
    bare_times: list[float] = []
    paused_s, paused_cpu = 0.0, 0.0
    gc.collect()
    reset = reset_peak_rss()
    started = time.perf_counter()
    run = backend.run(inputs)
    frames_iter = iter(run.frames)
    t_prev = time.perf_counter()
    load_s = t_prev - started
    t_measure, cpu0 = t_prev, os.times()
    intervals = []
    bar = tqdm(total=total, desc=label, unit="frame", disable=not progress, leave=False)
    try:
        for k in range(total):
            try:
                next(frames_iter)
            except StopIteration:
                raise BackendFailed(f"produced {k} frames, expected {total}") from None
            now = time.perf_counter()
            intervals.append(now - t_prev)
            t_prev = now
            if k == warmup - 1:
                t_measure, cpu0 = now, os.times()
            bar.update()
            if bare is not None and k >= warmup and (k - warmup) % block == block - 1:
                c_before = os.times()
                for _ in range(block):
                    t0 = time.perf_counter()
                    bare.generate(*bare_inputs)
                    bare_times.append(time.perf_counter() - t0)
                t_prev = time.perf_counter()
                paused_s += t_prev - now
                paused_cpu += _cpu_seconds(c_before, os.times())
    finally:
        bar.close()
    t_end, cpu1 = t_prev, os.times()
    threads = os_threads()
    for _ in frames_iter:  # let the backend finish (its timings are complete once the iterator ends)
        pass
    wall = t_end - t_measure - paused_s
    timings = run.timings
    backend_latency = timings.get("frame_latency") or []
    if len(backend_latency) == total:
        latencies, source = list(backend_latency[warmup:]), "backend"
        warm = list(backend_latency[:warmup])
    else:
        latencies, source, warm = intervals[warmup:], "interval", intervals[:warmup]
    cpu = _cpu_seconds(cpu0, cpu1) - paused_cpu
    return {"fps": frames / wall if wall > 0 else None, "fps_basis": "wall of the measured frames",
            "bare_latencies": bare_times,
            "measured_s": wall, "load_s": load_s, "warmup_s": sum(intervals[:warmup]),
            "latencies": latencies, "latency_source": source, "warmup_latencies": warm,
            "stages": dict(timings.get("stages") or {}), "stage_counts": {},
            "peak_rss_mb": peak_rss_mb(), "peak_rss_reset": reset, "peak_rss_of": HARNESS_RSS,
            "cpu_s": cpu, "cpu_util": cpu / wall / _cores() if wall > 0 else None, "os_threads": threads,
            "info": run.info}


def _measure_external(backend: Backend, inputs: RunInputs, warmup: int, frames: int, progress: bool,
                      label: str) -> dict:
    """One run of a port in its own process: its timing lines, peak RSS and CPU from the OS."""
    total = warmup + frames
    run = backend.run(inputs)  # returns once the port has exited
    count = 0
    for _ in tqdm(run.frames, total=total, desc=label, unit="frame", disable=not progress, leave=False):
        count += 1
    if count < total:
        raise BackendFailed(f"produced {count} frames, expected {total}")
    timings = run.timings
    wall = float(timings.get("total") or 0.0)
    lines = list(timings.get("frame_latency") or [])
    if len(lines) >= total:
        latencies, warm = lines[warmup:total], lines[:warmup]
        measured = sum(latencies)
        fps, basis, source = (frames / measured if measured > 0 else None), "the port's frame lines", "port"
    else:
        latencies, warm, measured = [], [], wall
        fps, basis, source = (total / wall if wall > 0 else None), "process wall (load and warm-up included)", None
    cpu = timings.get("cpu_s")
    return {"fps": fps, "fps_basis": basis, "measured_s": measured, "load_s": None,
            "warmup_s": sum(warm) if warm else None, "latencies": latencies, "latency_source": source,
            "warmup_latencies": warm, "stages": dict(timings.get("stages") or {}),
            "stage_counts": dict(timings.get("stage_counts") or {}),
            "peak_rss_mb": timings.get("peak_rss_mb"), "peak_rss_reset": True,
            "peak_rss_of": timings.get("peak_rss_of", "port process (wait4)"),
            "cpu_s": cpu, "cpu_util": cpu / wall / _cores() if cpu is not None and wall > 0 else None,
            "os_threads": None, "info": run.info}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _max(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return max(values) if values else None


def effective_threads(backend: Backend) -> int | None:
    """The intra-op thread count a backend runs with (0: the engine's default); None for a port."""
    key = THREAD_OPTION.get(backend.kind)
    return None if key is None else int(backend.options.get(key, 0))


def with_threads(backend: Backend, threads: int | None) -> Backend:
    """The backend rebuilt with its thread option set to `threads` (unchanged for None or a port)."""
    key = THREAD_OPTION.get(backend.kind)
    if threads is None or key is None:
        return backend
    return make_backend(backend.name, {**backend.options, "kind": backend.kind, key: int(threads)})


def bench_backend(backend: Backend, inputs: RunInputs, warmup: int, frames: int, repeats: int,
                  audio_name: str, progress: bool = True, bare: Models | None = None) -> dict:
    """A run record (results.json schema) with the backend's ``bench`` measurements; never raises for
    the backend's own failure (status "skipped" or "error" with the reason)."""
    record = {"backend": backend.name, "kind": backend.kind, "audio": audio_name, "status": "error",
              "failures": [], "frames": 0, "options": backend.options,
              "bench": {"threads": effective_threads(backend), "frames": frames, "warmup": warmup,
                        "repeats": repeats}}
    inprocess = isinstance(backend, PipelineBackend)
    runs = []
    try:
        backend.check_available()
        for k in range(repeats):
            shutil.rmtree(inputs.workdir, ignore_errors=True)
            inputs.workdir.mkdir(parents=True)
            label = backend.name + (f" ({k + 1}/{repeats})" if repeats > 1 else "")
            if inprocess:
                runs.append(_measure_inprocess(backend, inputs, warmup, frames, progress, label, bare))
            else:
                runs.append(_measure_external(backend, inputs, warmup, frames, progress, label))
    except Exception as exc:  # noqa: BLE001 - an engine error is this backend's, never the bench's end
        return record_error(record, exc)
    finally:
        gc.collect()
    latencies = [x for r in runs for x in r["latencies"]]
    stage_keys = sorted({key for r in runs for key in r["stages"]})
    bench = record["bench"]
    bench.update(
        fps=_median([r["fps"] for r in runs]), fps_runs=[r["fps"] for r in runs], fps_basis=runs[0]["fps_basis"],
        measured_s=[r["measured_s"] for r in runs], load_s=[r["load_s"] for r in runs],
        warmup_s=[r["warmup_s"] for r in runs],
        warmup_latency_ms=[x * 1000.0 for x in runs[0]["warmup_latencies"]],
        latency_source=runs[0]["latency_source"],
        frame_latency_ms=[[x * 1000.0 for x in r["latencies"]] for r in runs],
        latency=latency_stats(latencies),
        stages_s={key: _median([r["stages"].get(key) for r in runs]) for key in stage_keys},
        stage_counts=runs[-1]["stage_counts"] or {key: warmup + frames for key in stage_keys
                                                  if key not in AUDIO_STAGES},
        peak_rss_mb=_max([r["peak_rss_mb"] for r in runs]), peak_rss_reset=all(r["peak_rss_reset"] for r in runs),
        peak_rss_of=runs[0]["peak_rss_of"],
        cpu_s=_median([r["cpu_s"] for r in runs]), cpu_util=_median([r["cpu_util"] for r in runs]),
        os_threads=_max([r["os_threads"] for r in runs]),
    )
    bare_times = [x for r in runs for x in r.get("bare_latencies", [])]
    if bare_times:
        bench["bare_interleaved_fps"] = len(bare_times) / sum(bare_times)
    record.update(status="passed", frames=frames, info=runs[-1]["info"],
                  timings={"fps": bench["fps"], **{k: v for k, v in bench["latency"].items()},
                           "stages": bench["stages_s"], "peak_rss_mb": bench["peak_rss_mb"],
                           "cpu_util": bench["cpu_util"], "os_threads": bench["os_threads"],
                           "warmup_frames": warmup})
    return record


# --------------------------------------------------------------------------- the sweep

def _is_canonical_reference(backend: Backend) -> bool:
    return isinstance(backend, ReferenceBackend) and backend.conventions == Conventions()


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def run_bench(cfg: ParityConfig, warmup: int | None = None, repeats: int | None = None,
              threads: list[int] | None = None, frames_sweep: list[int] | None = None,
              progress: bool = True, results_path: Path | None = None) -> dict:
    """Benchmark every backend of `cfg` on its first audio; a results document (see the module doc).

    A None argument takes the config's ``[bench]`` value (or its default). With `results_path` the
    document is written (validated, atomically) after every backend, as a parity run does.
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
                        "audio": audio.name, "cores": _cores(), "points": points}

    configured = [spec.backend for spec in cfg.backends]
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
                inputs = RunInputs(cfg.source, cfg.source_kind, audio, models, warmup + n, work / backend_dir)
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


# --------------------------------------------------------------------------- table and CLI

def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec)


def _threads_label(value) -> str:
    return "-" if value is None else ("auto" if int(value) == 0 else str(value))


def _stage_text(bench: dict, key: str) -> str:
    """A stage's time: ms per frame for frame stages, seconds for the once-per-run audio stages."""
    seconds = bench.get("stages_s", {}).get(key)
    if seconds is None:
        return "-"
    count = bench.get("stage_counts", {}).get(key)
    if key in AUDIO_STAGES or not count:
        return f"{seconds:.2f} s"
    return f"{seconds / count * 1000.0:.1f} ms/f"


def _rss_text(bench: dict) -> str:
    """Peak RSS in MB and whose it is: "557 (port)" for a port's own, "1244 (harness)" in-process."""
    value = _fmt(bench.get("peak_rss_mb"), ".0f")
    whose = bench.get("peak_rss_of", "")
    return value if value == "-" or not whose else f"{value} ({whose.split()[0]})"


def _top_stages(bench: dict) -> str:
    stages = {k: v for k, v in bench.get("stages_s", {}).items() if v is not None}
    top = sorted(stages, key=lambda k: stages[k], reverse=True)[:TOP_STAGES]
    return ", ".join(f"{k} {_stage_text(bench, k)}" for k in top) or "-"


def bench_table(results: dict, colour: bool = False) -> str:
    """The console tables of a bench: per sweep point one line per backend, then its stage times;
    statuses coloured with `colour` (a terminal)."""
    bench = results.get("bench", {})
    lines = [f"bench: {bench.get('audio', '?')}, warm-up {bench.get('warmup')} frames (excluded), "
             f"{bench.get('repeats')} repeat(s), {bench.get('cores')} cores, "
             f"machine {results.get('machine', {}).get('cpu', '?')}"]
    notes = []
    for point in bench.get("points", []):
        records = [r for r in results["runs"]
                   if r.get("bench", {}).get("point") == {"threads": point["threads"], "frames": point["frames"]}]
        bares = point.get("bare", {})
        bare_text = ", ".join(f"{_fmt(b['fps'], '.2f')} FPS at {_threads_label(k)} threads "
                              f"(p50 {_fmt(b.get('p50_ms'), '.1f')} ms)" for k, b in bares.items()) or "-"
        lines += ["", f"threads {_threads_label(point['threads']) if point['threads'] is not None else 'as configured'}"
                      f", frames {point['frames']}: bare generator {bare_text}; reference = {point['reference']}"
                      + (" (added)" if point.get("reference_added") else "")]
        head = ("backend", "status", "threads", "frames", "FPS", "x bare", "x ref", "p50 ms", "p99 ms",
                "peak RSS MB", "CPU %", "OS threads", "top stages")
        rows = [head]
        stage_rows = [("backend",) + STAGE_KEYS]
        for r in records:
            b = r.get("bench", {})
            lat = b.get("latency", {})
            cpu = b.get("cpu_util")
            rows.append((r["backend"], r["status"].upper(), _threads_label(b.get("threads")), b.get("frames", "-"),
                         _fmt(b.get("fps"), ".2f"), _fmt(b.get("x_bare"), ".2f"), _fmt(b.get("x_reference"), ".2f"),
                         _fmt(lat.get("p50_ms"), ".1f"), _fmt(lat.get("p99_ms"), ".1f"),
                         _rss_text(b), _fmt(None if cpu is None else cpu * 100.0, ".0f"),
                         _fmt(b.get("os_threads"), "d"), _top_stages(b)))
            if r["status"] == "passed":
                stage_rows.append((r["backend"],) + tuple(_stage_text(b, k) for k in STAGE_KEYS))
            if r.get("reason"):
                notes.append(f"  {r['backend']} (threads {_threads_label(point['threads'])}, "
                             f"frames {point['frames']}): {r['status']}: {r['reason']}")
        lines += grid(rows, colour, 1)
        if len(stage_rows) > 1:
            lines += ["", "stages (audio: s per run; frames: ms per frame, warm-up included):"] + grid(stage_rows)
    lines += ["", "peak RSS: (port) is a subprocess port's own (wait4 through a small launcher); (harness) is "
                  "this process's peak during an in-process backend's run, the harness's own memory included"]
    if notes:
        lines += ["", "not measured:"] + notes
    return "\n".join(lines)


def bench_main(config: str | Path, backends: list[str] | None = None, threads: list[int] | None = None,
               frames: list[int] | None = None, warmup: int | None = None, repeats: int | None = None,
               output: str | Path | None = None, progress: bool = True) -> int:
    """`synctalk-parity bench`: run the bench, write ``OUTPUT/bench.json`` (default: the config's
    ``[run].output``), print the table. 0 when every backend ran, 3 when one was skipped or failed;
    a config error raises ConfigError (exit 2 in the CLI)."""
    cfg = load_config(config, only=backends or None, output=output)
    path = cfg.output / "bench.json"
    results = run_bench(cfg, warmup, repeats, threads, frames, progress, results_path=path)
    print(bench_table(results, colour_enabled()))
    print(f"\nbench -> {path}")
    return exit_code(results)
