"""The two real Go ports of ../shared/ports (simple_inference_go, go_optimized): their build and
their subprocess-backend options, as a parity.toml's [backends.NAME] tables would hold them."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

BUILD_SCRIPT = "build-go-ports"
_REPO_ROOT = Path(__file__).resolve().parents[1]


def ports_dir() -> Path | None:
    """../shared/ports beside the project (or beside the working directory), None when absent."""
    for path in (_REPO_ROOT.parent / "shared" / "ports", Path.cwd().parent / "shared" / "ports"):
        if (path / BUILD_SCRIPT).is_file():
            return path.resolve()
    return None


@functools.lru_cache(maxsize=None)
def build_go_ports() -> Path:
    """Build both ports with ../shared/ports/build-go-ports (its default cache folder, ONNX Runtime
    from this Python's onnxruntime package) and return the folder holding bin/ and lib/.

    The script does nothing when the build is current (a fraction of a second), and the result is
    also cached for this process. RuntimeError with the script's output when it fails."""
    ports = ports_dir()
    if ports is None:
        raise FileNotFoundError("../shared/ports (with build-go-ports) not found beside the project")
    done = subprocess.run([str(ports / BUILD_SCRIPT)], env={**os.environ, "PYTHON": sys.executable},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} exited with code {done.returncode}:\n{done.stderr[-4000:]}")
    folder = Path(done.stdout.strip().splitlines()[-1])
    for binary in ("simple_inference_go", "go_optimized"):
        if not os.access(folder / "bin" / binary, os.X_OK):
            raise RuntimeError(f"{BUILD_SCRIPT} printed {folder}, which has no executable bin/{binary}")
    return folder


def go_port_options(folder: Path) -> dict[str, dict]:
    """Backend option tables for both ports built into `folder`, keyed by the port's name.

    The ports read PACK/models/*.onnx and go_optimized writes PACK/cache/go_tensors/, so both get
    ``private_pack``; simple_inference_go's generator audio inputs of frames 1-5 land as
    ``debug_audio_go_frame<i>.bin`` in the output folder's parent (``filepath.Join(output, "..")``).
    """
    folder = Path(folder)
    common = {"kind": "subprocess", "env": {"LD_LIBRARY_PATH": str(folder / "lib")}, "private_pack": True,
              "output_pattern": "frame_%05d.jpg", "index_base": 1}
    args = ["-sanders", "{pack}", "-audio", "{audio}", "-output", "{output}", "-frames", "{frames}"]
    return {
        "simple_inference_go": {
            **common,
            "command": [str(folder / "bin" / "simple_inference_go"), *args],
            "stage_dumps": {"audio_windows": {"pattern": "{output}/../debug_audio_go_frame%d.bin",
                                              "format": "f32le", "shape": [32, 16, 16], "index_base": 1}},
        },
        "go_optimized": {
            **common,
            "command": [str(folder / "bin" / "go_optimized"), *args, "-batch", "1"],  # the synthetic generator has batch 1
        },
    }
