"""One backend's bench runs: in-process (every frame timed, the bare generator interleaved) or a port
in its own process (its timing lines, else the times its frame files appeared; RSS and CPU from the
OS); `bench_backend` makes the run record. ``fps`` is the steady state (after the warm-up) for every
backend, ``fps_end_to_end`` all frames over the whole run (load included), ``ttff_s`` the time to the
first frame."""
from __future__ import annotations

import gc
import os
import shutil
import time

from tqdm import tqdm

from harness.backends.base import Backend, BackendFailed, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.bench.baseline import BareWays, block_frames, fastest
from harness.bench.settings import effective_threads
from harness.runs.parity import record_error
from harness.system.procfs import (
    BackgroundProbe,
    cores,
    cpu_seconds,
    os_threads,
    peak_rss_mb,
    reset_peak_rss,
)
from harness.verdicts.timing import latency_stats, max_of, median_of
from reference.pipeline import FRAME_STAGES as PIPELINE_FRAME_STAGES

BARE_BLOCK = 5  # frames per alternating block of backend frames and bare-generator calls
AUDIO_STAGES = ("audio_load", "mel", "encoder")
"""Stages timed once per run (seconds per run); the others are timed per frame."""
FRAME_STAGES = PIPELINE_FRAME_STAGES + ("encode_write",)
STAGE_KEYS = AUDIO_STAGES + FRAME_STAGES
HARNESS_RSS = "harness process (VmHWM during the run)"  # whose peak RSS an in-process backend reports


def measure_inprocess(backend: Backend, inputs: RunInputs, warmup: int, frames: int, progress: bool,
                       label: str, bare: BareWays | None = None) -> dict:
    """One run of an in-process backend: every frame's delivery time, CPU and memory probes.

    With `bare` (every way of running the generator alone on the same threads), after every
    BARE_BLOCK (at most `frames`) measured frames a round of bare-generator blocks runs (that many
    calls of each way, rounded up to a multiple of its sessions: `block_frames`), so a machine whose
    speed drifts slows both alike; the bare rounds are excluded from the backend's time and CPU. A
    backend that makes frames ahead (`BackendRun.hold`) is held during them: its frames under way
    finish first, in its own time, and no other starts.
    """
    total = warmup + frames
    block = max(1, min(BARE_BLOCK, frames))
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
                with run.hold():  # frames under way finish first
                    paused, c_before = time.perf_counter(), os.times()  # the wait above is the backend's time
                    bare.block(block_frames(bare.width, block))
                    t_prev = time.perf_counter()
                paused_s += t_prev - paused
                paused_cpu += cpu_seconds(c_before, os.times())
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
    cpu = cpu_seconds(cpu0, cpu1) - paused_cpu
    whole = t_end - started - paused_s
    return {"fps": frames / wall if wall > 0 else None, "fps_basis": "wall of the measured frames",
            "fps_end_to_end": total / whole if whole > 0 else None, "ttff_s": load_s + intervals[0],
            "measured_s": wall, "load_s": load_s, "warmup_s": sum(intervals[:warmup]),
            "latencies": latencies, "latency_source": source, "warmup_latencies": warm,
            "stages": dict(timings.get("stages") or {}), "stage_counts": {},
            "peak_rss_mb": peak_rss_mb(), "peak_rss_reset": reset, "peak_rss_of": HARNESS_RSS,
            "cpu_s": cpu, "cpu_util": cpu / wall / cores() if wall > 0 else None, "os_threads": threads,
            "info": run.info}


def measure_external(backend: Backend, inputs: RunInputs, warmup: int, frames: int, progress: bool,
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
    appear = timings.get("frame_appear_s") or []
    seen = sorted(appear) if appear and None not in appear else []
    if len(lines) >= total:
        latencies, warm = lines[warmup:total], lines[:warmup]
        measured = sum(latencies)
        fps, basis, source = (frames / measured if measured > 0 else None), "the port's frame lines", "port"
    elif len(seen) >= total and total >= 2:
        gaps = [b - a for a, b in zip(seen, seen[1:])]  # gaps[k-1]: the wait for frame k
        latencies, warm = gaps[max(warmup, 1) - 1:], gaps[:max(warmup, 1) - 1]
        measured = sum(latencies)
        fps = len(latencies) / measured if measured > 0 else None
        basis, source = "frame files appearing after the warm-up", "output folder"
    else:
        latencies, warm, measured = [], [], wall
        fps, basis, source = (total / wall if wall > 0 else None), "process wall (load and warm-up included)", None
    cpu = timings.get("cpu_s")
    return {"fps": fps, "fps_basis": basis, "measured_s": measured, "load_s": None,
            "fps_end_to_end": total / wall if wall > 0 else None, "ttff_s": seen[0] if seen else None,
            "warmup_s": sum(warm) if warm else None, "latencies": latencies, "latency_source": source,
            "warmup_latencies": warm, "stages": dict(timings.get("stages") or {}),
            "stage_counts": dict(timings.get("stage_counts") or {}),
            "peak_rss_mb": timings.get("peak_rss_mb"), "peak_rss_reset": True,
            "peak_rss_of": timings.get("peak_rss_of", "port process (wait4)"),
            "cpu_s": cpu, "cpu_util": cpu / wall / cores() if cpu is not None and wall > 0 else None,
            "os_threads": None, "info": run.info}


def bench_backend(backend: Backend, inputs: RunInputs, warmup: int, frames: int, repeats: int,
                  audio_name: str, progress: bool = True, bare: BareWays | None = None) -> dict:
    """A run record (results.json schema) with the backend's ``bench`` measurements; never raises for
    the backend's own failure (status "skipped" or "error" with the reason). With `bare`, the bare
    generator interleaved with its frames: every way under ``bare_interleaved_ways``, the fastest's
    FPS and name as ``bare_interleaved_fps`` and ``bare_interleaved_way``."""
    record = {"backend": backend.name, "kind": backend.kind, "audio": audio_name, "status": "error",
              "failures": [], "frames": 0, "options": backend.options,
              "bench": {"threads": effective_threads(backend), "frames": frames, "warmup": warmup,
                        "repeats": repeats}}
    inprocess = isinstance(backend, PipelineBackend)
    runs = []
    background = BackgroundProbe()
    try:
        backend.check_available()
        for k in range(repeats):
            shutil.rmtree(inputs.workdir, ignore_errors=True)
            inputs.workdir.mkdir(parents=True)
            label = backend.name + (f" ({k + 1}/{repeats})" if repeats > 1 else "")
            if inprocess:
                runs.append(measure_inprocess(backend, inputs, warmup, frames, progress, label, bare))
            else:
                runs.append(measure_external(backend, inputs, warmup, frames, progress, label))
    except Exception as exc:  # noqa: BLE001 - an engine error is this backend's, never the bench's end
        return record_error(record, exc)
    finally:
        gc.collect()
    latencies = [x for r in runs for x in r["latencies"]]
    stage_keys = sorted({key for r in runs for key in r["stages"]})
    bench = record["bench"]
    bench.update(
        fps=median_of([r["fps"] for r in runs]), fps_runs=[r["fps"] for r in runs], fps_basis=runs[0]["fps_basis"],
        fps_end_to_end=median_of([r["fps_end_to_end"] for r in runs]), ttff_s=median_of([r["ttff_s"] for r in runs]),
        measured_s=[r["measured_s"] for r in runs], load_s=[r["load_s"] for r in runs],
        warmup_s=[r["warmup_s"] for r in runs],
        warmup_latency_ms=[x * 1000.0 for x in runs[0]["warmup_latencies"]],
        latency_source=runs[0]["latency_source"],
        frame_latency_ms=[[x * 1000.0 for x in r["latencies"]] for r in runs],
        latency=latency_stats(latencies),
        stages_s={key: median_of([r["stages"].get(key) for r in runs]) for key in stage_keys},
        stage_counts=runs[-1]["stage_counts"] or {key: warmup + frames for key in stage_keys
                                                  if key not in AUDIO_STAGES},
        peak_rss_mb=max_of([r["peak_rss_mb"] for r in runs]), peak_rss_reset=all(r["peak_rss_reset"] for r in runs),
        peak_rss_of=runs[0]["peak_rss_of"],
        cpu_s=median_of([r["cpu_s"] for r in runs]), cpu_util=median_of([r["cpu_util"] for r in runs]),
        os_threads=max_of([r["os_threads"] for r in runs]),
    )
    if bare is not None and bare.rounds:
        ways = [w.report() for w in bare.ways]
        bench["bare_interleaved_ways"] = [{k: w[k] for k in ("way", "frames", "fps", "p50_ms", "error") if k in w}
                                          for w in ways]
        best = fastest(ways)
        if best is not None:
            bench["bare_interleaved_fps"], bench["bare_interleaved_way"] = best["fps"], best["way"]
    record.update(status="passed", frames=frames, info=runs[-1]["info"],
                  timings={"fps": bench["fps"], "steady_fps": bench["fps"], "fps_end_to_end": bench["fps_end_to_end"],
                           "ttff_s": bench["ttff_s"], **{k: v for k, v in bench["latency"].items()},
                           "stages": bench["stages_s"], "peak_rss_mb": bench["peak_rss_mb"],
                           "cpu_util": bench["cpu_util"], "os_threads": bench["os_threads"],
                           "warmup_frames": warmup, "background_cpu": background.share()})
    return record
