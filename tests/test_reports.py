"""Reports: the HTML page (verdicts, tables, charts, worst frames, escaping, robustness), markdown and JUnit.

The results are made here, by two real parity runs on the tiny synthetic models (a second
"machine" through SYNCTALK_PARITY_MACHINE), so the tests need no file from outside the repository.
"""
from __future__ import annotations

import copy
import json
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import cv2
import onnxruntime as ort
import pytest
from browser import broken_images, chromium

from harness.cli import main
from harness.verdicts.results import new_results, read_results, write_results
from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown

pytestmark = pytest.mark.long

WORDS = {"passed": "PASSED", "failed": "FAILED", "skipped": "SKIPPED", "error": "ERROR"}
HOSTILE_NAME = "<script>alert(1)</script> $\\frac{1}{"
HOSTILE_TEXT = "<img src=x onerror=alert(1)>"


def _config(tmp: Path, pack: Path, models: Path) -> Path:
    # CoreML must be unavailable for the skipped case: where it exists, name a provider that never does
    provider = "coreml" if "CoreMLExecutionProvider" not in ort.get_available_providers() else "NoSuchExecutionProvider"
    path = tmp / "parity.toml"
    path.write_text(f"""
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav", "silence"]
frames = 4
[run]
output = "{tmp / 'out'}"
profile = "desktop"
[backends.ort_cpu]
kind = "onnxruntime"
provider = "cpu"
[backends.fp16]
kind = "fp16"
thresholds = {{ profile = "mobile", feature_max_abs = 0.05 }}
[backends."reference[channel_order=rgb]"]
[backends.coreml]
kind = "onnxruntime"
provider = "{provider}"
""")
    return path


@pytest.fixture(scope="module")
def results_files(tmp_path_factory, synthetic_pack, tiny_models_dir) -> list[Path]:
    """results.json of two machines: "linux-box" (four backends) and "m1-laptop" (three)."""
    paths = []
    for machine, only in (("linux-box", []), ("m1-laptop", ["--backend", "ort_cpu", "--backend", "fp16",
                                                            "--backend", "coreml"])):
        tmp = tmp_path_factory.mktemp(machine)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SYNCTALK_PARITY_MACHINE", machine)
            rc = main(["run", "--config", str(_config(tmp, synthetic_pack, tiny_models_dir)), "--quiet", "--no-explain",
                       *only])
        assert rc == 3  # coreml is skipped
        paths.append(tmp / "out" / "results.json")
    return paths


class _Page(HTMLParser):
    """Images, links, verdict rows and the tables with an id (their text, and their rows as cell texts) of a
    rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.urls: list[str] = []
        self.verdicts: list[dict] = []
        self.tables: dict[str, list[str]] = {}
        self.rows: dict[str, list[list[str]]] = {}
        self._row: dict | None = None
        self._table: str | None = None
        self._cell = False
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(a[key])
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
            self.rows[self._table] = []
        if self._table is not None and tag == "tr":
            self.rows[self._table].append([])
        if self._table is not None and tag in ("td", "th"):
            self.rows[self._table][-1].append("")
            self._cell = True
        if tag == "tr" and "verdict" in (a.get("class") or "").split():
            self._row = {**{k[5:]: v for k, v in a.items() if k.startswith("data-")}, "text": ""}
            self.verdicts.append(self._row)

    def handle_endtag(self, tag):
        if self._cell and tag in ("td", "th"):
            self.rows[self._table][-1][-1] = self.rows[self._table][-1][-1].strip()
            self._cell = False
        if tag == "tr":
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._row is not None:
            self._row["text"] += data
        if self._table is not None:
            self.tables[self._table].append(data)
            if self._cell:
                self.rows[self._table][-1][-1] += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _expected(paths: list[Path]) -> set[tuple]:
    out = set()
    for path in paths:
        results = read_results(path)
        out |= {(results["machine"]["name"], r["backend"], r["audio"], r["status"]) for r in results["runs"]}
    return out


def test_html_report_shows_every_run_with_its_verdict_charts_and_images(results_files, tmp_path):
    index = render_html(results_files, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    page = _parse(html)

    expected = _expected(results_files)
    statuses = {e[3] for e in expected}
    assert statuses == {"passed", "failed", "skipped"}, statuses
    assert len(expected) == 2 * 4 + 2 * 3
    got = {(v["machine"], v["backend"], v["audio"], v["status"]) for v in page.verdicts}
    assert got == expected and len(page.verdicts) == len(expected)
    for v in page.verdicts:
        assert WORDS[v["status"]] in v["text"]
    rgb = [v for v in page.verdicts if v["backend"] == "reference[channel_order=rgb]"]
    assert rgb and all(v["status"] == "failed" and "PSNR" in v["text"] and "< 45 dB" in v["text"] for v in rgb)
    assert all("not available" in v["text"] for v in page.verdicts if v["backend"] == "coreml")

    summary = "".join(page.tables["summary-table"])
    for backend in ("ort_cpu", "fp16", "reference[channel_order=rgb]", "coreml"):
        assert backend in summary
    assert "embeddings" in "".join(page.tables["drift-table"])
    assert "ort_cpu" in "".join(page.tables["speed-table"])

    # every image is a relative path to a non-empty, decodable file; nothing external, no script
    assert page.imgs and page.scripts == 0
    for src in page.imgs:
        assert src and not src.startswith(("/", "http:", "https:", "file:", "data:")), src
        path = index.parent / src
        assert path.is_file() and path.stat().st_size > 0, src
        assert cv2.imread(str(path)) is not None, src
    assert not [u for u in page.urls if u.startswith(("http:", "https:", "//"))]
    for name in ("fps", "stages", "latency", "psnr", "ssim", "errors"):
        chart = index.parent / "img" / f"chart-{name}.png"
        assert f"img/chart-{name}.png" in page.imgs
        img = cv2.imread(str(chart))
        assert img is not None and img.shape[0] > 100 and img.shape[1] > 300 and img.std() > 5, name
    # worst frames of the failing variant: reference, candidate, heatmap and mouth close-ups
    assert "mouth, difference" in html and "image missing" not in html
    assert html.count('class="panel"') >= 3
    assert "linux-box" in html and "m1-laptop" in html and "sha256" in html and "[backends.ort_cpu]" in html


def _run(backend: str, status: str, **extra) -> dict:
    return {"backend": backend, "kind": "subprocess", "audio": "audio.wav", "status": status, "failures": [],
            "frames": 4, **extra}


RUNS = [  # one per status, and two failed runs: one with feature dumps, one without
    _run("ort_cpu", "passed", features={"mel": {"max_abs": 0.0}}, timings={"fps": 40.0, "total": 0.1}),
    _run("drifting_port", "failed", failures=["stage mel: max abs 0.5 > 0.0001"], features={"mel": {"max_abs": 0.5}},
         thresholds={"feature_max_abs": 1e-4}, timings={"fps": 20.0, "total": 0.2}),
    _run("undumped_port", "failed", failures=["PSNR 20.00 dB on frame 2 < 45 dB"], thresholds={"psnr_min": 45.0},
         summary={"full": {"psnr": {"min": 20.0}}}),
    _run("crashing_port", "error", frames=0, reason="port exited with code 3"),
    _run("coreml", "skipped", frames=0, reason="CoreMLExecutionProvider is not available"),
]
PER_RUN_TABLES = {  # every table of the page with an id -> the statuses of the runs it must show
    "verdict-table": {"passed", "failed", "error", "skipped"},
    "summary-table": {"passed", "failed", "error", "skipped"},
    "drift-table": {"passed", "failed"},
    "speed-table": {"passed", "failed", "error", "skipped"},
}


def test_every_run_has_one_row_in_every_table_that_shows_its_status(tmp_path):
    """A failed run never vanishes from a table: one without feature dumps has a drift row of "–"."""
    machine = {"name": "box", "os": "linux", "cpu": "cpu", "python": "3", "libraries": {}}
    inputs = {"source": {"path": "pack", "kind": "pack", "sha256": "0"},
              "models": {"audio_encoder": "0", "generator": "0"}, "audio": [{"name": "audio.wav", "sha256": "0"}]}
    doc = new_results(machine, inputs, "desktop", {})
    doc.update(partial=False, runs=RUNS)
    path = write_results(doc, tmp_path / "results.json")
    page = _parse(render_html([path], tmp_path / "report").read_text(encoding="utf-8"))
    assert set(page.rows) == set(PER_RUN_TABLES)
    for table, statuses in PER_RUN_TABLES.items():
        head, *rows = page.rows[table]
        column = head.index("backend")
        backends = [row[column] for row in rows if len(row) > column]
        for run in RUNS:
            if run["status"] in statuses:
                assert backends.count(run["backend"]) == 1, (table, run["backend"], backends)
    undumped = next(row for row in page.rows["drift-table"] if row[1] == "undumped_port")
    assert undumped[-1] == "–", undumped  # the mel column


def test_the_speed_table_says_which_way_the_bare_generator_was(tmp_path):
    """A bench run's x bare and the way of running the generator alone that it is against."""
    machine = {"name": "box", "os": "linux", "cpu": "cpu", "python": "3", "libraries": {}}
    inputs = {"source": {"path": "pack", "kind": "pack", "sha256": "0"},
              "models": {"audio_encoder": "0", "generator": "0"}, "audio": [{"name": "audio.wav", "sha256": "0"}]}
    doc = new_results(machine, inputs, "desktop", {})
    bench = {"fps": 14.3, "x_bare": 0.8, "bare_fps": 17.9, "bare_way": "2 sessions x 1 thread"}
    doc.update(partial=False, runs=[_run("reference", "passed", timings={"fps": 14.3}, bench=bench),
                                    _run("ort_cpu", "passed", timings={"fps": 40.0})])
    page = _parse(render_html([write_results(doc, tmp_path / "results.json")], tmp_path / "report")
                  .read_text(encoding="utf-8"))
    head, *rows = page.rows["speed-table"]
    row = {r[head.index("backend")]: r for r in rows}
    assert row["reference"][head.index("x bare")] == "×0.80"
    assert row["reference"][head.index("bare generator")] == "17.90 FPS, 2 sessions x 1 thread"
    assert row["ort_cpu"][head.index("x bare")] == row["ort_cpu"][head.index("bare generator")] == "–"


def _copy_results(src: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    if (src.parent / "worst_frames").is_dir():
        shutil.copytree(src.parent / "worst_frames", dest / "worst_frames")
    shutil.copy(src, dest / "results.json")
    return dest / "results.json"


def _edit(path: Path, change) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def test_hostile_names_and_texts_are_escaped_everywhere(results_files, tmp_path):
    path = _copy_results(results_files[0], tmp_path / "hostile")

    def change(doc):
        for run in doc["runs"]:
            if run["backend"] == "reference[channel_order=rgb]":
                run["backend"] = HOSTILE_NAME
                run["failures"].append(HOSTILE_TEXT)
            if run["status"] == "skipped":
                run["reason"] = HOSTILE_TEXT
        doc["config"]["text"] += f"\n# {HOSTILE_TEXT}\n"
        doc["machine"]["name"] = "<b>box</b>"
        doc["runs"][0]["diagnosis"] = {"note": HOSTILE_TEXT, "items": [HOSTILE_NAME]}
    _edit(path, change)
    html = render_html([path], tmp_path / "report").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html and "<img src=x onerror" not in html and "<b>box</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    page = _parse(html)
    assert page.scripts == 0 and "x" not in page.imgs
    assert any(v["backend"] == HOSTILE_NAME for v in page.verdicts)  # the attribute round-trips intact

    md = render_markdown([read_results(path)])
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    root = ET.fromstring(render_junit([read_results(path)]))
    names = [case.get("name") for case in root.iter("testcase")]
    assert any(n.startswith(HOSTILE_NAME) for n in names)


def test_missing_keys_images_and_error_runs_are_shown_not_crashed(results_files, tmp_path):
    path = _copy_results(results_files[0], tmp_path / "broken")
    doc = json.loads(path.read_text())
    worst = next(r for r in doc["runs"] if r.get("worst_frames"))["worst_frames"][0]
    (path.parent / worst["candidate"]).unlink()

    def change(doc):
        doc["runs"].append({"backend": "crashing_port", "kind": "subprocess", "audio": "audio.wav", "status": "error",
                            "failures": [], "frames": 0, "reason": "port exited with code 3",
                            "log_tail": "\x1b[31mSegmentation fault\x1b[0m\x00 <core dumped>"})
        doc["runs"].append({"backend": "bare", "kind": "fp16", "audio": "audio.wav", "status": "passed",
                            "failures": [], "frames": 2,
                            "per_frame": [{"i": 0}, {"i": 1, "full": {"psnr": "inf"}}],
                            "worst_frames": [{"i": 1, "psnr": 30.0, "reference": "../../../etc/passwd",
                                              "candidate": "worst_frames/nowhere.png"}],
                            "errors": ["video: ffmpeg exited with code 1"]})
        run = next(r for r in doc["runs"] if r["backend"] == "reference[channel_order=rgb]")
        run["diagnosis"] = {"likely": "channel order swapped (RGB instead of BGR)",
                            "evidence": [{"stage": "generator_outputs", "max_abs": 0.67}, "mel identical"]}
        del doc["runs"][0]["timings"]["stages"]
    _edit(path, change)
    index = render_html([path], tmp_path / "report")
    html = index.read_text(encoding="utf-8")
    page = _parse(html)
    assert f"{worst['candidate']} not found" in html and "outside the results folder" in html
    for src in page.imgs:
        assert (index.parent / src).is_file(), src
    error = [v for v in page.verdicts if v["backend"] == "crashing_port"]
    assert len(error) == 1 and error[0]["status"] == "error" and "ERROR" in error[0]["text"]
    assert "port exited with code 3" in error[0]["text"]
    bare = [v for v in page.verdicts if v["backend"] == "bare"]
    assert "after the verdict, video: ffmpeg exited with code 1" in bare[0]["text"]  # results.json's errors
    assert "Segmentation fault" in html and "&lt;core dumped&gt;" in html
    assert "Diagnosis" in html and "channel order swapped (RGB instead of BGR)" in html and "mel identical" in html


def test_markdown_and_junit_count_every_run(results_files):
    results = [read_results(p) for p in results_files]
    broken = copy.deepcopy(results[1])
    broken["runs"].append({"backend": "go_port", "kind": "subprocess", "audio": "audio.wav", "status": "error",
                           "failures": [], "frames": 0, "reason": "timed out after 900 s",
                           "log_tail": "frame 3 ```\n\x1b[1mpanic\x1b[0m: index out of range \x07"})
    results = [results[0], broken]
    runs = [r for doc in results for r in doc["runs"]]
    n = {s: sum(r["status"] == s for r in runs) for s in WORDS}
    assert n["failed"] and n["skipped"] and n["error"] == 1 and n["passed"]

    md = render_markdown(results)
    table = [line for line in md.splitlines()
             if line.startswith("| ") and any(f" {word} |" in line for word in WORDS.values())]
    assert len(table) == len(runs)
    for status, word in WORDS.items():
        assert sum(word in line for line in table) == n[status], status
    assert "timed out after 900 s" in md and "````" in md  # the log fence outgrows the backticks inside
    assert "reference\\[channel\\_order=rgb\\]" in md and "&lt; 45 dB" in md

    root = ET.fromstring(render_junit(results))
    cases = list(root.iter("testcase"))
    assert len(cases) == len(runs) and root.get("tests") == str(len(runs))
    assert sum(c.find("failure") is not None for c in cases) == n["failed"] == int(root.get("failures"))
    assert sum(c.find("skipped") is not None for c in cases) == n["skipped"] == int(root.get("skipped"))
    assert sum(c.find("error") is not None for c in cases) == n["error"] == int(root.get("errors"))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["linux-box", "m1-laptop"]
    assert sum(int(s.get("tests")) for s in suites) == len(runs)
    rgb = next(c for c in cases if c.get("name") == "reference[channel_order=rgb][audio]")
    assert "PSNR" in rgb.find("failure").get("message")
    error = next(c for c in cases if c.get("name") == "go_port[audio]").find("error")
    assert error.get("message") == "timed out after 900 s" and "panic: index out of range" in error.text


def _broken_images(driver) -> list:
    shown, broken = broken_images(driver)
    assert shown, "the report shows no image"
    return broken


def test_report_renders_in_headless_chromium(results_files, tmp_path):
    """The real browser: every image loads, the verdict table has its rows, and a screenshot is saved."""
    index = render_html(results_files, tmp_path / "report")
    with chromium(tmp_path / "chrome") as driver:
        driver.get(index.as_uri())
        broken = _broken_images(driver)
        assert broken == [], f"broken images in the browser: {broken}"
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#verdict-table tr.verdict')).map(r => "
            "[r.dataset.machine, r.dataset.backend, r.dataset.audio, r.dataset.status, r.innerText]);")
        assert {tuple(r[:4]) for r in rows} == _expected(results_files) and len(rows) == len(_expected(results_files))
        assert all(WORDS[r[3]] in r[4] for r in rows)
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and cv2.imread(str(shot)).shape[1] >= 1000


def test_findings_and_their_crops_render_in_headless_chromium(tmp_path, synthetic_pack, tiny_models_dir,
                                                              monkeypatch):
    """Two folders of frames made elsewhere, one pasted y-flipped, one with a nearest-neighbour paste, and
    an app's video of the y-flipped frames with frame 3 dropped: the report's findings table names each
    (the video's timing and codec too), with the crop of each loading in the browser. (The model-based
    diagnosis, tested elsewhere, is left out for time.)"""
    import travelled

    import harness.runs.parity
    monkeypatch.setattr(harness.runs.parity, "diagnose", lambda *args, **kwargs: {})

    from harness.video import write
    from reference.conventions import Conventions
    from reference.data import read_image
    audio = synthetic_pack / "audio.wav"
    flipped = travelled.make_folder(synthetic_pack, audio, tiny_models_dir, tmp_path / "flipped", 8,
                                    paste=travelled.y_flipped)
    kept = [k for k in range(8) if k != 2]
    write.encode(tmp_path / "app.mp4", [read_image(flipped / f"frame_{k + 1:05d}.png") for k in kept],
                 times=[k / 25 for k in kept])
    travelled.make_folder(synthetic_pack, audio, tiny_models_dir, tmp_path / "nearest", 8,
                          Conventions(resize_kernel="nearest"))
    config = tmp_path / "parity.toml"
    config.write_text(f"""
[data]
pack = "{synthetic_pack}"
models = "{tiny_models_dir}"
audio = ["{audio}"]
frames = 8
[run]
output = "{tmp_path / 'out'}"
[backends.flipped]
kind = "frames"
dir = "flipped"
pattern = "frame_%05d.png"
[backends.nearest]
kind = "frames"
dir = "nearest"
pattern = "frame_%05d.png"
[backends.app]
kind = "frames"
video = "app.mp4"
""")
    assert main(["run", "--config", str(config), "--quiet"]) == 1
    index = render_html([tmp_path / "out" / "results.json"], tmp_path / "report")
    with chromium(tmp_path / "chrome") as driver:
        driver.get(index.as_uri())
        assert _broken_images(driver) == []
        sections = driver.execute_script(
            "return Array.from(document.querySelectorAll('section.findings')).map(s => [s.querySelector('h3').innerText, "
            "Array.from(s.querySelectorAll('tbody tr')).map(r => r.cells[1].innerText), "
            "Array.from(s.querySelectorAll('img')).map(i => i.naturalWidth)]);")
    by_backend = {title.split(" · ")[0]: (kinds, widths) for title, kinds, widths in sections}
    assert by_backend["flipped"][0][0] == "paste_position" and by_backend["nearest"][0][0] == "resize_kernel"
    assert {"frame_timing", "video_codec", "paste_position", "residual"} <= set(by_backend["app"][0]), by_backend["app"]
    assert all(len(by_backend[name][1]) == 1 for name in ("flipped", "nearest")), by_backend
    assert all(widths and min(widths) > 100 for _, widths in by_backend.values()), by_backend
