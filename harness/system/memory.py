"""Giving memory back to the operating system between the runs of a parity run."""
from __future__ import annotations

import ctypes
import gc
import sys


def _malloc_trim():
    """glibc's ``malloc_trim``, or None (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Collect reference cycles (a models object and its precision variants form one) and hand the C
    heap's free pages back to the OS: without it the memory arenas of closed ONNX Runtime sessions stay
    in the process's resident set, and the next run's sessions come on top of them."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
