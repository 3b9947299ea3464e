"""What CI means for the tests: `CI` set to anything but empty, 0, false, no or off."""
from __future__ import annotations

import os

import pytest

_OFF = {"", "0", "false", "no", "off"}


def in_ci() -> bool:
    """True under CI (`CI=true`, `CI=1`, ...); `CI=false` or `CI=0` is not CI."""
    return os.environ.get("CI", "").strip().lower() not in _OFF


def need(message: str) -> None:
    """A missing prerequisite: a failure under CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
