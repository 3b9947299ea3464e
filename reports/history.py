"""The history page: parity and speed per backend over commits, from the history store.

    render_history(Path("history.sqlite"), Path("history"))  ->  history/index.html (charts in history/img/)

One self-contained page (inline CSS, images beside it, no script): per backend, a trend chart of
worst PSNR, identical %, steady FPS over the bare generator, p99 latency and peak RSS over the
commits, one colour per machine and one line style per audio, with the change points the gate's
test finds between consecutive commits marked (regression ▼, improvement ▲) and listed; the bill of
deviations per commit as a strip; every run filed. Everything from the store is escaped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.history.gate import GateSettings, compare, pair_key, quiet_median
from harness.history.stats import NOISE_RUNS, run_noise
from harness.history.snapshot import Snapshot
from harness.history.store import load_runs
from reports.history_charts import METRICS, draw_trends
from reports.runs import short_audio

TEMPLATES = Path(__file__).parent / "templates"
IMG = "img"


@dataclass
class Series:
    """One backend's runs on one machine (fingerprint) and audio: the latest run of each mode per commit."""

    backend: str
    machine: str  # the machine's label on the page
    fingerprint: str
    audio: str
    runs: dict = field(default_factory=dict)  # (mode, commit index) -> run
    changes: dict = field(default_factory=dict)  # commit index -> [(family, mode, Finding)]


def _commits(runs: list[Snapshot]) -> list[dict]:
    """Every commit in the store's order (commit time, then first run), with its short hash and branches."""
    out: dict[str, dict] = {}
    for run in runs:
        entry = out.setdefault(run.commit.sha, {"sha": run.commit.sha, "short": run.commit.sha[:10],
                                                "time": run.commit.time, "branches": []})
        if run.commit.branch and run.commit.branch not in entry["branches"]:
            entry["branches"].append(run.commit.branch)
    for entry in out.values():
        entry["when"] = (datetime.fromtimestamp(entry["time"], timezone.utc).strftime("%Y-%m-%d %H:%M")
                         if entry["time"] else "")
    return list(out.values())


def machine_labels(runs: list[Snapshot]) -> dict[str, str]:
    """fingerprint -> the machine's name, with the fingerprint's start when two fingerprints share a name."""
    names: dict[str, str] = {}
    for run in runs:
        names.setdefault(run.fingerprint, run.machine or "?")
    return {fp: name if list(names.values()).count(name) == 1 else f"{name} ({fp[:6]})" for fp, name in names.items()}


def build_series(runs: list[Snapshot], commits: list[dict]) -> dict[str, list[Series]]:
    """backend -> its series, each with the latest run per mode and commit and the gate's change points."""
    index = {c["sha"]: k for k, c in enumerate(commits)}
    labels = machine_labels(runs)
    by_key: dict[tuple, Series] = {}
    for run in runs:  # oldest first, so a later run of one commit replaces an earlier one
        key = (run.backend, run.fingerprint, run.audio)
        series = by_key.setdefault(key, Series(run.backend, labels[run.fingerprint], run.fingerprint, run.audio))
        series.runs[(run.mode, index[run.commit.sha])] = run
    out: dict[str, list[Series]] = {}
    for series in by_key.values():
        _change_points(series)
        out.setdefault(series.backend, []).append(series)
    return out


def _change_points(series: Series) -> None:
    """The gate between each run and the previous commit's run of the same mode, with the run-to-run noise
    of the quiet runs up to the earlier one (as `gate --against branch:NAME` measures it): its findings,
    under the family of charts they mark (``speed`` or ``parity``)."""
    settings = GateSettings()
    for mode in ("parity", "bench"):
        points = sorted(k for m, k in series.runs if m == mode)
        medians: list[float] = []
        for before, after in zip(points, points[1:]):
            base, run = series.runs[(mode, before)], series.runs[(mode, after)]
            quiet = quiet_median(base, settings)
            medians += [quiet] if quiet is not None else []
            recent = medians[-NOISE_RUNS[1]:]
            result = compare([base], [run], settings, noise={pair_key(run): (run_noise(recent), len(recent))})
            for finding in result.changes:
                family = "speed" if finding.check == "speed" else "parity"
                series.changes.setdefault(after, []).append((family, mode, finding))


def _bill_cell(run: Snapshot | None) -> dict:
    if run is None:
        return {"text": "–", "cls": "none", "title": "no run"}
    if run.status == "passed":
        return {"text": "canonical", "cls": "same", "title": "passed: nothing to explain"}
    if run.status != "failed":
        return {"text": run.status, "cls": "unknown", "title": run.reason or ""}
    if run.bill is None:
        return {"text": "failed (no diagnosis)", "cls": "unknown", "title": "; ".join(run.failures or [])}
    items = [f"{d['knob']}={d['value']}" for d in run.bill]
    return {"text": ", ".join(items) or "canonical (unexplained)", "cls": "bill", "items": items,
            "title": run.fitted or ""}


def bill_strips(series: list[Series], commits: list[dict]) -> list[dict]:
    """Per machine and audio with parity runs, one cell per commit; a cell whose bill is not the one before
    it is marked changed."""
    rows = []
    for s in series:
        if not any(mode == "parity" for mode, _ in s.runs):
            continue
        cells, last = [], None
        for k, commit in enumerate(commits):
            cell = _bill_cell(s.runs.get(("parity", k)))
            cell["changed"] = cell["cls"] != "none" and last is not None and cell["text"] != last
            if cell["cls"] != "none":
                last = cell["text"]
            cells.append(cell)
        rows.append({"machine": s.machine, "audio": short_audio(s.audio), "cells": cells})
    return rows


def change_rows(series: list[Series], commits: list[dict]) -> list[dict]:
    """Every change point of a backend: commit, machine, audio and the gate's line."""
    rows = []
    for s in series:
        for k, found in sorted(s.changes.items()):
            for family, mode, finding in found:
                rows.append({"commit": commits[k]["short"], "k": k, "machine": s.machine,
                             "audio": short_audio(s.audio), "family": family, "mode": mode,
                             "kind": "regression" if finding.regression else "improvement",
                             "check": finding.check, "before": finding.before, "after": finding.after,
                             "detail": finding.detail, "caveat": finding.caveat})
    return sorted(rows, key=lambda r: (r["k"], r["machine"], r["audio"]))


def render_history(store: Path, out_dir: Path) -> Path:
    """Render the store into `out_dir/index.html` with its charts in `out_dir/img/`."""
    runs = load_runs(Path(store))
    commits = _commits(runs)
    out_dir = Path(out_dir)
    (out_dir / IMG).mkdir(parents=True, exist_ok=True)
    for stale in (out_dir / IMG).glob("trend-*.png"):
        stale.unlink()
    backends = []
    for n, (backend, series) in enumerate(build_series(runs, commits).items()):
        chart = draw_trends(backend, series, commits, out_dir / IMG / f"trend-{n}.png")
        backends.append({"name": backend, "n": n, "chart": f"{IMG}/trend-{n}.png", "caption": chart,
                         "strips": bill_strips(series, commits), "changes": change_rows(series, commits),
                         "machines": sorted({s.machine for s in series}),
                         "audios": sorted({short_audio(s.audio) for s in series})})
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    html = env.get_template("history.html.j2").render(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), store=str(store), commits=commits,
        backends=backends, runs=list(reversed(runs)), metrics=[label for _, label, _ in METRICS],
        machines=sorted(set(machine_labels(runs).values())))
    out = out_dir / "index.html"
    out.write_text(html, encoding="utf-8")
    return out
