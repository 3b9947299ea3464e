"""The files a port leaves: numbered frames (printf patterns; read by `harness.backends.frame_files`) and
stage dumps, read and checked.

Shared by the `subprocess` backend (a port the harness runs) and the `frames` backend (a port that
ran elsewhere). A stage dump is described by a table (``pattern``, ``format`` "npy" or "f32le",
``shape``, ``index_base``: see `parse_dump`), found in the standard dump folder
(``<stage>/<row>.f32`` or ``.npy``, `harness.backends.dump_dir`), or, for a folder that travelled
back, recognised by name (`find_stage_dumps`): the reference's own ``<stage>.npy`` (``infer
--dump-stages``), the standard layout, and the seed ports' ``debug_audio_<name>_frame<k>.bin`` (the
generator's audio input, raw float32 32x16x16, k 1-based). Every array is checked: real, finite,
non-empty, of the declared shape; a fault is a `DumpError` naming the file.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from harness.backends import dump_dir
from reference.stages import STAGES

DUMP_KEYS = ("pattern", "format", "shape", "index_base")
DUMP_FORMATS = ("npy", "f32le")
SEED_AUDIO = re.compile(r"debug_audio_(.+)_frame([0-9]+)\.bin\Z")  # the seed ports' generator audio inputs
_PRINTF = re.compile(r"%(?:%|(0?)([0-9]*)d|.?)", re.DOTALL)  # "%%", an int conversion, or anything else


class DumpError(ValueError):
    """A stage dump is missing, malformed or stale; the message names the stage and the file."""


def printf_fields(pattern: str, where: str) -> int:
    """Number of integer conversions in a printf pattern (0 or 1); ValueError on anything else."""
    count = 0
    for match in _PRINTF.finditer(pattern):
        token = match.group(0)
        if token == "%%":
            continue
        if not token.endswith("d") or match.group(2) is None:
            raise ValueError(f"{where}: unsupported printf conversion {token!r} in {pattern!r}; "
                             "use %d, %5d or %05d (and %% for a literal %)")
        count += 1
    if count > 1:
        raise ValueError(f"{where}: {pattern!r} has {count} integer conversions; use one")
    return count


def printf_regex(pattern: str) -> re.Pattern:
    """A regex matching the names `pattern % n` produces, the number as group 1."""
    parts, pos = [], 0
    for match in _PRINTF.finditer(pattern):
        parts.append(re.escape(pattern[pos:match.start()]))
        parts.append("%" if match.group(0) == "%%" else r"(\d+)")
        pos = match.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts) + r"\Z")


def frame_pattern(pattern, where: str = "output_pattern") -> str:
    """A frame file name pattern, checked: a file name with exactly one printf integer conversion."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{where}: must be a non-empty string, got {pattern!r}")
    if "/" in pattern or "\\" in pattern:
        raise ValueError(f"{where}: {pattern!r} must be a file name; put folders elsewhere")
    if printf_fields(pattern, where) != 1:
        raise ValueError(f"{where}: {pattern!r} needs one integer conversion such as %05d")
    return pattern


def template_size(source: Path) -> tuple[int, int] | None:
    """(height, width) of the template frames, from ``full_body_img/1.jpg`` when it is there."""
    first = source / "full_body_img" / "1.jpg"
    if not first.is_file():
        return None
    img = cv2.imread(str(first), cv2.IMREAD_COLOR)
    return None if img is None else img.shape[:2]


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not one."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def index_base(value, where: str) -> int:
    if not is_int(value) or value not in (0, 1):
        raise ValueError(f"{where}: must be 0 or 1, got {value!r}")
    return value


def parse_dump(stage: str, spec, check_pattern: Callable[[str, str], None] | None = None) -> dict:
    """A stage dump table checked, with defaults: {"pattern", "format", "shape", "per_frame",
    "index_base"}; ValueError naming the key. `check_pattern(pattern, where)` checks placeholders."""
    where = f"stage_dumps.{stage}"
    if stage not in STAGES:
        raise ValueError(f"stage_dumps: unknown stage {stage!r}; known: {', '.join(STAGES)}")
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: must be a table with 'pattern', got {type(spec).__name__}")
    for key in spec:
        if key not in DUMP_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; known: {', '.join(DUMP_KEYS)}")
    pattern = spec.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{where}.pattern: must be a non-empty string, got {pattern!r}")
    if check_pattern is not None:
        check_pattern(pattern, f"{where}.pattern")
    per_frame = printf_fields(pattern, f"{where}.pattern") == 1
    fmt = spec.get("format", "npy")
    if fmt not in DUMP_FORMATS:
        raise ValueError(f"{where}.format: must be one of {', '.join(DUMP_FORMATS)}, got {fmt!r}")
    shape = spec.get("shape")
    if shape is not None:
        if not isinstance(shape, (list, tuple)) or not all(is_int(d) and (d > 0 or d == -1) for d in shape):
            raise ValueError(f"{where}.shape: must be a list of positive integers, got {shape!r}")
        if sum(d == -1 for d in shape) > (0 if (fmt == "f32le" and per_frame) else 1):
            raise ValueError(f"{where}.shape: too many -1 entries in {shape!r}")
        shape = tuple(shape)
    elif fmt == "f32le":
        raise ValueError(f"{where}.shape: required for format 'f32le'")
    return {"pattern": pattern, "format": fmt, "shape": shape, "per_frame": per_frame,
            "index_base": index_base(spec.get("index_base", 0), f"{where}.index_base")}


def _load_npy(stage: str, path: Path) -> np.ndarray:
    """A .npy file's array, read through a memory map so that a header claiming more data than the file
    holds (a truncated file) is an error, not a huge allocation."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(arr, np.ndarray):  # an .npz archive
            arr.close()
            raise ValueError("an .npz archive, not an .npy file")
        return np.array(arr)
    except (OSError, ValueError, EOFError, TypeError) as exc:
        raise DumpError(f"stage dump {stage}: {path} is not a readable .npy file: {exc}") from exc


def _checked(stage: str, path: Path, arr: np.ndarray) -> np.ndarray:
    """`arr` when it is a non-empty array of real numbers, all finite; DumpError naming the fault."""
    where = f"stage dump {stage}: {path}"
    if arr.dtype.kind not in "biuf":
        raise DumpError(f"{where} holds {arr.dtype} values, not real numbers")
    if arr.ndim == 0 or arr.size == 0:
        raise DumpError(f"{where} is empty or a scalar (shape {arr.shape})")
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise DumpError(f"{where} holds {bad} NaN or infinite values")
    return arr


def read_dump(stage: str, spec: dict, path: Path, not_before: float | None = None) -> np.ndarray:
    """One dump file as `spec` describes it ("format", "shape"), checked; with `not_before` (a time) a
    file last written before it is stale."""
    if not_before is not None and path.stat().st_mtime < not_before:
        raise DumpError(f"stage dump {stage}: {path} predates this run (stale file)")
    shape = spec["shape"]
    if spec["format"] == "f32le":
        size = path.stat().st_size
        known = math.prod(d for d in shape if d != -1) * 4
        if (-1 in shape and (size == 0 or size % known)) or (-1 not in shape and size != known):
            raise DumpError(f"stage dump {stage}: {path} has {size} bytes, expected "
                            f"{'a multiple of ' if -1 in shape else ''}{known} (float32 x {list(shape)})")
        return _checked(stage, path, np.fromfile(path, dtype="<f4").reshape(shape).astype(np.float32))
    arr = _load_npy(stage, path)
    if shape is not None and (len(arr.shape) != len(shape)
                              or any(d != -1 and d != a for d, a in zip(shape, arr.shape))):
        raise DumpError(f"stage dump {stage}: {path} has shape {arr.shape}, expected {list(shape)}")
    return _checked(stage, path, arr)


def read_spec(stage: str, spec: dict, path_of: Callable[[int | None], Path], frames: int,
              not_before: float | None = None) -> np.ndarray:
    """The dump a parsed table describes: a whole-array file (``path_of(None)``), or per-frame files
    ``path_of(index_base)``, ``path_of(index_base + 1)``, ... (at most `frames`, at least one), stacked."""
    if not spec["per_frame"]:
        path = path_of(None)
        if not path.is_file():
            raise DumpError(f"stage dump {stage}: {path} does not exist")
        return read_dump(stage, spec, path, not_before)
    arrays = []
    for index in range(spec["index_base"], spec["index_base"] + frames):
        path = path_of(index)
        if not path.is_file():
            if not arrays:
                raise DumpError(f"stage dump {stage}: first file {path} does not exist")
            break
        arrays.append(read_dump(stage, spec, path, not_before))
    first = arrays[0].shape
    for k, arr in enumerate(arrays):
        if arr.shape != first:
            raise DumpError(f"stage dump {stage}: {path_of(spec['index_base'] + k)} has shape {arr.shape}, "
                            f"the first file {first}")
    return np.stack(arrays)


def read_rows(stage: str, folder: Path, frames: int, not_before: float | None = None) -> np.ndarray:
    """The rows of `stage` in a standard dump folder (`harness.backends.dump_dir`), stacked."""
    try:
        files = dump_dir.row_files(folder, stage, frames)
    except ValueError as exc:
        raise DumpError(f"stage dump {stage}: {exc}") from None
    shape = dump_dir.ROW_SHAPES[stage]
    return np.stack([read_dump(stage, {"format": fmt, "shape": shape}, path, not_before) for path, fmt in files])


def find_stage_dumps(folder: Path, frames: int) -> dict[str, tuple[Path, Callable[[], np.ndarray]]]:
    """The stage dumps a travelled folder holds, recognised by name: stage -> (where, loader).

    Looked for in `folder`, then in a ``stage_dumps`` folder inside it: ``<stage>.npy`` (the
    reference's ``--dump-stages``), ``<stage>/<row>.f32|.npy`` (the standard layout); and, in
    `folder` and its parent, ``debug_audio_<name>_frame<k>.bin`` as ``audio_windows`` (k 1-based).
    The first place that has a stage wins. Loaders raise `DumpError`."""
    found: dict[str, tuple[Path, Callable[[], np.ndarray]]] = {}
    for root in (folder, folder / dump_dir.DUMP_FOLDER):
        if not root.is_dir():
            continue
        for stage in STAGES:
            whole = root / f"{stage}.npy"
            if stage not in found and whole.is_file():
                found[stage] = (whole, lambda s=stage, p=whole: read_dump(s, {"format": "npy", "shape": None}, p))
        for stage in dump_dir.stages_found(root):
            found.setdefault(stage, (root / stage, lambda s=stage, r=root: read_rows(s, r, frames)))
    if "audio_windows" not in found:
        for root in (folder, folder.parent):
            names = sorted({m.group(1) for p in root.glob("debug_audio_*_frame*.bin") if (m := SEED_AUDIO.match(p.name))})
            if names:
                pattern = f"debug_audio_{names[0]}_frame%d.bin"
                spec = {"pattern": pattern, "format": "f32le", "shape": (32, 16, 16), "per_frame": True, "index_base": 1}
                found["audio_windows"] = (root / pattern, lambda r=root, sp=spec: read_spec(
                    "audio_windows", sp, lambda k: r / (sp["pattern"] % k), frames))
                break
    return found
