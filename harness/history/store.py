"""The history store: one SQLite file (standard library) of run snapshots per commit and machine.

A run is filed under its commit, its machine fingerprint, its mode (parity or bench), backend, audio
and config hash, and the time its results file was started; adding the same run again changes
nothing. Every write is one ``BEGIN IMMEDIATE`` transaction with a busy timeout, so parallel
``history add``s (CI jobs, a pytest-xdist run) wait for each other and lose nothing; a file that is
not a history store (corrupt, or another program's database) is refused before anything is written.
Readers open the file read-only and never create it.

Default path: ``$SYNCTALK_PARITY_HISTORY``, else ``$XDG_DATA_HOME/synctalk-parity/history.sqlite``
(``~/.local/share/...``).
"""
from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from harness.history.commits import Commit
from harness.history.snapshot import Snapshot, digest, snapshots
from reference.errors import InputError

FORMAT = "synctalk-parity/history"
VERSION = 1
BUSY_TIMEOUT_S = 120.0  # how long a writer waits for another one's transaction
COLUMNS = {  # the runs table: column -> its SQL type (a run's snapshot as JSON last)
    "id": "INTEGER PRIMARY KEY", "run_key": "TEXT NOT NULL UNIQUE",
    "commit_sha": "TEXT NOT NULL", "commit_time": "INTEGER", "branch": "TEXT",
    "fingerprint": "TEXT NOT NULL", "machine": "TEXT",
    "mode": "TEXT NOT NULL", "backend": "TEXT NOT NULL", "audio": "TEXT NOT NULL", "audio_sha256": "TEXT",
    "config_sha256": "TEXT", "created": "TEXT NOT NULL", "added": "TEXT NOT NULL", "status": "TEXT NOT NULL",
    "source": "TEXT", "snapshot": "TEXT NOT NULL"}
SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs ({', '.join(f'{column} {kind}' for column, kind in COLUMNS.items())});
CREATE INDEX runs_baseline ON runs (fingerprint, branch, backend, audio_sha256, mode, created);
"""
SHARED = ("fingerprint", "machine", "mode", "backend", "audio", "audio_sha256", "config_sha256", "status")
NOT_A_STORE = "not a synctalk-parity history store"
FIX = "give the store written by `synctalk-parity history add` (--store), or a new path"


def default_store() -> Path:
    """$SYNCTALK_PARITY_HISTORY, else $XDG_DATA_HOME/synctalk-parity/history.sqlite (~/.local/share)."""
    if os.environ.get("SYNCTALK_PARITY_HISTORY"):
        return Path(os.environ["SYNCTALK_PARITY_HISTORY"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "synctalk-parity" / "history.sqlite"


@dataclass(frozen=True)
class Added:
    """What `add` did: runs filed, and runs the store already held (unchanged)."""

    added: int
    already: int


def run_key(snap: Snapshot, commit: str) -> str:
    """The identity of a filed run: commit, machine fingerprint, mode, backend, audio, config and start time."""
    return digest({k: getattr(snap, k) for k in ("fingerprint", "mode", "backend", "audio", "audio_sha256",
                                                  "config_sha256", "created")} | {"commit": commit})


def _check_format(db: sqlite3.Connection, path: Path, create: bool) -> None:
    """Refuse a database that is not ours (InputError); with `create`, set up an empty one."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables and create:
        for statement in filter(str.strip, SCHEMA.split(";")):  # not executescript: it would commit
            db.execute(statement)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), ("version", str(VERSION))])
        return
    if "meta" not in tables or "runs" not in tables:
        raise InputError(path, f"{NOT_A_STORE} (a database with the tables {', '.join(sorted(tables)) or 'none'})",
                         FIX)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if meta.get("format") != FORMAT:
        raise InputError(path, f"{NOT_A_STORE} (format {meta.get('format')!r})", FIX)
    if meta.get("version") != str(VERSION):
        raise InputError(path, f"history store version {meta.get('version')}, this synctalk-parity reads version "
                         f"{VERSION}", "use the synctalk-parity version that wrote it")


@contextmanager
def _connect(path: Path, write: bool) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (transactions are explicit): read-write (the file created when
    missing), or read-only through a ``mode=ro`` URI. Errors of SQLite on a foreign file: InputError."""
    if write:
        if path.is_dir():
            raise InputError(path, "is a folder, not a history store file", "give a file path with --store")
        path.parent.mkdir(parents=True, exist_ok=True)
        target, uri = str(path), False
    else:
        if not path.is_file():
            raise InputError(path, "history store not found", "file runs into it with `synctalk-parity history add`")
        target, uri = path.resolve().as_uri() + "?mode=ro", True
    try:
        with closing(sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri)) as db:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            yield db
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise InputError(path, f"the history store stayed locked for {BUSY_TIMEOUT_S:g} s by another writer",
                             "run the command again when the other one has finished") from None
        raise InputError(path, f"{NOT_A_STORE} ({exc})", FIX) from None


def add_results(path: Path, documents: list[tuple[Path, dict]], commit: Commit) -> Added:
    """File every run of `documents` (each (its file, the document read with `read_results`)) under
    `commit`, in one transaction: all or nothing."""
    rows = []
    added_at = datetime.now(timezone.utc).isoformat()
    for source, results in documents:
        for snap in snapshots(results):
            rows.append({"run_key": run_key(snap, commit.sha), "commit_sha": commit.sha, "commit_time": commit.time,
                         "branch": commit.branch, **{name: getattr(snap, name) for name in SHARED},
                         "created": snap.created or added_at, "added": added_at, "source": str(source),
                         "snapshot": json.dumps(snap.to_json())})  # inf and NaN as JSON's, read back as floats
    filed = [column for column in COLUMNS if column != "id"]
    with _connect(path, write=True) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            _check_format(db, path, create=True)
            before = db.total_changes
            db.executemany(f"INSERT OR IGNORE INTO runs ({', '.join(filed)}) VALUES ({', '.join('?' * len(filed))})",
                           [[row[column] for column in filed] for row in rows])
            added = db.total_changes - before
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return Added(added, len(rows) - added)


class _Any:
    """The default of a `load_runs` filter: any value."""

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
FILTERS = {"branch": "branch", "commit": "commit_sha", "fingerprint": "fingerprint", "machine": "machine",
           "mode": "mode", "backend": "backend", "audio_sha256": "audio_sha256"}  # keyword -> column


def load_runs(path: Path, *, branch: str | None = ANY, commit: str = ANY, fingerprint: str = ANY,
              machine: str | None = ANY, mode: str = ANY, backend: str = ANY, audio_sha256: str | None = ANY,
              started_before: str | None = None) -> list[Snapshot]:
    """The stored runs, oldest commit first, each with its commit, branch and filing (`Snapshot`); with
    a filter given, only the runs whose column is that value (None: runs without one, e.g. no branch),
    and with `started_before`, only the runs started before that time (ISO 8601, as results files write it)."""
    given = dict(branch=branch, commit=commit, fingerprint=fingerprint, machine=machine, mode=mode, backend=backend,
                 audio_sha256=audio_sha256)
    where = [(f"{FILTERS[name]} IS ?", value) for name, value in given.items() if value is not ANY]
    if started_before is not None:
        where.append(("created < ?", started_before))
    query = (f"SELECT {', '.join(COLUMNS)} FROM runs "
             f"{'WHERE ' + ' AND '.join(clause for clause, _ in where) if where else ''} "
             "ORDER BY commit_time IS NULL, commit_time, created, id")
    with _connect(path, write=False) as db:
        _check_format(db, path, create=False)
        rows = db.execute(query, [value for _, value in where]).fetchall()
    return [_snapshot(dict(zip(COLUMNS, row))) for row in rows]


def _snapshot(columns: dict) -> Snapshot:
    """A stored run: its snapshot, with the store's columns (the start time a run without one was filed
    under, its commit, branch and filing) over it."""
    shared = {name: columns[name] for name in SHARED} | {"created": columns["created"]}
    return Snapshot.from_json(json.loads(columns["snapshot"]) | shared, store_id=columns["id"], added=columns["added"],
                              source=columns["source"],
                              commit=Commit(columns["commit_sha"], columns["commit_time"], columns["branch"]))


def on_branch(path: Path, branch: str | None, snap: Snapshot, started_before: str | None = None) -> list[Snapshot]:
    """Every run filed on `branch` with the machine fingerprint, mode, backend and audio of `snap` (started
    before `started_before`, when given), by start time: the last is the baseline `gate --against
    branch:NAME` takes."""
    found = load_runs(path, branch=branch, fingerprint=snap.fingerprint, mode=snap.mode, backend=snap.backend,
                      audio_sha256=snap.audio_sha256, started_before=started_before)
    return sorted(found, key=lambda r: (r.created, r.store_id))
