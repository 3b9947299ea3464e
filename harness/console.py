"""The short console table of a parity run."""
from __future__ import annotations

import math

from harness.diagnosis.explain import causes


def _num(value, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, fmt)


def _stat(run: dict, region: str, metric: str, which: str):
    return run.get("summary", {}).get(region, {}).get(metric, {}).get(which)


def results_table(results: dict) -> str:
    """One line per backend x audio: verdict, pixel-identical %, PSNR, SSIM full/mouth, FPS, p50/p99."""
    head = ("backend", "audio", "verdict", "identical %", "PSNR min", "SSIM full", "SSIM mouth", "FPS",
            "p50 ms", "p99 ms")
    rows = [head]
    notes = []
    for run in results["runs"]:
        timings = run.get("timings", {})
        rows.append((
            run["backend"], run["audio"], run["status"].upper(),
            _num(_stat(run, "full", "identical_pct", "mean"), ".3f"),
            _num(_stat(run, "full", "psnr", "min"), ".2f"),
            _num(_stat(run, "full", "ssim", "min"), ".5f"),
            _num(_stat(run, "mouth", "ssim", "min"), ".5f"),
            _num(timings.get("fps"), ".2f"), _num(timings.get("p50_ms"), ".1f"), _num(timings.get("p99_ms"), ".1f"),
        ))
        for text in run.get("failures", []) + ([run["reason"]] if run.get("reason") else []):
            notes.append(f"  {run['backend']} / {run['audio']}: {text}")
        if run.get("diagnosis", {}).keys() - {"audio_dependence"}:
            notes.extend(f"  {run['backend']} / {run['audio']}: cause: {text}" for text in causes(run))
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(head))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + (["", "why:"] + notes if notes else []))
