"""An unexpected exception in a command: one line on stderr, the traceback in a log file, exit 3."""
from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from harness.system.userdirs import writable_dir

CRASH_EXIT = 3


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception (the type alone when the message is empty), on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def write_crash_log(command: str, argv: list[str], exc: BaseException) -> Path:
    """Write the command line and the traceback of `exc` to a new log file; return its path."""
    folder = writable_dir("logs")
    path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{command}.log"
    lines = [f"synctalk-parity {command} crashed", f"argv: {argv!r}", f"python: {sys.version}", ""]
    path.write_text("\n".join(lines) + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return path


def report_crash(command: str, argv: list[str], exc: BaseException) -> int:
    """Print one line naming what failed and where the traceback is; the exit code (3)."""
    try:
        where = f"traceback in {write_crash_log(command, argv, exc)}"
    except OSError as log_error:  # not even a temporary folder: the traceback goes to stderr
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        where = f"could not write a log ({describe(log_error)}); traceback above"
    print(f"error: {command} failed unexpectedly: {describe(exc)} ({where})", file=sys.stderr)
    return CRASH_EXIT
