"""The history page: parity and speed per backend over commits, from the history store.

    render_history(Path("history.sqlite"), Path("history"))  ->  history/index.html (charts in history/img/)

One self-contained page (inline CSS, images beside it, no script): per backend, a trend chart of
worst PSNR, identical %, steady FPS over the bare generator, p99 latency and peak RSS over the
commits, one colour per machine and one line style per audio, each branch a line of its own; the
change points marked (regression ▼, improvement ▲) and listed; the bill of deviations per commit as
a strip; every run filed. Everything from the store is escaped.

A change point is the gate's own verdict (`gate.compare`) between a commit's runs and their
baseline as `gate --against branch:TRUNK` takes it (`baseline.branch_baseline`), as of the time the
runs started: on the trunk, its commit before; on any other branch (a pull request), the trunk's
latest commit before it, the one the branch was gated against.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.history.baseline import branch_baseline
from harness.history.gate import GateSettings, compare, pair_key
from harness.history.snapshot import Snapshot
from harness.history.store import load_runs
from reports.history_charts import METRICS, draw_trends
from reports.runs import short_audio

TEMPLATES = Path(__file__).parent / "templates"
IMG = "img"
TRUNK = "main"  # the branch the others are drawn against (CI files main's pushes under it)


@dataclass
class Series:
    """One backend's runs on one machine (fingerprint), audio and branch."""

    backend: str
    machine: str  # the machine's label on the page
    fingerprint: str
    audio: str
    branch: str | None
    trunk: bool  # the branch the others are gated against
    runs: dict = field(default_factory=dict)  # (mode, commit index) -> the latest run of that commit
    repeats: dict = field(default_factory=dict)  # (mode, commit index) -> every run of that commit, oldest first
    bases: dict = field(default_factory=dict)  # (mode, commit index) -> (commit index, run) of the gate's baseline
    changes: dict = field(default_factory=dict)  # commit index -> [(family, mode, Change)]


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


def trunk_of(runs: list[Snapshot]) -> str | None:
    """The branch the others are drawn against: TRUNK when runs are filed on it, else the oldest run's."""
    branches = [run.commit.branch for run in runs]
    return TRUNK if TRUNK in branches or not branches else branches[0]


def build_series(store: Path, runs: list[Snapshot], commits: list[dict]) -> dict[str, list[Series]]:
    """backend -> its series (one per machine, audio and branch, the trunk's first), each with its runs per
    mode and commit and the gate's change points against their baselines in `store`."""
    index = {c["sha"]: k for k, c in enumerate(commits)}
    labels = machine_labels(runs)
    trunk = trunk_of(runs)
    by_key: dict[tuple, Series] = {}
    for run in sorted(runs, key=lambda r: (r.commit.branch != trunk, r.created, r.store_id)):
        key = (run.backend, run.fingerprint, run.audio, run.commit.branch)
        series = by_key.setdefault(key, Series(run.backend, labels[run.fingerprint], run.fingerprint, run.audio,
                                               run.commit.branch, run.commit.branch == trunk))
        at = (run.mode, index[run.commit.sha])
        series.runs[at] = run  # oldest first: the latest run of a commit is drawn
        series.repeats.setdefault(at, []).append(run)
    out: dict[str, list[Series]] = {}
    for series in by_key.values():
        _change_points(store, trunk, series, index)
        out.setdefault(series.backend, []).append(series)
    return out


def _change_points(store: Path, trunk: str | None, series: Series, index: dict[str, int]) -> None:
    """The gate between each commit's runs and their baseline on the trunk, as `gate --against
    branch:TRUNK` took it when they started (the runs of the trunk's latest commit before them, the
    run-to-run noise of its quiet runs): its changes, under the family of charts they mark (``speed`` or
    ``parity``)."""
    settings = GateSettings()
    for (mode, k), runs in sorted(series.repeats.items()):
        base, noise = branch_baseline(store, trunk, runs[0], settings, started_before=runs[0].created)
        if not base:
            continue
        series.bases[(mode, k)] = (index[base[-1].commit.sha], base[-1])
        for change in compare(base, runs, settings, noise={pair_key(runs[0]): noise}).changes:
            family = "speed" if change.check == "speed" else "parity"
            series.changes.setdefault(k, []).append((family, mode, change))


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
    """Per machine, audio and branch with parity runs, one cell per commit; a cell whose bill is not the one
    of its baseline (the run the gate compared it with) is marked changed."""
    rows = []
    for s in series:
        if not any(mode == "parity" for mode, _ in s.runs):
            continue
        cells = []
        for k in range(len(commits)):
            cell = _bill_cell(s.runs.get(("parity", k)))
            base = s.bases.get(("parity", k))
            cell["changed"] = cell["cls"] != "none" and base is not None and cell["text"] != _bill_cell(base[1])["text"]
            cells.append(cell)
        rows.append({"machine": s.machine, "audio": short_audio(s.audio), "cells": cells,
                     "branch": "" if s.trunk else s.branch or "no branch"})
    return rows


def change_rows(series: list[Series], commits: list[dict]) -> list[dict]:
    """Every change point of a backend: commit, machine, audio, branch, the commit it was measured against
    and the gate's line."""
    rows = []
    for s in series:
        for k, found in sorted(s.changes.items()):
            for family, mode, change in found:
                rows.append({"commit": commits[k]["short"], "k": k, "machine": s.machine,
                             "audio": short_audio(s.audio), "branch": s.branch or "no branch",
                             "against": commits[s.bases[(mode, k)][0]]["short"], "family": family, "mode": mode,
                             "kind": "regression" if change.regression else "improvement",
                             "check": change.check, "before": change.before, "after": change.after,
                             "detail": change.detail, "caveat": change.caveat})
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
    for n, (backend, series) in enumerate(build_series(Path(store), runs, commits).items()):
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
