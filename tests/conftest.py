"""Shared fixtures: the real Sanders data when present (required under CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci import in_ci, need
from fixtures.locate import shared_data_dir
from harness.plugin import PLATFORM_SKIP

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """Tests never write into the user's ~/.cache: built fixtures go to a session folder, one for all
    the workers of a pytest-xdist run (every cache entry is built aside and renamed into place, so
    workers that build the same entry at once keep one)."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "cache"
    path.mkdir(exist_ok=True)
    os.environ["SYNCTALK_PARITY_CACHE"] = str(path)
    return path


def pytest_configure(config: pytest.Config) -> None:
    """A pytest-xdist worker, and every process it starts, sizes its engines to its share of the cores
    (`$SYNCTALK_PARITY_CORES`, the cores over the workers): two workers each running two-thread ONNX
    Runtime sessions on two cores spend a third more CPU per generator call. Not outside xdist,
    nor where the variable is set already."""
    from reference.models import CORES_ENV, available_cores
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if os.environ.get("PYTEST_XDIST_WORKER") and count > 1 and not os.environ.get(CORES_ENV):
        os.environ[CORES_ENV] = str(max(1, available_cores() // count))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `long` (a module's `pytestmark`) first, each file's tests kept together and in
    order: pytest-xdist then starts the longest files first and fills the end with short ones, so
    that no worker is left running one long file alone while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


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
        need("real data not found: set SYNCTALK_PARITY_DATA or place ../shared/data beside the project")
    return path


@pytest.fixture(scope="session")
def go_ports() -> Path:
    """The real Go ports, built (cached) by ../shared/ports/build-go-ports: the folder holding bin/ and
    lib/ (see tests/go_ports.py). Skipped locally without ../shared/ports, a failure in CI."""
    from go_ports import build_go_ports, ports_dir
    if ports_dir() is None:
        need("Go ports not found: place ../shared/ports (with build-go-ports) beside the project")
    return build_go_ports()


def _skip_reason(report) -> str:
    return str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skip is a failure, unless its reason starts with "not on this platform"."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if PLATFORM_SKIP not in reason:
            report.outcome = "failed"
            report.longrepr = f"skipped under CI (nothing may be skipped silently): {reason}"


class SkippedAtCollection(pytest.Item):
    """Stands for a module (or class) that skipped itself while being collected under CI: it fails
    with the skip's reason, and the rest of the run goes on."""

    def __init__(self, *, reason: str, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason

    def runtest(self) -> None:
        pytest.fail(f"skipped at collection under CI (nothing may be skipped silently): {self.reason}",
                     pytrace=False)

    def reportinfo(self):
        return self.path, None, f"{self.name}: {self.reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Under CI a module-level skip or `importorskip` becomes one failing test instead of a skip."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        reason = _skip_reason(report)
        if PLATFORM_SKIP not in reason:
            item = SkippedAtCollection.from_parent(collector, name="skipped-at-collection", reason=reason)
            outcome.force_result(pytest.CollectReport(report.nodeid, "passed", None, [item]))


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


@pytest.fixture
def no_models(monkeypatch):
    """Loading any model fails the test (the image evidence works from frames, a pack and dumps alone)."""
    import onnxruntime

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded where the evidence must work without one")
    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
