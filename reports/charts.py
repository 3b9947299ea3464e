"""The report's charts, drawn with matplotlib (Agg) into PNG files.

Each function takes report rows (see `reports.runs`) and a path, draws one chart and returns a
caption, or None when no row has the data it needs (then no file is written). Every backend keeps
one colour in every chart; a second machine is drawn dashed in the per-frame charts; a backend
that failed parity is hatched in the bar charts.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from reports.runs import Row, short_audio  # noqa: E402

WIDTH = 11.0  # inches, at DPI below
DPI = 100
MACHINE_STYLES = ("-", "--", ":", "-.")
_HORIZONTAL = ({"orientation": "horizontal"} if tuple(int(p) for p in matplotlib.__version__.split(".")[:2]) >= (3, 10)
               else {"vert": False})
FAIL_EDGE = "#24292f"  # hatch and outline of a backend that failed parity
STATUS_NOTE = {"skipped": "skipped", "error": "error"}
RC = {"text.parse_math": False, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


# tab10 without its green and red, which the page keeps for passed and failed; then lighter tab20 shades
PALETTE = tuple(plt.get_cmap("tab10")(i) for i in (0, 1, 4, 5, 6, 9, 8, 7)) + \
    tuple(plt.get_cmap("tab20")(i) for i in (1, 3, 9, 11, 13, 19, 17, 15))


def backend_colours(rows: list[Row]) -> dict[str, tuple]:
    """One colour per backend name, in order of first appearance; never the pass green or the fail red."""
    names = list(dict.fromkeys(r.backend for r in rows))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _finite(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _machine_backend_groups(rows: list[Row]) -> list[tuple[str, str, list[Row]]]:
    """(machine, backend, its rows over the audios) in report order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.machine, row.backend), []).append(row)
    return [(m, b, rs) for (m, b), rs in groups.items()]


def _grouped_positions(groups) -> tuple[list[float], list[tuple[float, str]]]:
    """y positions with a gap between machines, and (y, machine) of each machine heading."""
    ys, heads, y, last = [], [], 0.0, None
    for machine, _, _ in groups:
        if machine != last:
            if last is not None:
                y += 0.8
            heads.append((y - 0.6, machine))
            last = machine
        ys.append(y)
        y += 1.0
    return ys, heads


def _horizontal_frame(ax, ys, labels, heads) -> None:
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    for y, machine in heads:
        ax.annotate(machine, (0, y), xycoords=ax.get_yaxis_transform(), xytext=(-6, 0), textcoords="offset points",
                    ha="right", va="bottom", fontweight="bold", fontsize=9, annotation_clip=False)


def fps_chart(rows: list[Row], path: Path) -> str | None:
    """FPS per backend (mean over the audios), grouped by machine, with the speed-up written beside."""
    groups = _machine_backend_groups(rows)
    if not any(r.fps for _, _, rs in groups for r in rs):
        return None
    colours = backend_colours(rows)
    ys, heads = _grouped_positions(groups)
    top = max(r.fps for _, _, rs in groups for r in rs if r.fps)
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(WIDTH, 0.9 + 0.34 * len(ys) + 0.25 * len(heads)))
        for y, (_, backend, rs) in zip(ys, groups):
            values = [r.fps for r in rs if r.fps]
            if not values:
                ax.text(top * 0.01, y, " / ".join(sorted({STATUS_NOTE.get(r.status, r.status) for r in rs})),
                        va="center", color="#6e7781", style="italic")
                continue
            fps = sum(values) / len(values)
            failed = any(r.status == "failed" for r in rs)
            ax.barh(y, fps, color=colours[backend], hatch="///" if failed else None, edgecolor=FAIL_EDGE
                    if failed else "none", linewidth=1.5 if failed else 0, height=0.7)
            speed = [r.speedup for r in rs if r.speedup]
            note = f"{fps:.1f} FPS" + (f"   ×{sum(speed) / len(speed):.2f} vs {rs[0].baseline}"
                                       if speed and rs[0].baseline else "")
            ax.text(fps + top * 0.01, y, note + ("   FAILED" if failed else ""), va="center",
                    color="#a40e26" if failed else "#1f2328", fontweight="bold" if failed else "normal")
        _horizontal_frame(ax, ys, [b for _, b, _ in groups], heads)
        ax.set_xlim(0, top * 1.3)
        ax.set_xlabel("frames per second, end to end (mean over the audios)")
        ax.legend(handles=[Patch(facecolor="white", edgecolor=FAIL_EDGE, hatch="///", label="failed parity")],
                  loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.5 / max(len(ys), 1)), frameon=False)
        _save(fig, path)
    return "FPS per backend and machine, mean over the audios; the speed-up is against the baseline " \
           "run on the same machine (see the speed table)."


def stage_chart(rows: list[Row], path: Path) -> str | None:
    """Per-frame time of each stage the backend reports, stacked, plus the rest of the run's total."""
    groups = _machine_backend_groups(rows)
    data = []
    for machine, backend, rs in groups:
        per_stage: dict[str, list[float]] = {}
        for r in rs:
            t = r.run.get("timings", {})
            frames = t.get("frames") or r.run.get("frames")
            stages = t.get("stages") if isinstance(t.get("stages"), dict) else {}
            if not frames or not stages:
                continue
            ms = {k: v * 1000.0 / frames for k, v in stages.items() if _finite(v) is not None}
            total = _finite(t.get("total"))
            if total is not None and total * 1000.0 / frames > sum(ms.values()):
                ms["rest of total"] = total * 1000.0 / frames - sum(ms.values())
            for k, v in ms.items():
                per_stage.setdefault(k, []).append(v)
        if per_stage:
            data.append((machine, backend, {k: sum(v) / len(v) for k, v in per_stage.items()}))
    if not data:
        return None
    stages = list(dict.fromkeys(k for _, _, ms in data for k in ms if k != "rest of total"))
    stages += ["rest of total"] if any("rest of total" in ms for _, _, ms in data) else []
    palette = plt.get_cmap("Set2")
    ys, heads = _grouped_positions(data)
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + 0.34 * len(ys) + 0.25 * len(heads)))
        for y, (_, _, ms) in zip(ys, data):
            left = 0.0
            for j, stage in enumerate(stages):
                value = ms.get(stage, 0.0)
                colour = "#d0d7de" if stage == "rest of total" else palette(j % palette.N)
                ax.barh(y, value, left=left, color=colour, height=0.7, label=stage)
                left += value
            ax.text(left, y, f" {left:.1f} ms", va="center")
        _horizontal_frame(ax, ys, [b for _, b, _ in data], heads)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.5 / len(ys)),
                  ncol=min(len(unique), 6), frameon=False)
        ax.set_xlabel("milliseconds per frame (mean over the audios)")
        _save(fig, path)
    return "Time per frame in each stage as the backend reports it (stage clocks may overlap for external " \
           "ports); grey is the rest of the run's total (loading, audio features, compositing)."


def latency_chart(rows: list[Row], path: Path) -> str | None:
    """Per-frame latency per run: box from p50 to p90, whisker to max, p99 marked."""
    data = [r for r in rows if _finite(r.run.get("timings", {}).get("p50_ms")) is not None]
    if not data:
        return None
    colours, ys, heads, height = _one_row_per_run(rows, data)
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(WIDTH, height))
        for y, r in zip(ys, data):
            t = r.run["timings"]
            p50, p90, p99, top = (_finite(t.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
            p90 = p90 if p90 is not None else p50
            if top is not None:
                ax.plot([p90, top], [y, y], color="#57606a", linewidth=1)
                ax.plot([top], [y], marker="|", color="#57606a", markersize=9)
            ax.barh(y, p90 - p50, left=p50, height=0.6, color=colours[r.backend], alpha=0.85)
            ax.plot([p50, p50], [y - 0.3, y + 0.3], color="black", linewidth=1.5)
            if p99 is not None:
                ax.plot([p99], [y], marker="D", color="black", markersize=4)
            ax.text(top if top is not None else p90, y, f"  p50 {p50:.1f} / p99 {fmt_ms(p99)} ms", va="center",
                    fontsize=8)
        _horizontal_frame(ax, ys, [f"{r.backend} · {short_audio(r.audio)}" for r in data], heads)
        ax.set_xlim(0, None)
        ax.margins(x=0.2)
        ax.set_xlabel("per-frame latency, ms   (box p50–p90, ◆ p99, whisker to max)")
        _save(fig, path)
    return "Per-frame latency of each run: the box spans p50 to p90, the diamond is p99, the whisker " \
           "reaches the slowest frame."


def fmt_ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _one_row_per_run(rows: list[Row], data: list[Row]) -> tuple[dict, list[float], list[tuple[float, str]], float]:
    """Layout of a chart with one row per run of `data`, grouped by machine: (colours, row positions,
    machine headings, figure height in inches)."""
    ys, heads = _grouped_positions([(r.machine, r.backend, [r]) for r in data])
    return backend_colours(rows), ys, heads, 0.9 + 0.3 * len(ys) + 0.25 * len(heads)


def _per_frame_rows(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.run.get("per_frame")]


def per_frame_chart(rows: list[Row], path: Path, metric: str) -> str | None:
    """`metric` ("psnr" or "ssim", full frame) over the frames, one panel per audio, one line per run."""
    data = _per_frame_rows(rows)
    if not data:
        return None
    colours = backend_colours(rows)
    machines = list(dict.fromkeys(r.machine for r in rows))
    audios = list(dict.fromkeys(r.audio for r in data))
    values = [v for r in data for f in r.run["per_frame"]
              if (v := _finite(f.get("full", {}).get(metric))) is not None]
    cap = None
    if metric == "psnr":
        cap = max([60.0] + [math.ceil(v / 10.0) * 10.0 + 10.0 for v in values])
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(audios), figsize=(WIDTH, 3.4), sharey=True, squeeze=False)
        for ax, audio in zip(axes[0], audios):
            for r in (r for r in data if r.audio == audio):
                xs, ys = [], []
                for n, f in enumerate(r.run["per_frame"]):
                    v = f.get("full", {}).get(metric)
                    if isinstance(v, (int, float)) and math.isinf(v) and cap is not None:
                        v = cap
                    if _finite(v) is not None:
                        xs.append((f.get("i", n) if isinstance(f.get("i", n), int) else n) + 1)
                        ys.append(v)
                style = MACHINE_STYLES[machines.index(r.machine) % len(MACHINE_STYLES)]
                ax.plot(xs, ys, style, color=colours[r.backend], marker="o", markersize=3, linewidth=1.4,
                        label=f"{r.backend} ({r.machine})" if len(machines) > 1 else r.backend)
            if metric == "psnr":
                ax.axhline(cap, color="#8c959f", linewidth=0.8, linestyle=":")
                ax.text(1, cap, " ∞ (identical)", va="bottom", color="#57606a", fontsize=8)
                for t in sorted({r.run.get("thresholds", {}).get("psnr_min") for r in data
                                 if r.audio == audio} - {None}):
                    if _finite(t) is not None:
                        ax.axhline(t, color="#cf222e", linewidth=0.8, linestyle="--")
                        ax.text(1, t, f" {t:g} dB threshold", va="bottom", color="#cf222e", fontsize=8)
            ax.set_title(short_audio(audio))
            ax.set_xlabel("frame")
        axes[0][0].set_ylabel("PSNR, full frame (dB)" if metric == "psnr" else "SSIM, full frame")
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 4),
                   frameon=False)
        _save(fig, path)
    if metric == "psnr":
        return f"PSNR of every frame against the reference. Identical frames (infinite PSNR) are drawn at " \
               f"{cap:g} dB; the dashed red lines are the PSNR thresholds."
    return "SSIM of every frame against the reference (1 = identical)."


def error_chart(rows: list[Row], path: Path) -> str | None:
    """Distribution over the frames of the face MAE and the full-frame max abs error, per run."""
    data = _per_frame_rows(rows)
    if not data:
        return None
    colours, ys, heads, height = _one_row_per_run(rows, data)
    with plt.rc_context(RC):
        fig, axes = plt.subplots(1, 2, figsize=(WIDTH, height), sharey=True)
        for ax, (region, metric, label) in zip(axes, (("face", "mae", "mean abs error in the face rect, per frame"),
                                                       ("full", "max_abs", "max abs error per frame (levels)"))):
            for y, r in zip(ys, data):
                vals = [v for f in r.run["per_frame"] if (v := _finite(f.get(region, {}).get(metric))) is not None]
                if not vals:
                    continue
                if len(vals) > 1:
                    box = ax.boxplot([vals], positions=[y], widths=0.6, **_HORIZONTAL, patch_artist=True,
                                     showfliers=False, medianprops={"color": "black"})
                    for patch in box["boxes"]:
                        patch.set(facecolor=colours[r.backend], alpha=0.5)
                ax.plot(vals, [y] * len(vals), "o", color=colours[r.backend], markersize=3)
            ax.set_xlabel(label)
            ax.set_xlim(left=0)
            ax.margins(x=0.1)
        _horizontal_frame(axes[0], ys, [f"{r.backend} · {short_audio(r.audio)}" for r in data], heads)
        _save(fig, path)
    return "Error distribution over the frames: every dot is a frame, the box spans the quartiles."


CHARTS = (
    ("fps", "Frames per second", fps_chart),
    ("stages", "Time per stage", stage_chart),
    ("latency", "Latency distribution", latency_chart),
    ("psnr", "PSNR over the frames", lambda rows, path: per_frame_chart(rows, path, "psnr")),
    ("ssim", "SSIM over the frames", lambda rows, path: per_frame_chart(rows, path, "ssim")),
    ("errors", "Error distribution", error_chart),
)


def draw_charts(rows: list[Row], img_dir: Path) -> dict[str, dict]:
    """Every chart into `img_dir`: name -> {title, src (relative to the report) or None, caption}."""
    out = {}
    for name, title, draw in CHARTS:
        path = img_dir / f"chart-{name}.png"
        path.unlink(missing_ok=True)
        caption = draw(rows, path)
        out[name] = {"title": title, "src": f"{img_dir.name}/{path.name}" if caption else None,
                     "caption": caption or "no run has the data for this chart"}
    return out
