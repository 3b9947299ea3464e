"""Files and folders that appear whole or not at all.

- `write_atomic`: a file written into a unique temporary sibling, then renamed over its path;
- `building`: a temporary sibling folder to build in before a rename; `cached`: a folder built
  once that way (a concurrent builder's folder wins);
- `swap_paths`: two paths exchanged in one step (Linux ``renameat2(RENAME_EXCHANGE)``, macOS
  ``renamex_np(RENAME_SWAP)``), to replace a folder such as a golden without any moment in which
  it does not exist.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # Linux
_RENAME_SWAP = 2  # macOS
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def swap_paths(a: str | Path, b: str | Path) -> bool:
    """Exchange `a` and `b` atomically; False where the platform or file system cannot (then nothing
    changed). OSError for any other failure."""
    try:
        libc = _libc()
        if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
            rc = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
            rc = libc.renamex_np(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
        else:
            return False
    except OSError:  # no C library to load
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` whole or not at all: into a unique temporary file in the same folder,
    then renamed over `path` (a reader sees the old file or the new one, never a part)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def building(target: Path) -> Iterator[Path]:
    """A fresh temporary folder beside `target` (named ``.<target name>.<random>``, so that a listing
    can tell it from finished entries) to build in before renaming it to `target`; removed on the way
    out, whatever happens."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached(folder: Path, build: Callable[[Path], object]) -> Path:
    """Return `folder`, building it first (in `building`'s temporary folder, then renamed) when absent."""
    if folder.is_dir():
        return folder
    with building(folder) as tmp:
        try:
            build(tmp)
            tmp.rename(folder)
        except OSError:  # built meanwhile by another process
            if not folder.is_dir():
                raise
    return folder
