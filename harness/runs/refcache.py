"""The reference computed once: its per-audio result kept in the user cache, keyed by everything it depends on.

An entry is ``cache_dir()/reference-cache/<key>/`` holding ``arrays.npz`` (face-rect patches, rects,
templates, mouth thumbnails, stage arrays), ``timings.json`` and ``manifest.json`` (the key, what it
was made of and the sha256 of both files). The key is the identity of the models (graph and every
external data file, `provenance.model_sha256`), the pack (tree hash),
the audio, the conventions, the frame count, the project version and the versions of the libraries
that decide numbers (`key_of`). An entry is written into a temporary sibling folder and renamed, so
a partial one is never seen; on read its manifest and hashes are checked and an entry that fails is
removed (a miss: the reference is recomputed). A read touches the manifest, and after a write the
least recently used entries are removed until the folder fits the cap, ``$SYNCTALK_PARITY_REFERENCE_CACHE_MB``
(default 2048 MB). Runs that need the same entry at once (pytest-xdist workers, two terminals) take
its lock (`lock`): one computes it, the others wait and read it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from reference.atomic import building
from reference.conventions import Conventions
from reference.provenance import cache_dir, sha256

FOLDER = "reference-cache"
CAP_ENV = "SYNCTALK_PARITY_REFERENCE_CACHE_MB"
DEFAULT_CAP_MB = 2048.0
FORMAT = 1
MANIFEST, ARRAYS, TIMINGS = "manifest.json", "arrays.npz", "timings.json"
LOCKS = ".locks"  # lock files, one per key, beside the entries
FIELDS = ("templates", "rects", "patches", "mouths", "stages", "timings")  # of `frame_stream.ReferenceFrames`
_STAGE = "stage:"  # prefix of a stage array's name in arrays.npz
_STALE_TMP_S = 3600.0  # a temporary folder older than this was left by a killed run


def root() -> Path:
    """The cache folder: ``cache_dir()/reference-cache``."""
    return cache_dir() / FOLDER


def cap_bytes() -> int:
    """The size cap in bytes, from $SYNCTALK_PARITY_REFERENCE_CACHE_MB (default 2048; an unusable value too)."""
    try:
        mb = float(os.environ.get(CAP_ENV, DEFAULT_CAP_MB))
    except ValueError:
        mb = DEFAULT_CAP_MB
    return int(max(mb, 0.0) * 1024 * 1024)


def project_version() -> str:
    """The installed synctalk-parity version ("unknown" when it is not installed)."""
    try:
        return metadata.version("synctalk-parity")
    except metadata.PackageNotFoundError:
        return "unknown"


def key_of(inputs: dict, audio_sha256: str, frames: int, libraries: dict,
           conventions: Conventions | None = None) -> str:
    """The key of one audio's reference: `inputs` is results.json's ``inputs`` (model identities and pack hash)."""
    doc = {"format": FORMAT, "version": project_version(), "libraries": libraries,
           "models": [inputs["models"]["audio_encoder"], inputs["models"]["generator"]],
           "source": [inputs["source"]["kind"], inputs["source"]["sha256"]], "audio": audio_sha256,
           "frames": int(frames), "conventions": asdict(conventions or Conventions())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _pack(fields: dict) -> dict[str, np.ndarray]:
    patches = fields["patches"]
    arrays = {"patches": np.concatenate([p.ravel() for p in patches]) if patches else np.zeros(0, np.uint8),
              "patch_shapes": np.array([p.shape for p in patches], np.int64).reshape(len(patches), -1),
              "templates": np.asarray(fields["templates"], np.int64), "rects": np.asarray(fields["rects"], np.int64),
              "mouths": np.asarray(fields["mouths"])}
    arrays.update({_STAGE + name: np.asarray(value) for name, value in fields["stages"].items()})
    return arrays


def _unpack(arrays: dict[str, np.ndarray], timings: dict) -> dict:
    flat, shapes = arrays["patches"], arrays["patch_shapes"]
    patches, pos = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        patches.append(flat[pos:pos + size].reshape(tuple(int(d) for d in shape)))
        pos += size
    if pos != flat.size or not len(shapes) == len(arrays["rects"]) == len(arrays["templates"]) == len(arrays["mouths"]):
        raise ValueError("arrays of different lengths")
    return {"templates": [int(t) for t in arrays["templates"]], "rects": [tuple(int(v) for v in r) for r in arrays["rects"]],
            "patches": patches, "mouths": arrays["mouths"], "timings": timings,
            "stages": {name[len(_STAGE):]: value for name, value in arrays.items() if name.startswith(_STAGE)}}


def load(key: str) -> dict | None:
    """The fields of `key`'s entry (templates, rects, patches, mouths, stages, timings); None on a miss.
    An entry whose manifest or hashes do not check out is removed (and is a miss)."""
    entry = root() / key
    if not entry.is_dir():
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or manifest.get("key") != key:
            raise ValueError("manifest of another entry")
        for name in (ARRAYS, TIMINGS):
            if sha256(entry / name) != manifest["files"][name]:
                raise ValueError(f"{name} does not match its hash")
        with np.load(entry / ARRAYS, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        fields = _unpack(arrays, json.loads((entry / TIMINGS).read_text()))
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        shutil.rmtree(entry, ignore_errors=True)
        return None
    os.utime(entry / MANIFEST)  # most recently used
    return fields


@contextlib.contextmanager
def lock(key: str):
    """Hold `key`'s lock (an exclusive ``flock`` on ``.locks/<key>``; it is released when the process
    ends, however it ends). Without a writable cache folder it holds nothing."""
    folder = root() / LOCKS
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / key, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def store(key: str, fields: dict) -> bool:
    """Write `key`'s entry (atomically: a temporary folder renamed), then evict down to the cap.
    False when it was not kept (larger than the cap, or the folder is not writable)."""
    folder = root()
    try:
        with building(folder / key) as tmp:
            np.savez(tmp / ARRAYS, **_pack(fields))
            (tmp / TIMINGS).write_text(json.dumps(fields["timings"], default=float))
            manifest = {"format": FORMAT, "key": key, "created": time.time(), "frames": len(fields["rects"]),
                        "files": {name: sha256(tmp / name) for name in (ARRAYS, TIMINGS)}}
            (tmp / MANIFEST).write_text(json.dumps(manifest))
            if _size(tmp) > cap_bytes():
                return False
            shutil.rmtree(folder / key, ignore_errors=True)  # a corrupt entry of the same key
            tmp.rename(folder / key)
    except OSError:  # not writable, written meanwhile by another run, or no space left
        return (folder / key / MANIFEST).is_file()
    evict(keep=key)
    return True


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def evict(keep: str | None = None) -> list[str]:
    """Remove the least recently used entries until the cache fits the cap (never `keep`), and temporary
    folders left by killed runs; the keys removed."""
    folder, now = root(), time.time()
    entries = []
    for entry in folder.iterdir() if folder.is_dir() else []:
        if entry.name == LOCKS:
            continue
        if entry.name.startswith("."):  # a temporary folder of `building`
            if now - entry.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(entry, ignore_errors=True)
            continue
        manifest = entry / MANIFEST
        used = manifest.stat().st_mtime if manifest.is_file() else 0.0
        entries.append((used, entry))
    entries.sort()
    total, cap, removed = sum(_size(e) for _, e in entries), cap_bytes(), []
    for _, entry in entries:
        if total <= cap:
            break
        if entry.name == keep:
            continue
        total -= _size(entry)
        shutil.rmtree(entry, ignore_errors=True)
        (folder / LOCKS / entry.name).unlink(missing_ok=True)  # at worst a waiting run computes it again
        removed.append(entry.name)
    return removed
