"""The self-contained HTML report: one page, inline CSS, images beside it in `img/`, no script, no URL.

    render_html([Path("linux/results.json"), Path("m1/results.json")], Path("report"))
    -> report/index.html  (open it by double-click; copy the folder to share it)

Images of an earlier report in `img/` are replaced; nothing else in `out_dir` is touched.
Everything from a results file is escaped (jinja2 autoescape); missing keys, skipped and error runs
and missing images are shown as such. Speed-ups are explained in `reports.runs`.
"""
from __future__ import annotations

import math
import shutil
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.verdicts.results import read_results
from reference.stages import in_stage_order
from reports.charts import draw_charts
from reports.gallery import finding_images, worst_frame_panels
from reports.runs import (
    REGION_LABELS,
    STATUS_WORDS,
    Row,
    build_rows,
    counts,
    fmt,
    fmt_pct,
    fmt_sci,
    machine_names,
    short_audio,
)

TEMPLATES = Path(__file__).parent / "templates"
IMG = "img"
IMAGE_PREFIXES = ("chart-", "ref-", "cand-", "diff-", "mouth-", "evidence-")  # every image name this module writes
WHERE_REGIONS = ("mouth", "face", "outside_face")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt, pct=fmt_pct, sci=fmt_sci, short_audio=short_audio)
    env.tests["mapping"] = lambda v: isinstance(v, dict)
    env.tests["seq"] = lambda v: isinstance(v, (list, tuple))
    return env


def _where(row: Row) -> list[dict]:
    """Per region (mouth, face, outside the face): identical, or its worst PSNR; red below the PSNR threshold."""
    threshold = row.run.get("thresholds", {}).get("psnr_min")
    chips = []
    for region in WHERE_REGIONS:
        identical, psnr = row.stat(region, "identical_pct", "min"), row.stat(region, "psnr", "min")
        if identical is None and psnr is None:
            continue
        if identical == 100.0 or (isinstance(psnr, float) and math.isinf(psnr)):
            chips.append({"region": REGION_LABELS[region].split()[0], "text": "=", "cls": "same"})
            continue
        bad = isinstance(threshold, (int, float)) and isinstance(psnr, (int, float)) and psnr < threshold
        chips.append({"region": REGION_LABELS[region].split()[0], "text": fmt(psnr, '.1f'), "cls": "bad" if bad else
                      "diff"})
    return chips


def _stages(rows: list[Row]) -> list[str]:
    return in_stage_order({s for r in rows for s in (r.run.get("features") or {})})


def _drift_cells(row: Row, stages: list[str]) -> list[dict]:
    limit = row.run.get("thresholds", {}).get("feature_max_abs")
    cells = []
    for stage in stages:
        drift = (row.run.get("features") or {}).get(stage)
        if not isinstance(drift, dict):
            cells.append({"text": "–", "cls": "", "title": "not dumped"})
        elif "error" in drift:
            cells.append({"text": "mismatch", "cls": "bad", "title": str(drift["error"])})
        else:
            value = drift.get("max_abs")
            bad = isinstance(limit, (int, float)) and isinstance(value, (int, float)) and value > limit
            cells.append({"text": fmt_sci(value), "cls": "bad" if bad else ("same" if value == 0 else ""),
                          "title": f"mean abs {fmt_sci(drift.get('mean_abs'))}, rel L2 {fmt_sci(drift.get('rel_l2'))}"
                                   f", cosine {fmt(drift.get('cosine'), '.9f')}"})
    return cells


def _stage_text(row: Row) -> str:
    t = row.run.get("timings") or {}
    frames = t.get("frames") or row.run.get("frames")
    stages = t.get("stages") if isinstance(t.get("stages"), dict) else {}
    if not frames or not stages:
        return "–"
    return " · ".join(f"{k} {fmt(v * 1000.0 / frames, '.1f')}" for k, v in stages.items())


def _view_rows(rows: list[Row], out_dir: Path) -> list[dict]:
    top_fps = max([r.fps for r in rows if r.fps] or [1.0])
    stages = _stages(rows)
    views = []
    for n, row in enumerate(rows):
        panels = worst_frame_panels(row.run.get("worst_frames") or [], row.base, out_dir / IMG)
        views.append({
            "n": n, "row": row, "run": row.run, "status": row.status, "word": STATUS_WORDS.get(row.status, "?"),
            "why": row.why(), "causes": row.causes(),
            "bill": (row.run.get("diagnosis") or {}).get("conventions"), "where": _where(row), "panels": panels,
            "thumb": next((p["heatmap"] for p in panels if p["heatmap"]), None),
            "fps_pct": 100.0 * row.fps / top_fps if row.fps else 0.0, "drift": _drift_cells(row, stages),
            "stage_text": _stage_text(row), "video": _video(row, n, out_dir),
            "findings": _findings(row, out_dir),
        })
    return views


def _findings(row: Row, out_dir: Path) -> list[dict]:
    """The run's findings, each with its crop's image entry (`image`, or None)."""
    found = [f for f in row.run.get("findings") or [] if isinstance(f, dict)]
    return [{"f": f, "image": image} for f, image in zip(found, finding_images(found, row.base, out_dir / IMG))]


def _video(row: Row, n: int, out_dir: Path) -> dict | None:
    """The run's side-by-side MP4 copied beside the page: {"src"} or {"missing": why}; None without one."""
    name = row.run.get("video")
    if not isinstance(name, str):
        return None
    src = (row.base / name).resolve()
    if not src.is_relative_to(row.base.resolve()) or not src.is_file():
        return {"missing": f"video {name} not found beside the results file"}
    dest = out_dir / IMG / f"video-{n}.mp4"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return {"src": f"{IMG}/{dest.name}"}


def headline(rows: list[Row]) -> list[dict]:
    """Backends per status worth a first look (failed, error, skipped), each with the machines it ran on, and
    the fastest run that passed."""
    lines = []
    for status, title in (("failed", "Failing"), ("error", "Errors"), ("skipped", "Skipped")):
        where: dict[str, list[str]] = {}
        for row in rows:
            if row.status == status:
                where.setdefault(row.backend, [])
                if row.machine not in where[row.backend]:
                    where[row.backend].append(row.machine)
        if where:
            lines.append({"status": status, "title": title, "entries": list(where.items())})
    passed = [r for r in rows if r.status == "passed" and r.fps]
    if passed:
        best = max(passed, key=lambda r: r.fps)
        lines.append({"status": "passed", "title": "Fastest passing",
                      "entries": [(best.backend, [f"{best.fps:.1f} FPS on {best.machine}, {short_audio(best.audio)}"])]})
    return lines


def _machines(results_list: list[dict], paths: list[Path]) -> list[dict]:
    """Provenance of each results file, under the (unique) machine name its rows carry."""
    return [{"name": name, "path": str(path), "results": results, "machine": results.get("machine", {}),
             "inputs": results.get("inputs", {}), "config": results.get("config") or {},
             "diagnosis": results.get("diagnosis")}
            for name, results, path in zip(machine_names(results_list), results_list, paths)]


def render_html(results_paths: list[Path], out_dir: Path) -> Path:
    """Render results files (one per machine, or several) into `out_dir/index.html` with its `img/` folder."""
    paths = [Path(p) for p in results_paths]
    results_list = [read_results(p) for p in paths]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / IMG).mkdir(exist_ok=True)
    for stale in (out_dir / IMG).glob("*.png"):  # images of an earlier report; nothing else is touched
        if stale.name.startswith(IMAGE_PREFIXES):
            stale.unlink()
    rows = build_rows(results_list, [p.parent for p in paths])
    views = _view_rows(rows, out_dir)
    stages = _stages(rows)
    charts = draw_charts(rows, out_dir / IMG)
    html = _environment().get_template("report.html.j2").render(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), views=views, counts=counts(rows),
        machines=_machines(results_list, paths), headline=headline(rows), charts=charts, stages=stages,
        regions=("full", "face", "mouth"), region_labels=REGION_LABELS,
        baselines_used=sorted({r.baseline for r in rows if r.baseline}),
        any_failed_or_error=any(r.status in ("failed", "error") for r in rows))
    out = out_dir / "index.html"
    out.write_text(html, encoding="utf-8")
    return out
