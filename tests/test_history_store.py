"""The history store: runs filed once, concurrent writers from several processes, bad files refused with the
store left byte for byte as it was, the commit from git or --commit."""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import sqlite3
import subprocess
from pathlib import Path

import history_docs as docs
import pytest

from harness.cli import main
from harness.history.commits import CommitError, find_commit
from harness.history.store import FORMAT, load_runs

COMMIT = "0123456789abcdef0123456789abcdef01234567"
WRITERS, FILES = 5, 4  # processes filing at once, results files each


def _add(store: Path, *paths: Path, commit: str = COMMIT, branch: str | None = "main") -> int:
    extra = ["--branch", branch] if branch else []
    return main(["history", "add", *map(str, paths), "--store", str(store), "--commit", commit, *extra])


def _bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_is_filed_with_what_a_comparison_needs_and_only_once(tmp_path, capsys):
    path = docs.write(tmp_path / "results.json", [
        docs.run("ort_cpu", frame_ms=docs.latencies(70.0)),
        docs.run("port", status="failed", psnr=38.5, identical=91.25, bill=[("quantisation", "round", 6.5)]),
        docs.run("ort_cpu", audio="silence_3s.wav")])
    store = tmp_path / "history.sqlite"
    assert _add(store, path) == 0
    assert "3 run(s) filed, 0 already there, under 0123456789ab on main" in capsys.readouterr().out
    assert _add(store, path) == 0 and "0 run(s) filed, 3 already there" in capsys.readouterr().out
    runs = load_runs(store)
    assert len(runs) == 3 and {r.commit.sha for r in runs} == {COMMIT} and {r.commit.branch for r in runs} == {"main"}
    port = next(r for r in runs if r.backend == "port")
    assert port.status == "failed" and port.regions["full"]["psnr"] == {"worst": 38.5, "mean": 38.5}
    assert port.regions["full"]["identical_pct"]["mean"] == 91.25
    assert port.bill == [{"knob": "quantisation", "value": "round", "weight_db": 6.5}]
    ort = next(r for r in runs if r.backend == "ort_cpu" and r.audio == "talk.wav")
    assert ort.regions["full"]["psnr"]["worst"] == math.inf  # infinite PSNR survives the round trip
    assert ort.speed["frame_ms"] == pytest.approx(docs.latencies(70.0)[4:])  # the start-up frames left out
    assert ort.audio_sha256 == "a" * 64 and ort.bill is None and ort.features["mel"] == {"max_abs": 0.0}
    # another results file of the same commit (a later run) is a new run
    later = docs.write(tmp_path / "later.json", [docs.run("ort_cpu")], created="2025-01-02T00:00:00+00:00")
    assert _add(store, later) == 0 and len(load_runs(store)) == 4


SNAPSHOT_KEYS = ["backend", "kind", "audio", "audio_sha256", "mode", "options", "frames", "machine", "fingerprint",
                 "machine_parts", "inputs_sha256", "config_sha256", "created", "status", "profile", "failures",
                 "reason", "thresholds", "regions", "features", "bill", "fitted", "speed"]


def test_the_store_answers_keyword_queries_with_bound_values(tmp_path):
    store = tmp_path / "history.sqlite"
    filed = [("main", "a" * 40, [docs.run("ort_cpu"), docs.run("port")], "2025-01-01T00:00:00+00:00"),
             ("feature", "b" * 40, [docs.run("ort_cpu")], "2025-01-02T00:00:00+00:00"),
             (None, "c" * 40, [docs.run("ort_cpu")], "2025-01-03T00:00:00+00:00")]
    for k, (branch, commit, runs, created) in enumerate(filed):
        assert _add(store, docs.write(tmp_path / f"{k}.json", runs, created=created), commit=commit, branch=branch) == 0
    assert [(r.backend, r.commit.branch) for r in load_runs(store, branch="main")] == [("ort_cpu", "main"),
                                                                                       ("port", "main")]
    assert [r.commit.sha for r in load_runs(store, branch=None)] == ["c" * 40]  # None: filed without a branch
    assert [r.commit.branch for r in load_runs(store, commit="b" * 40)] == ["feature"]
    assert [r.commit.sha[0] for r in load_runs(store, backend="ort_cpu", machine="box")] == ["a", "b", "c"]
    assert [r.commit.sha[0] for r in load_runs(store, mode="parity", started_before="2025-01-02T00:00:00+00:00")] == \
        ["a", "a"]
    assert load_runs(store, backend="port' OR '1'='1") == [] and load_runs(store, mode="bench") == []
    with sqlite3.connect(store) as db:  # the snapshot is stored as it always was: its keys, in this order
        stored = [json.loads(text) for (text,) in db.execute("SELECT snapshot FROM runs")]
    db.close()
    assert all(list(snap) == SNAPSHOT_KEYS for snap in stored)


def _writer(store: str, paths: list[str], barrier, codes) -> None:
    """One process: waits for the others, then files its results one `history add` at a time."""
    import harness.runs.parity  # noqa: F401 - imported before the start, so that the processes overlap
    barrier.wait()
    codes.put([_add(Path(store), Path(path)) for path in paths])


def test_concurrent_adds_from_several_processes_lose_nothing(tmp_path):
    """Five processes file four results files each, one `add` per file, all at once, and one file all of them
    share: every run is there once."""
    shared = docs.write(tmp_path / "shared.json", [docs.run("ort_cpu")], created="2025-02-01T00:00:00+00:00")
    context = multiprocessing.get_context("fork")
    barrier, codes = context.Barrier(WRITERS), context.Queue()
    workers = []
    for worker in range(WRITERS):
        paths = [docs.write(tmp_path / f"w{worker}-{k}.json", [docs.run("ort_cpu"), docs.run("fp16")],
                            created=f"2025-01-01T00:{worker:02d}:{k:02d}+00:00") for k in range(FILES)]
        workers.append(context.Process(target=_writer, args=(str(tmp_path / "history.sqlite"),
                                                             [str(p) for p in paths] + [str(shared)], barrier, codes)))
    for process in workers:
        process.start()
    results = [codes.get(timeout=300) for _ in workers]
    for process in workers:
        process.join(timeout=60)
    assert results == [[0] * (FILES + 1)] * WRITERS
    runs = load_runs(tmp_path / "history.sqlite")
    assert len(runs) == WRITERS * FILES * 2 + 1
    assert len({(r.created, r.backend) for r in runs}) == len(runs)


@pytest.mark.parametrize("bad, fragment", [
    ('{"schema": "synctalk-parity/results", "runs": [', "not a readable results.json"),
    ('{"hello": "world"}', "invalid results.json"),
    ("", "not a readable results.json"),
])
def test_a_corrupt_or_foreign_results_file_is_refused_and_nothing_is_added(tmp_path, capsys, bad, fragment):
    store = tmp_path / "history.sqlite"
    assert _add(store, docs.write(tmp_path / "first.json", [docs.run()])) == 0
    before = _bytes(store)
    good = docs.write(tmp_path / "good.json", [docs.run("fp16")], created="2025-03-01T00:00:00+00:00")
    broken = tmp_path / "broken.json"
    broken.write_text(bad)
    capsys.readouterr()
    assert _add(store, good, broken) == 2  # the good file is not filed either: all or nothing
    err = capsys.readouterr().err
    assert str(broken) in err and fragment in err
    assert _bytes(store) == before and len(load_runs(store)) == 1


def test_a_partial_results_file_is_refused(tmp_path, capsys):
    doc = docs.results([docs.run()])
    doc["partial"] = True
    from harness.verdicts.results import write_results
    path = write_results(doc, tmp_path / "results.json")
    assert _add(tmp_path / "history.sqlite", path) == 2
    assert "partial results file" in capsys.readouterr().err and not (tmp_path / "history.sqlite").exists()


def test_a_corrupt_or_foreign_store_is_refused_and_left_as_it_was(tmp_path, capsys):
    results = docs.write(tmp_path / "results.json", [docs.run()])
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
        db.execute("INSERT INTO invoices VALUES (1, 9.5)")
    db.close()
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database at all\n" * 100)
    for store in (corrupt, foreign, text):
        before = _bytes(store)
        assert _add(store, results) == 2, store
        err = capsys.readouterr().err
        assert str(store) in err and "not a synctalk-parity history store" in err, err
        assert _bytes(store) == before
        assert main(["history", "list", "--store", str(store)]) == 2
        assert "not a synctalk-parity history store" in capsys.readouterr().err
    with sqlite3.connect(foreign) as db:
        assert db.execute("SELECT * FROM invoices").fetchall() == [(1, 9.5)]
    db.close()


def test_a_store_of_another_format_version_is_refused(tmp_path, capsys):
    store = tmp_path / "history.sqlite"
    assert _add(store, docs.write(tmp_path / "r.json", [docs.run()])) == 0
    with sqlite3.connect(store) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
        assert db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() == (FORMAT,)
    db.close()
    capsys.readouterr()
    assert main(["history", "list", "--store", str(store)]) == 2
    assert "history store version 99" in capsys.readouterr().err


def test_reading_a_missing_store_creates_nothing(tmp_path, capsys):
    store = tmp_path / "missing.sqlite"
    assert main(["history", "list", "--store", str(store)]) == 2
    assert "history store not found" in capsys.readouterr().err and not store.exists()


def test_list_shows_every_run(tmp_path, capsys):
    store = tmp_path / "history.sqlite"
    _add(store, docs.write(tmp_path / "r.json", [docs.run("ort_cpu"), docs.run("fp16", status="failed", psnr=40.0)]))
    capsys.readouterr()
    assert main(["history", "list", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "0123456789ab  main" in out and "ort_cpu" in out and "fp16" in out and "failed" in out


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_the_commit_comes_from_git_or_from_the_option(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "feature")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one")
    head = _git(repo, "rev-parse", "HEAD")
    found = find_commit(repo)
    assert found.sha == head and found.branch == "feature" and isinstance(found.time, int)
    short = find_commit(repo, head[:8], "main")
    assert short.sha == head and short.branch == "main" and short.time == found.time  # expanded by git
    assert find_commit(repo, "fedcba98").sha == "fedcba98"  # unknown to this git: kept as given, no time
    _git(repo, "checkout", "-q", "--detach")
    assert find_commit(repo).branch is None
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with pytest.raises(CommitError, match="not in a git checkout.*--commit"):
        find_commit(outside)
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    results = docs.write(tmp_path / "r.json", [docs.run()])
    assert main(["history", "add", str(results), "--store", str(tmp_path / "h.sqlite")]) == 2
    assert "give it with --commit HASH" in capsys.readouterr().err
    monkeypatch.chdir(repo)
    assert main(["history", "add", str(results), "--store", str(tmp_path / "h.sqlite")]) == 0
    assert json.loads(json.dumps(load_runs(tmp_path / "h.sqlite")[0].commit.sha)) == head
