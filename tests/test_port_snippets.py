"""The snippets of the port authors' guide (docs/ports.md): the Go one is compiled and run as a
subprocess port, whose dump and timing lines the harness must read; the Swift one is parsed where
a Swift toolchain exists. Both must appear in the guide as they are in docs/snippets/."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import RunInputs
from harness.backends.subprocess_port import SubprocessBackend, preset_options
from ci import need
from harness.plugin import PLATFORM_SKIP

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = ROOT / "docs" / "snippets"
GUIDE = ROOT / "docs" / "ports.md"
N = 3


def go_toolchain() -> str | None:
    """`go` on PATH, else the one build-go-ports installs into its cache folder."""
    found = shutil.which("go")
    if found:
        return found
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    installed = sorted(glob.glob(str(base / "synctalk-parity/go-ports/go-venv/lib/python3*/site-packages/go/bin/go")))
    return installed[0] if installed else None


@pytest.fixture(scope="module")
def go_port(tmp_path_factory) -> Path:
    """docs/snippets/dump.go built into a temporary folder (its own Go build cache there too)."""
    go = go_toolchain()
    if go is None:
        need("no Go toolchain: put `go` on PATH or run ../shared/ports/build-go-ports "
             "(which installs one), to compile docs/snippets/dump.go")
    out = tmp_path_factory.mktemp("go-snippet")
    env = {**os.environ, "GOCACHE": str(out / "gocache"), "GOPATH": str(out / "gopath"), "GOTOOLCHAIN": "local",
           "GOFLAGS": "", "CGO_ENABLED": "0"}
    done = subprocess.run([go, "build", "-o", str(out / "dump"), str(SNIPPETS / "dump.go")], env=env,
                          cwd=out, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"go build docs/snippets/dump.go failed:\n{done.stderr}"
    return out / "dump"


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    from fixtures.pack import build_pack
    return build_pack(tmp_path_factory.mktemp("snippet-pack") / "pack", frames=N, seed=0)


def test_the_go_snippet_runs_as_a_port_whose_dump_and_timings_the_harness_reads(go_port, pack, tmp_path):
    import cv2
    backend = SubprocessBackend("go_snippet", preset_options(str(go_port)))
    run = backend.run(RunInputs(source=pack, source_kind="pack", audio=pack / "audio.wav",
                                models=pack / "models", frames=N, workdir=tmp_path))
    frames = list(run.frames)
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame, cv2.imread(str(pack / "full_body_img" / f"{i + 1}.jpg")))
    stages = run.stages()
    assert list(stages) == ["audio_windows"]
    # frame i's window holds i + j / 8192 at flat position j (the snippet's stand-in values)
    expected = np.arange(N, dtype=np.float32)[:, None] + np.arange(32 * 16 * 16, dtype=np.float32) / 8192
    np.testing.assert_array_equal(stages["audio_windows"], expected.reshape(N, 32, 16, 16))
    assert run.timings["stage_counts"] == {"frame": N}
    assert len(run.timings["frame_latency"]) == N
    assert 0 < sum(run.timings["frame_latency"]) <= run.timings["total"]


@pytest.mark.parametrize("snippet", ["dump.swift", "coreml.swift"])
def test_the_swift_snippets_parse(snippet):
    swiftc = shutil.which("swiftc")
    if swiftc is None:
        pytest.skip(f"{PLATFORM_SKIP}: no swiftc on PATH; docs/snippets/{snippet} is shown only")
    done = subprocess.run([swiftc, "-parse", str(SNIPPETS / snippet)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr


def _functions(source: str, names: tuple[str, ...]) -> list[str]:
    """The text of each named function, from its `func` line to its closing brace at column 0."""
    out = []
    for name in names:
        match = re.search(rf"^func {name}\b.*?^}}$", source, re.MULTILINE | re.DOTALL)
        assert match, f"no function {name}"
        out.append(match.group(0))
    return out


@pytest.mark.parametrize("snippet, names", [("dump.go", ("writeDump", "printTiming")),
                                             ("dump.swift", ("writeDump", "printTiming")),
                                             ("coreml.swift", ("loadModel", "generate"))])
def test_the_guide_shows_the_tested_snippets(snippet, names):
    guide = GUIDE.read_text()
    for function in _functions((SNIPPETS / snippet).read_text(), names):
        assert function in guide, f"docs/ports.md does not show {snippet}'s\n{function}"
