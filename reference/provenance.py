"""Provenance of a run: file hashes, model identities, library versions, and the per-user cache folder.

A neutral module: the reference, the harness and the fixture builders all import it, and it
imports nothing of theirs (but `errors`).

A model's identity is its graph and every external data file the graph names (`model_sha256`): the
PyTorch dynamo exporter writes the weights beside the graph (`generator.onnx.data`), and a hash of the
graph alone would not see them change.
"""
from __future__ import annotations

import functools
import hashlib
import mmap
import os
import platform
import posixpath
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from reference.errors import InputError

if TYPE_CHECKING:  # onnx is imported only for a graph that names external data (1 s of import)
    import onnx

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


EXPORT_FIX = "keep the .onnx and the data files its exporter wrote beside it together, or export again"


def _node_tensors(nodes) -> Iterator[onnx.TensorProto]:
    """Every tensor held in the attributes of `nodes` (Constant values, sparse ones, subgraphs')."""
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            sparse = ([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []) + list(attr.sparse_tensors)
            for tensor in sparse:
                yield from (tensor.values, tensor.indices)
            for graph in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _graph_tensors(graph)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of `graph`: initializers, sparse initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    yield from _node_tensors(graph.node)


def _mentions_location(path: Path) -> bool:
    """Whether the bytes ``location`` occur in the file: every external data entry has that key, so a
    graph without them names no external data and is never parsed (a search, not a parse: 48 MB in
    about 10 ms)."""
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return view.find(b"location") >= 0


@functools.lru_cache(maxsize=64)
def _external_needs(path: str, size: int, mtime_ns: int) -> tuple[tuple[str, int], ...]:
    """(location as named, bytes the tensors read from it at least) of each external data file the graph
    at `path` names, sorted; cached per (path, size, mtime_ns), so the sessions of one model parse it once."""
    if not _mentions_location(Path(path)):
        return ()
    import onnx
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX files
        raise InputError(path, f"not an ONNX model ({exc.__class__.__name__})", "give a .onnx file") from exc
    needs: dict[str, int] = {}
    tensors = [*_graph_tensors(model.graph), *(t for f in model.functions for t in _node_tensors(f.node))]
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        if "location" not in info:
            raise InputError(path, f"tensor {tensor.name!r} is stored externally but names no file", EXPORT_FIX)
        try:
            end = int(info.get("offset") or 0) + int(info.get("length") or 0)
        except ValueError:
            raise InputError(path, f"tensor {tensor.name!r} has a malformed external data offset or length",
                             EXPORT_FIX) from None
        needs[info["location"]] = max(needs.get(info["location"], 0), end)
    return tuple(sorted(needs.items()))


def _relative(model: Path, location: str) -> str:
    """An external data location as a path relative to the model's folder; InputError for one outside it."""
    name = posixpath.normpath(location.replace("\\", "/"))
    if posixpath.isabs(name) or (len(name) > 1 and name[1] == ":") or name == ".." or name.startswith("../"):
        raise InputError(model, f"names external data {location!r} outside its folder",
                         "keep the data files in the model's folder (the exporter's default) and export again")
    return name


def model_files(path: str | Path) -> list[Path]:
    """The files of the ONNX model at `path`: the graph, then every external data file it names (sorted,
    once each, in the graph's folder). InputError naming the file when one is missing or shorter than
    the offset + length a tensor reads from it, or when a location leaves the folder."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise InputError(path, "model file not found", "give the path of a .onnx file") from None
    files = [path]
    for location, end in _external_needs(str(path), stat.st_size, stat.st_mtime_ns):
        data = path.parent / _relative(path, location)
        try:
            size = data.stat().st_size
        except OSError:
            raise InputError(data, f"external data of {path.name} not found", EXPORT_FIX) from None
        if size < end:
            raise InputError(data, f"truncated: {size} bytes, and {path.name} reads up to byte {end}", EXPORT_FIX)
        files.append(data)
    return files


def model_file_hashes(path: str | Path) -> dict[str, str]:
    """sha256 of each file of the model at `path` (`model_files`) by its name relative to the model's folder."""
    path = Path(path)
    return {p.relative_to(path.parent).as_posix(): sha256(p) for p in model_files(path)}


def model_identity(hashes: dict[str, str], graph: str) -> str:
    """The identity of a model from its `model_file_hashes` (`graph`: the graph file's name). A graph
    that names no external data: the sha256 of that file. Otherwise one sha256 over the graph's sha256
    and each external file's relative name and sha256, so that changing a byte of any of them, or
    renaming a data file, changes it (the graph's own name is not part of it)."""
    if set(hashes) == {graph}:
        return hashes[graph]
    digest = hashlib.sha256(hashes[graph].encode())
    for name in sorted(set(hashes) - {graph}):
        digest.update(b"\0" + name.encode() + b"\0" + hashes[name].encode())
    return digest.hexdigest()


def model_sha256(path: str | Path) -> str:
    """The identity of the ONNX model at `path`: its graph and every external data file it names
    (`model_identity`); equal to `sha256(path)` for a model without external data."""
    return model_identity(model_file_hashes(path), Path(path).name)


def file_changes(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """What differs between two `model_file_hashes`, in words ("generator.onnx.data changed")."""
    changed = [f"{name} changed" for name in recorded if name in now and now[name] != recorded[name]]
    gone = [f"{name} is no longer named" for name in recorded if name not in now]
    return changed + gone + [f"{name} is new" for name in now if name not in recorded]


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


