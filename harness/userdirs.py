"""Per-user folders: the cache (built fixtures, numba's compiled kernels) and crash logs."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """$SYNCTALK_PARITY_CACHE, else $XDG_CACHE_HOME/synctalk-parity, else ~/.cache/synctalk-parity."""
    if os.environ.get("SYNCTALK_PARITY_CACHE"):
        return Path(os.environ["SYNCTALK_PARITY_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "synctalk-parity"


def writable_dir(name: str) -> Path:
    """``cache_dir()/name``, created; the system's temporary folder's ``synctalk-parity-<name>`` when the
    cache cannot be written (a read-only home)."""
    for folder in (cache_dir() / name, Path(tempfile.gettempdir()) / f"synctalk-parity-{name}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix=f"synctalk-parity-{name}-"))
