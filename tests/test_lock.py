"""requirements.lock (what the README's install and CI use) agrees with pyproject.toml's ranges."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def locked() -> list[tuple[Requirement, list[str]]]:
    """Each pin of the lock with its hashes (the pins whose marker holds anywhere, all of them)."""
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, *hashes = line.split("--hash=")
        pins.append((Requirement(spec.strip()), [h.strip() for h in hashes]))
    return pins


def declared_here() -> list[Requirement]:
    """pyproject.toml's runtime and test dependencies whose marker holds on this Python and platform."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def test_every_pin_is_exact_and_hashed():
    pins = locked()
    assert len(pins) > 50
    for req, hashes in pins:
        assert re.fullmatch(r"==[^,*]+", str(req.specifier)), f"{req} is not pinned to one version"
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{req.name} has no hash"


@pytest.mark.parametrize("req", declared_here(), ids=str)
def test_every_dependency_is_locked_within_its_range(req):
    """A declared dependency has exactly one pin for this Python and platform, and the pinned version
    is inside pyproject's range (edit one, refresh the other)."""
    pins = [pin for pin, _ in locked() if canonicalize_name(pin.name) == canonicalize_name(req.name)
            and (pin.marker is None or pin.marker.evaluate())]
    assert len(pins) == 1, f"{req.name}: {len(pins)} pins for this Python in requirements.lock; refresh the lock"
    version = next(iter(pins[0].specifier)).version
    assert req.specifier.contains(version, prereleases=True), (
        f"requirements.lock pins {req.name}=={version}, outside pyproject.toml's {req.specifier}; refresh the lock")
