"""Provenance of a run: file hashes, library versions, and the per-user cache folder.

A neutral module: the reference, the harness and the fixture builders all import it, and it
imports nothing of theirs.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

LIBRARIES = ("numpy", "onnxruntime", "opencv-python-headless", "soundfile", "soxr", "scipy")

# Instruction-set extensions that change which kernels ONNX Runtime, OpenCV and NumPy run (and so
# the last bits of their results): x86 flags of /proc/cpuinfo, Arm features of /proc/cpuinfo or
# macOS's hw.optional.arm.FEAT_* names.
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
             "asimd", "asimdhp", "asimddp", "sve", "sve2", "i8mm", "bf16", "fphp",
             "FEAT_FP16", "FEAT_DotProd", "FEAT_BF16", "FEAT_I8MM", "FEAT_SME")


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that decide the numbers ("absent" when not installed)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _cpuinfo() -> tuple[str, set[str]]:
    """Linux: the CPU's model name and its flags (x86 "flags", Arm "Features")."""
    name, flags = "", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name, flags


def _sysctl(*names: str) -> dict[str, str]:
    """macOS: sysctl values by name (missing ones left out)."""
    try:
        done = subprocess.run(["sysctl", *names], capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in done.stdout.splitlines()) if v}


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC 9B14", "Apple M1 Pro"), else the architecture."""
    name, _ = _cpuinfo()
    if not name and platform.system() == "Darwin":
        name = _sysctl("machdep.cpu.brand_string").get("machdep.cpu.brand_string", "")
    return name or platform.processor() or platform.machine()


def cpu_fingerprint() -> dict:
    """What of the CPU can change the numbers: architecture, model name and the instruction-set
    extensions of ISA_FLAGS it has. Two machines with equal fingerprints run the same kernels."""
    _, flags = _cpuinfo()
    if not flags and platform.system() == "Darwin":
        features = _sysctl(*(f"hw.optional.arm.{f}" for f in ISA_FLAGS if f.startswith("FEAT_")))
        flags = {k.rsplit(".", 1)[1] for k, v in features.items() if v == "1"}
    return {"arch": platform.machine(), "model": cpu_name(), "isa": sorted(f for f in ISA_FLAGS if f in flags)}


def cache_dir() -> Path:
    """$SYNCTALK_PARITY_CACHE, else $XDG_CACHE_HOME/synctalk-parity, else ~/.cache/synctalk-parity."""
    if os.environ.get("SYNCTALK_PARITY_CACHE"):
        return Path(os.environ["SYNCTALK_PARITY_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "synctalk-parity"


