"""The short console table of a parity run."""
from __future__ import annotations

from harness.diagnosis.evidence.findings import finding_lines
from harness.diagnosis.explain import causes
from harness.text.tables import fmt_number, fmt_pct, grid


def _stat(run: dict, region: str, metric: str, which: str):
    return run.get("summary", {}).get(region, {}).get(metric, {}).get(which)


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
            fmt_pct(_stat(run, "full", "identical_pct", "mean")),
            fmt_number(_stat(run, "full", "psnr", "min"), ".2f"),
            fmt_number(_stat(run, "full", "ssim", "min"), ".5f"),
            fmt_number(_stat(run, "mouth", "ssim", "min"), ".5f"),
            fmt_number(timings.get("fps"), ".2f"), fmt_number(timings.get("p50_ms"), ".1f"), fmt_number(timings.get("p99_ms"), ".1f"),
        ))
        fallback = [run["info"]["cpu_fallback"]] if run.get("info", {}).get("cpu_fallback") else []
        for text in run.get("failures", []) + ([run["reason"]] if run.get("reason") else []) + run.get("errors", []) + fallback:
            notes.append(f"  {run['backend']} / {run['audio']}: {text}")
        if run.get("diagnosis", {}).keys() - {"audio_dependence"}:
            notes.extend(f"  {run['backend']} / {run['audio']}: cause: {text}" for text in causes(run))
        notes.extend(f"  {run['backend']} / {run['audio']}: finding: {text}" for text in finding_lines(run.get("findings", [])))
    return "\n".join(grid(rows, colour, 2) + (["", "why:"] + notes if notes else []))


def golden_notes(results: dict) -> list[str]:
    """One line per golden that stood for a reference but was recorded with other library versions."""
    return [f"note: the golden {entry['golden']} stood for the reference of {entry['audio']} and was recorded with "
            f"other libraries ({', '.join(entry['libraries_changed'])}); `synctalk-parity check-golden "
            f"{entry['golden']}` says whether its frames still hold here"
            for entry in results.get("reference", []) if entry.get("libraries_changed")]
