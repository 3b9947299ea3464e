"""The console tables of a bench: per sweep point one row per backend, then its stage times."""
from __future__ import annotations

from harness.bench.baseline import ways_text
from harness.bench.measure import AUDIO_STAGES, STAGE_KEYS
from harness.text.tables import fmt_number, grid

TOP_STAGES = 3


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


def rss_text(bench: dict) -> str:
    """Peak RSS in MB and whose it is: "557 (port)" for a port's own, "1244 (harness)" in-process."""
    value = fmt_number(bench.get("peak_rss_mb"), ".0f")
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
        bare_text = ", ".join(f"{fmt_number(b['fps'], '.2f')} FPS at {_threads_label(k)} threads "
                              f"({b.get('way', '?')}; p50 {fmt_number(b.get('p50_ms'), '.1f')} ms)"
                              for k, b in bares.items()) or "-"
        lines += ["", f"threads {_threads_label(point['threads']) if point['threads'] is not None else 'as configured'}"
                      f", frames {point['frames']}: bare generator {bare_text}; reference = {point['reference']}"
                      + (" (added)" if point.get("reference_added") else "")]
        lines += [f"  every way at {_threads_label(k)} threads: {ways_text(b.get('ways', []))}"
                  for k, b in bares.items() if b.get("ways")]
        head = ("backend", "status", "threads", "frames", "steady FPS", "e2e FPS", "TTFF s", "x bare", "x ref",
                "p50 ms", "p99 ms",
                "peak RSS MB", "CPU %", "OS threads", "top stages")
        rows = [head]
        stage_rows = [("backend",) + STAGE_KEYS]
        for r in records:
            b = r.get("bench", {})
            lat = b.get("latency", {})
            cpu = b.get("cpu_util")
            rows.append((r["backend"], r["status"].upper(), _threads_label(b.get("threads")), b.get("frames", "-"),
                         fmt_number(b.get("fps"), ".2f"), fmt_number(b.get("fps_end_to_end"), ".2f"),
                         fmt_number(b.get("ttff_s"), ".2f"), fmt_number(b.get("x_bare"), ".2f"), fmt_number(b.get("x_reference"), ".2f"),
                         fmt_number(lat.get("p50_ms"), ".1f"), fmt_number(lat.get("p99_ms"), ".1f"),
                         rss_text(b), fmt_number(None if cpu is None else cpu * 100.0, ".0f"),
                         fmt_number(b.get("os_threads"), "d"), _top_stages(b)))
            if r["status"] == "passed":
                stage_rows.append((r["backend"],) + tuple(_stage_text(b, k) for k in STAGE_KEYS))
            if r.get("reason"):
                notes.append(f"  {r['backend']} (threads {_threads_label(point['threads'])}, "
                             f"frames {point['frames']}): {r['status']}: {r['reason']}")
        lines += grid(rows, colour, 1)
        interleaved = [f"{r['backend']} {ways_text(r['bench']['bare_interleaved_ways'])}" for r in records
                       if r.get("bench", {}).get("bare_interleaved_ways")]
        if interleaved:
            lines += ["", "x bare: against the fastest way of running the generator alone, in rounds between "
                          "the backend's frames:"] + [f"  {text}" for text in interleaved]
        if len(stage_rows) > 1:
            lines += ["", "stages (audio: s per run; frames: ms per frame, warm-up included):"] + grid(stage_rows)
    lines += ["", "steady FPS: after the warm-up frames (a port without frame lines: from when its frame files "
                  "appeared), the basis of x bare and x ref; e2e FPS: every frame over the whole run, start-up "
                  "included; TTFF: time to the first frame"]
    lines += ["", "peak RSS: (port) is a subprocess port's own (wait4 through a small launcher); (harness) is "
                  "this process's peak during an in-process backend's run, the harness's own memory included"]
    if bench.get("overhead"):
        lines += ["", "parity overhead: a one-backend `run` on the same audio, the reference cached, no "
                      "diagnosis: its wall time over the backend's own run time in it"]
        rows = [("backend", "status", "frames", "run s", "backend s", "x backend")]
        rows += [(o["backend"], o["status"].upper(), o["frames"], fmt_number(o["wall_s"], ".2f"),
                  fmt_number(o["backend_s"], ".2f"), fmt_number(o["ratio"], ".3f")) for o in bench["overhead"]]
        lines += grid(rows, colour, 1)
    if notes:
        lines += ["", "not measured:"] + notes
    return "\n".join(lines)
