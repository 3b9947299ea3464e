"""Errors raised for bad input: each message names the file and what to do about it."""
from __future__ import annotations

from pathlib import Path


class ParityError(Exception):
    """Base class of the errors the command line reports without a traceback."""

    exit_code = 2


class InputError(ParityError):
    """A file given by the user is missing, unreadable or malformed."""

    def __init__(self, path: str | Path, problem: str, fix: str = "") -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        text = f"{self.path}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)
