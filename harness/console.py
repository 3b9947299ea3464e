"""The short console table of a parity run."""
from __future__ import annotations

import math

from harness.diagnosis.explain import causes
from harness.terminal import paint


def _num(value, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, fmt)


def _stat(run: dict, region: str, metric: str, which: str):
    return run.get("summary", {}).get(region, {}).get(metric, {}).get(which)


def grid(rows: list[tuple], colour: bool = False, verdict_col: int | None = None) -> list[str]:
    """Rows as aligned text columns under a dashed rule; the verdict column coloured with `colour`."""
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(v).ljust(w) for v, w in zip(row, widths)]
        if colour and k and verdict_col is not None:
            word = str(row[verdict_col])
            cells[verdict_col] = paint(word, True) + " " * (widths[verdict_col] - len(word))
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def results_table(results: dict, colour: bool = False) -> str:
    """One line per backend x audio: verdict, pixel-identical %, PSNR, SSIM full/mouth, FPS, p50/p99;
    verdicts coloured with `colour` (a terminal)."""
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
        for text in run.get("failures", []) + ([run["reason"]] if run.get("reason") else []) + run.get("errors", []):
            notes.append(f"  {run['backend']} / {run['audio']}: {text}")
        if run.get("diagnosis", {}).keys() - {"audio_dependence"}:
            notes.extend(f"  {run['backend']} / {run['audio']}: cause: {text}" for text in causes(run))
    return "\n".join(grid(rows, colour, 2) + (["", "why:"] + notes if notes else []))
