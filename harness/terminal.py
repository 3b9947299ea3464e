"""Console output that suits both a person at a terminal and a CI log.

Progress bars are drawn only when stderr is a terminal (``--progress``/``--no-progress`` force
them on or off); verdicts are coloured only when stdout is a terminal and ``NO_COLOR`` is unset.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

COLOURS = {"PASSED": "32", "FAILED": "31", "ERROR": "31;1", "SKIPPED": "33"}  # ANSI SGR codes


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress_enabled(flag: bool | None = None, stream: TextIO | None = None) -> bool:
    """`flag` when given (--progress / --no-progress), else whether `stream` (stderr) is a terminal."""
    return flag if flag is not None else _isatty(stream if stream is not None else sys.stderr)


def add_progress_args(p: argparse.ArgumentParser) -> None:
    """A command's --progress / --no-progress and --quiet."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when stderr is a terminal, never in a CI log)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (same as --no-progress)")


def progress_wanted(args: argparse.Namespace) -> bool:
    """Whether a command given `add_progress_args`' options draws progress bars."""
    return False if getattr(args, "quiet", False) else progress_enabled(getattr(args, "progress", None))


def colour_enabled(stream: TextIO | None = None) -> bool:
    """Colour on a terminal (stdout by default) unless $NO_COLOR is set or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream if stream is not None else sys.stdout)


def paint(word: str, enabled: bool) -> str:
    """A verdict word (PASSED, FAILED, ERROR, SKIPPED) in its colour when `enabled`."""
    code = COLOURS.get(word)
    return f"\033[{code}m{word}\033[0m" if enabled and code else word
