"""Provenance of a run: file hashes, library versions, and the per-user cache folder.

A neutral module: the reference, the harness and the fixture builders all import it, and it
imports nothing of theirs.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Callable

LIBRARIES = ("numpy", "onnxruntime", "opencv-python-headless", "soundfile", "soxr", "scipy")


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that decide the numbers ("absent" when not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def cache_dir() -> Path:
    """$SYNCTALK_PARITY_CACHE, else $XDG_CACHE_HOME/synctalk-parity, else ~/.cache/synctalk-parity."""
    if os.environ.get("SYNCTALK_PARITY_CACHE"):
        return Path(os.environ["SYNCTALK_PARITY_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "synctalk-parity"


def cached(folder: Path, build: Callable[[Path], object]) -> Path:
    """Return `folder`, building it first (into a temporary sibling, then renamed) when absent."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build(tmp)
        tmp.rename(folder)
    except OSError:  # built meanwhile by another process
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.is_dir():
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
