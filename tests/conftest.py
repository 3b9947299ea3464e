"""Shared fixtures: the real Sanders data when present (required under CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.locate import shared_data_dir
from harness.plugin import PLATFORM_SKIP

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """Tests never write into the user's ~/.cache: built fixtures go to a session folder."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["SYNCTALK_PARITY_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """Tiny synthetic models, seed 0 (the committed golden's)."""
    from fixtures.models import build_models
    out = tmp_path_factory.mktemp("tiny-models")
    build_models(out, "tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def synthetic_pack(tmp_path_factory) -> Path:
    """A 12-frame synthetic pack with its audio.wav, seed 0 (the committed golden's)."""
    from fixtures.pack import build_pack
    return build_pack(tmp_path_factory.mktemp("pack") / "pack", frames=12, seed=0)


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


@pytest.fixture(scope="session")
def go_ports() -> Path:
    """The real Go ports, built (cached) by ../shared/ports/build-go-ports: the folder holding bin/ and
    lib/ (see tests/go_ports.py). Skipped locally without ../shared/ports, a failure in CI."""
    from go_ports import build_go_ports, ports_dir
    if ports_dir() is None:
        message = "Go ports not found: place ../shared/ports (with build-go-ports) beside the project"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return build_go_ports()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure, unless its reason starts with "not on this platform"."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if PLATFORM_SKIP not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped under CI (nothing may be skipped silently): {reason}"


@pytest.fixture(scope="module")
def models(tiny_models_dir):
    """The tiny synthetic models in one ONNX Runtime thread (for tests that do not define their own)."""
    from reference.models import ModelFiles, Models
    return Models(ModelFiles.from_dir(tiny_models_dir), threads=1)


@pytest.fixture(scope="module")
def pack(synthetic_pack):
    """The synthetic pack as a template source (for tests that do not define their own)."""
    from reference.data import Pack
    return Pack(synthetic_pack)
