"""Per-user folders: the cache (built fixtures, numba's compiled kernels) and crash logs."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reference.provenance import cache_dir

__all__ = ["cache_dir", "writable_dir"]


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
