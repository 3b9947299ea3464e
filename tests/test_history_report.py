"""The history page: trend charts per backend, change points where the gate's test says the level moved,
the bill strip, escaping, and the page in headless Chromium.

The store is made here from hand-made results (tests/history_docs.py) over four commits and two
machines, with known events: ort_cpu 25 % slower on linux-box from commit 4 (after three runs that give
the run-to-run noise a change must pass), the port failing with resize_kernel=nearest at commit 3 and
fixed at commit 4.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import history_docs as docs
import pytest
from browser import broken_images, chromium

from harness.cli import main
from harness.history.cli import run_gate
from harness.history.commits import Commit
from harness.history.store import add_results
from harness.verdicts.results import read_results
from reports.history import render_history

HOSTILE = "<script>alert(1)</script>"
COMMITS = [f"{k}" * 40 for k in range(1, 5)]
LINUX = dict(docs.MACHINE, name="linux-box")
M1 = dict(docs.MACHINE, name="m1-laptop", cpu="Apple M1 Pro", os="macOS-14-arm64")


def _runs(k: int, machine: str) -> list[dict]:
    slow = 1.25 if machine == "linux-box" and k >= 3 else 1.0
    port = (docs.run("port", status="failed", psnr=31.5, identical=62.0, bill=[("resize_kernel", "nearest", 9.75)])
            if k == 2 else docs.run("port"))
    return [docs.run("ort_cpu", frame_ms=docs.latencies(70.0 * slow, seed=k)),
            docs.run("ort_cpu", audio="silence_3s.wav", frame_ms=docs.latencies(72.0 * slow, seed=10 + k)),
            port, docs.run(HOSTILE, frame_ms=docs.latencies(50.0, seed=20 + k))]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    path = folder / "history.sqlite"
    for k, sha in enumerate(COMMITS):
        for machine in ("linux-box", "m1-laptop"):
            doc = docs.results(_runs(k, machine), created=f"2025-01-0{k + 1}T00:00:00+00:00",
                               machine=LINUX if machine == "linux-box" else M1)
            add_results(path, [(folder / f"{machine}-{k}.json", doc)], Commit(sha, 1_700_000_000 + 3600 * k, "main"))
    bench = docs.results([{"backend": "ort_cpu", "kind": "onnxruntime", "audio": "talk.wav", "status": "passed",
                           "failures": [], "frames": 30, "options": {"provider": "cpu"},
                           "bench": {"x_bare": 0.93, "peak_rss_mb": 612.0, "frame_latency_ms": [docs.latencies()]},
                           "timings": {"fps": 14.0, "steady_fps": 14.0, "p99_ms": 80.0, "peak_rss_mb": 612.0}}],
                         created="2025-01-04T01:00:00+00:00")
    bench["bench"] = {"points": []}
    add_results(path, [(folder / "bench.json", bench)], Commit(COMMITS[3], 1_700_000_000 + 3 * 3600, "main"))
    return path


class _Page(HTMLParser):
    """Images, and the rows (cell texts, with each row's and cell's attributes) of every table with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables: dict[str, list[dict]] = {}
        self._table = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table" and attrs.get("id"):
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append({"attrs": attrs, "cells": [], "classes": []})
        elif tag in ("td", "th") and self._table:
            self._cell = []
            self._table[-1]["classes"].append(attrs.get("class") or "")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def page(store, tmp_path_factory) -> tuple[Path, _Page, str]:
    index = render_history(store, tmp_path_factory.mktemp("page"))
    html = index.read_text(encoding="utf-8")
    parser = _Page()
    parser.feed(html)
    return index, parser, html


def _backend_ids(html: str) -> dict[str, int]:
    return {name: int(n) for n, name in re.findall(r'id="backend-(\d+)" data-backend="([^"]*)"', html)}


def test_every_backend_has_its_trend_chart_and_every_run_a_row(page):
    index, parsed, html = page
    ids = _backend_ids(html)
    assert set(ids) == {"ort_cpu", "port", HOSTILE.replace("<", "&lt;").replace(">", "&gt;")}
    assert sorted(parsed.images) == [f"img/trend-{n}.png" for n in sorted(ids.values())]
    for src in parsed.images:
        image = cv2.imread(str(index.parent / src))
        assert image is not None and image.shape[1] > 800 and image.shape[0] > 800
    assert len(parsed.tables["run-table"]) - 1 == 4 * 2 * 4 + 1
    commits = parsed.tables["commit-table"][1:]
    assert [row["cells"][1] for row in commits] == COMMITS  # in commit order
    assert all(row["cells"][3] == "main" for row in commits)


def test_change_points_are_where_the_gate_says_the_level_moved(page):
    _, parsed, html = page
    ids = _backend_ids(html)
    ort = [(r["attrs"]["data-commit"], r["cells"][1], r["cells"][2], r["attrs"]["class"], r["attrs"]["data-check"])
           for r in parsed.tables[f"changes-{ids['ort_cpu']}"][1:]]
    assert ort == [(COMMITS[3][:10], "linux-box", "silence_3s", "regression", "speed"),
                   (COMMITS[3][:10], "linux-box", "talk", "regression", "speed")]
    port = {(r["attrs"]["data-commit"], r["cells"][1], r["attrs"]["class"], r["attrs"]["data-check"])
            for r in parsed.tables[f"changes-{ids['port']}"][1:]}
    for machine in ("linux-box", "m1-laptop"):
        assert (COMMITS[2][:10], machine, "regression", "bill of deviations") in port
        assert (COMMITS[2][:10], machine, "regression", "verdict") in port
        assert (COMMITS[3][:10], machine, "improvement", "bill of deviations") in port
    assert not any(c in (COMMITS[0][:10], COMMITS[1][:10]) for c, *_ in port)
    assert f'id="changes-{ids[HOSTILE.replace("<", "&lt;").replace(">", "&gt;")]}"' not in html  # no change: none


def test_the_bill_strip_shows_a_new_defect_where_it_landed(page):
    _, parsed, html = page
    strip = parsed.tables[f"strip-{_backend_ids(html)['port']}"]
    assert strip[0]["cells"][2:] == [sha[:8] for sha in COMMITS]
    for row in strip[1:]:
        assert row["cells"][2:] == ["canonical", "canonical", "resize_kernel=nearest", "canonical"]
        assert ["changed" in cls for cls in row["classes"][2:]] == [False, False, True, True]


def test_everything_from_the_store_is_escaped(page):
    _, _, html = page
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()


def test_the_command_renders_the_store_and_refuses_a_bad_one(store, tmp_path, capsys):
    assert main(["history", "report", "--store", str(store), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == f"history -> {tmp_path / 'out' / 'index.html'}"
    bad = tmp_path / "bad.sqlite"
    bad.write_text("hello")
    assert main(["history", "report", "--store", str(bad), "--out", str(tmp_path / "out2")]) == 2
    assert "not a synctalk-parity history store" in capsys.readouterr().err


def test_the_history_page_in_headless_chromium(page, tmp_path):
    """The real browser: every trend chart loads, the strip and the change points are there."""
    index, parsed, html = page
    with chromium(tmp_path / "chrome") as driver:
        driver.get(index.as_uri())
        shown, broken = broken_images(driver)
        assert shown == len(_backend_ids(html)) and broken == []
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.strip td.cell.changed')).map(c => c.innerText);")
        assert cells.count("resize_kernel=nearest") == 2 and cells.count("canonical") == 2
        marks = driver.execute_script("return document.querySelectorAll('table.changes tr.regression').length;")
        assert marks == sum(row["attrs"]["class"] == "regression" for name, rows in parsed.tables.items()
                            if name.startswith("changes-") for row in rows[1:]) > 0
        shot = tmp_path / "history.png"
        assert driver.save_screenshot(str(shot)) and cv2.imread(str(shot)).shape[1] >= 1000


MAIN = [f"a{k}" * 20 for k in range(1, 4)]
PULLS = {"pr-nearest": "b1" * 20, "pr-rerun": "b2" * 20, "pr-slow": "b3" * 20}  # filed in this order


def test_each_branch_is_its_own_line_gated_against_main_as_the_gate_did(tmp_path):
    """Three runs of main, then one run on each of three pull-request branches: a nearest paste, an identical
    rerun and a port 20 ms a frame slower. Every change on the page is the gate's own verdict of that run
    against branch:main (main's third commit); the rerun, gated against main, changed nothing (drawn as
    one line in filing order, it would be an improvement over the nearest paste before it)."""
    store = tmp_path / "history.sqlite"
    ports = [docs.run("port", frame_ms=docs.latencies(150.0, seed=k)) for k in range(3)]
    ports += [docs.run("port", status="failed", psnr=31.5, identical=62.0, bill=[("resize_kernel", "nearest", 9.75)],
                       frame_ms=docs.latencies(150.0, seed=3)),
              docs.run("port", frame_ms=docs.latencies(150.0, seed=4)),
              docs.run("port", frame_ms=docs.latencies(170.0, seed=5))]
    commits = [Commit(sha, 1_700_000_000 + 3600 * k, "main") for k, sha in enumerate(MAIN)]
    commits += [Commit(sha, 1_700_000_000 + 3600 * (3 + k), branch) for k, (branch, sha) in enumerate(PULLS.items())]
    files = {}
    for k, (port, commit) in enumerate(zip(ports, commits)):
        files[commit.branch] = docs.write(tmp_path / f"{k}.json", [port], created=f"2025-01-0{k + 1}T00:00:00+00:00")
        add_results(store, [(files[commit.branch], read_results(files[commit.branch]))], commit)
    parsed = _Page()
    parsed.feed(render_history(store, tmp_path / "page").read_text(encoding="utf-8"))
    page = {(r["attrs"]["data-commit"], r["attrs"].get("data-branch"), r["attrs"].get("data-against"),
             r["attrs"]["class"], r["attrs"]["data-check"]) for r in parsed.tables.get("changes-0", [{}])[1:]}
    rerun = {(check, kind) for commit, _, _, kind, check in page if commit == PULLS["pr-rerun"][:10]}
    assert rerun == set(), f"the identical rerun, gated against main, changed nothing; the page says {rerun}"
    nearest, slow = PULLS["pr-nearest"][:10], PULLS["pr-slow"][:10]
    assert page == {(nearest, "pr-nearest", MAIN[2][:10], "regression", check)
                    for check in ("verdict", "worst PSNR", "identical %", "bill of deviations")} | \
        {(slow, "pr-slow", MAIN[2][:10], "regression", "speed")}
    for branch, sha in PULLS.items():  # the gate's own verdict of each pull request, run as CI runs it
        gated, _ = run_gate([files[branch]], ["branch:main"], store)
        assert {(c.check, "regression" if c.regression else "improvement") for c in gated.changes} == \
            {(check, kind) for commit, _, _, kind, check in page if commit == sha[:10]}, branch
    strip = {row["cells"][0]: row for row in parsed.tables["strip-0"][1:]}  # one row per branch
    assert sorted(strip) == ["box", "box on pr-nearest", "box on pr-rerun", "box on pr-slow"]
    assert [(cell, "changed" in cls) for cell, cls in zip(strip["box on pr-rerun"]["cells"][2:],
                                                         strip["box on pr-rerun"]["classes"][2:])
            if cell != "–"] == [("canonical", False)]
    assert "changed" in strip["box on pr-nearest"]["classes"][2 + 3]
