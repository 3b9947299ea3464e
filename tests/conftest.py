"""Shared fixtures: the real Sanders data when present (required under CI=true)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.locate import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; a test needing it is skipped locally without it and fails in CI."""
    path = shared_data_dir()
    if path is None:
        message = "real data not found: set SYNCTALK_PARITY_DATA or place ../shared/data beside the project"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
