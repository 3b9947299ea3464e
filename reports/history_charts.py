"""The history page's trend chart: one figure per backend, a panel per metric over the commits.

Each machine keeps one colour on every panel and each audio one line style; a point is the latest run
of that commit. Each branch is a line of its own: the trunk's thick with round points, any other
branch's thin with square points, drawn from the trunk's point it was gated against (its base) and
named at its last point. Change points (`reports.history`) are marked on the panels of their family: parity
changes on worst PSNR and identical %, speed changes on steady FPS / bare and p99 latency (the gate
has no test of RSS, so its panel has none). An infinite PSNR (identical frames) is drawn on a line
above the finite values, labelled ∞.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from reports.charts import DPI, PALETTE, RC, WIDTH  # noqa: E402
from reports.runs import short_audio  # noqa: E402

AUDIO_STYLES = ("-", "--", ":", "-.")
BRANCH_WIDTH = 0.9  # a branch's line (not the trunk's)
REGRESSION, IMPROVEMENT = "#cf222e", "#1a7f37"


METRICS = (  # key, panel label, (value of a run, the modes it is read from in order, change-point family)
    ("psnr", "worst PSNR, dB", (lambda r: r.full("psnr", "worst"), ("parity",), "parity")),
    ("identical", "identical %, mean", (lambda r: r.full("identical_pct", "mean"), ("parity",), "parity")),
    ("x_bare", "steady FPS / bare generator", (lambda r: r.speed.get("x_bare"), ("bench",), "speed")),
    ("p99", "p99 frame latency, ms", (lambda r: r.speed.get("p99_ms"), ("parity", "bench"), "speed")),
    ("rss", "peak RSS, MB", (lambda r: r.speed.get("rss_mb"), ("bench", "parity"), None)),
)
EMPTY = {"x_bare": "no bench runs filed: `history add OUTPUT/bench.json` adds them",
         "rss": "no peak RSS in the filed runs (ports and bench runs record it)"}


def _number(run, get) -> float | None:
    """A metric of a run (None: no run, or no number)."""
    value = get(run) if run is not None else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return float(value)
    return None


def _value(series, k: int, get, modes) -> tuple[float | None, str | None]:
    for mode in modes:
        value = _number(series.runs.get((mode, k)), get)
        if value is not None:
            return value, mode
    return None, None


def _fork(series, first: tuple, get) -> list[tuple]:
    """A branch's line starts at its base: the trunk's run its first point was gated against (none on the
    trunk, or when that run has no value of the metric)."""
    k, _, mode = first
    base = None if series.trunk else series.bases.get((mode, k))
    value = _number(base[1], get) if base is not None else None
    return [] if value is None else [(base[0], value, None)]


def draw_trends(backend: str, series: list, commits: list[dict], path: Path) -> str:
    """The backend's trend figure at `path`; returns its caption."""
    machines = list(dict.fromkeys(s.machine for s in series))
    audios = list(dict.fromkeys(s.audio for s in series))
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(machines)}
    style = {a: AUDIO_STYLES[i % len(AUDIO_STYLES)] for i, a in enumerate(audios)}
    xs = range(len(commits))
    with plt.rc_context(RC):
        fig, axes = plt.subplots(len(METRICS), 1, sharex=True, figsize=(WIDTH, 1.9 * len(METRICS) + 1.2))
        for ax, (key, label, (get, modes, family)) in zip(axes, METRICS):
            drawn = _panel(ax, key, series, xs, get, modes, family, colour, style)
            ax.set_ylabel(label, rotation=0, ha="right", va="center", labelpad=8)
            ax.grid(axis="y", color="#eaeef2")
            if not drawn:
                ax.text(0.5, 0.5, EMPTY.get(key, "no data"), transform=ax.transAxes, ha="center", va="center",
                        color="#6e7781", style="italic")
                ax.set_yticks([])
        axes[-1].set_xticks(list(xs), [c["short"][:8] for c in commits], rotation=30, ha="right",
                            fontfamily="monospace")
        axes[-1].set_xlim(-0.5, len(commits) - 0.5)
        handles = [Line2D([], [], color=colour[m], linewidth=2, label=m) for m in machines]
        handles += [Line2D([], [], color="#57606a", linestyle=style[a], label=short_audio(a)) for a in audios]
        handles += [Line2D([], [], color="#57606a", linewidth=BRANCH_WIDTH, marker="s", markersize=4,
                           label="a branch, from its base")]
        handles += [Line2D([], [], color=REGRESSION, marker="v", linestyle="none", markersize=9, label="regression"),
                    Line2D([], [], color=IMPROVEMENT, marker="^", linestyle="none", markersize=9, label="improvement"),
                    Line2D([], [], color="white", markeredgecolor="#57606a", markeredgewidth=2, marker="v",
                           linestyle="none", markersize=9, label="hollow: machine load unknown")]
        axes[0].legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=min(len(handles), 6),
                       frameon=False)
        axes[0].set_title(backend, loc="left", fontweight="bold", pad=28)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
    return (f"{backend} over {len(commits)} commits: one colour per machine ({', '.join(machines)}), one line style "
            "per audio, one line per branch (a branch other than the trunk thin, from the trunk commit it was gated "
            "against, named at its end); ▼ a regression and ▲ an improvement where the gate found one against the "
            "run's baseline (on the trunk its commit before, on a branch the trunk's latest commit before it; "
            "parity on PSNR and identical %, speed on FPS / bare and p99; RSS has no test); a hollow "
            "mark is a speed change found where how busy the machine was is not known (results written before "
            "timings.background_cpu, or off Linux), which other work on the machine may explain.")


def _panel(ax, key: str, series: list, xs, get, modes, family, colour, style) -> bool:
    """One metric's lines and change points; False when no series has a value."""
    lines = []
    for s in series:
        points = [(k, *_value(s, k, get, modes)) for k in xs]
        points = [(k, v, mode) for k, v, mode in points if v is not None]
        if points:
            lines.append((s, _fork(s, points[0], get) + points))
    if not lines:
        return False
    finite = [v for _, points in lines for _, v, _ in points if math.isfinite(v)]
    ceiling = (max(finite) if finite else 0.0) + 10.0  # where an infinite PSNR is drawn
    for s, points in lines:
        ys = [v if math.isfinite(v) else ceiling for _, v, _ in points]
        ax.plot([k for k, _, _ in points], ys, color=colour[s.machine], linestyle=style[s.audio],
                marker="o" if s.trunk else "s", markersize=4, linewidth=1.6 if s.trunk else BRANCH_WIDTH,
                alpha=1.0 if s.trunk else 0.8)
        if not s.trunk:
            ax.annotate(s.branch or "no branch", (points[-1][0], ys[-1]), xytext=(4, 4), textcoords="offset points",
                        fontsize=7, color=colour[s.machine])
        if family is None:
            continue
        for (k, _, mode), y in zip(points, ys):  # the changes of the runs the point was read from
            found = [f for fam, m, f in s.changes.get(k, []) if fam == family and m == mode]
            if found:
                worse = any(f.regression for f in found)
                tint = REGRESSION if worse else IMPROVEMENT
                sure = not all(f.caveat for f in found)  # hollow: found on a machine whose load is unknown
                ax.plot([k], [y], marker="v" if worse else "^", markersize=11, linestyle="none", zorder=5,
                        color=tint if sure else "white", markeredgecolor="white" if sure else tint,
                        markeredgewidth=1 if sure else 2)
    if any(not math.isfinite(v) for _, points in lines for _, v, _ in points):
        ticks = [t for t in ax.get_yticks() if t < ceiling - 5]
        ax.set_yticks(ticks + [ceiling], [f"{t:g}" for t in ticks] + ["∞"])
    ax.margins(y=0.2)
    return True
