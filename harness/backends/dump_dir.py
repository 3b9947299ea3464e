"""The standard stage-dump folder of a subprocess port: stage dumps with no per-port config.

Before every run the harness makes ``workdir/stage_dumps`` anew (empty) and passes its absolute
path to the port in the environment variable ``SYNCTALK_PARITY_DUMP_DIR``. A port that writes

    $SYNCTALK_PARITY_DUMP_DIR/<stage>/<row>.f32   raw little-endian float32, no header
    $SYNCTALK_PARITY_DUMP_DIR/<stage>/<row>.npy   a NumPy array file

gets those stages compared with the reference's. ``<stage>`` is a name of ``base.STAGES``;
``<row>`` is the 0-based row of the stage's array, in decimal (``0.f32``, ``1.f32``, ...; leading
zeros allowed): frame i for the per-frame stages (``audio_windows/0.f32`` is the first frame,
whose image a preset port names ``frame_00001.jpg``), mel frame or encoder window k for ``mel``
and ``embeddings``. Each file holds one row of the shape in ``ROW_SHAPES``. Rows are read from 0
up to the first missing number, at most N (the run's frame count) for the per-frame stages, and
stacked into ``(rows, *ROW_SHAPES[stage])``. Other folders and files are ignored.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

DUMP_ENV = "SYNCTALK_PARITY_DUMP_DIR"
DUMP_FOLDER = "stage_dumps"  # inside the run's workdir
ROW_SHAPES = {
    "mel": (80,),
    "embeddings": (512,),
    "padded_features": (512,),
    "audio_windows": (32, 16, 16),
    "generator_outputs": (3, 320, 320),
}
FRAME_STAGES = ("padded_features", "audio_windows", "generator_outputs")  # one row per video frame
FORMATS = {".f32": "f32le", ".npy": "npy"}
_ROW_FILE = re.compile(r"([0-9]+)(\.f32|\.npy)\Z")


def prepare(workdir: Path) -> Path:
    """``workdir/stage_dumps``, made empty (whatever an earlier run left there is removed)."""
    folder = Path(workdir) / DUMP_FOLDER
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def stages_found(folder: Path) -> list[str]:
    """The stages of ``ROW_SHAPES`` that have a folder in `folder`, in pipeline order."""
    return [stage for stage in ROW_SHAPES if (Path(folder) / stage).is_dir()]


def row_files(folder: Path, stage: str, frames: int) -> list[tuple[Path, str]]:
    """(path, format) of rows 0, 1, ... of `stage` up to the first missing one (at most `frames`
    for a per-frame stage). ValueError when row 0 is missing or a row has two files."""
    rows: dict[int, list[Path]] = {}
    for path in (Path(folder) / stage).iterdir():
        match = _ROW_FILE.match(path.name)
        if match and path.is_file():
            rows.setdefault(int(match.group(1)), []).append(path)
    limit = frames if stage in FRAME_STAGES else len(rows)
    out = []
    for row in range(limit):
        paths = rows.get(row)
        if not paths:
            break
        if len(paths) > 1:
            raise ValueError(f"row {row} has {len(paths)} files: {', '.join(sorted(p.name for p in paths))}")
        out.append((paths[0], FORMATS[paths[0].suffix]))
    if not out:
        raise ValueError(f"no row 0 file (0.f32 or 0.npy) in {Path(folder) / stage}")
    return out
