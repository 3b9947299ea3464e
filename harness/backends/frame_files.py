"""Numbered frame files: a folder, a printf name pattern and the number in the first frame's name.

Frame i (0-based, the pipeline's frame index) is the file ``pattern % (i + index_base)``. Every frame
file the harness reads (a port's output, a folder of frames made elsewhere, the image evidence's second
look at them, the folders of ``compare``) goes through `read_frame`: one decoder with one strictness,
that of `reference.data.read_image`, so a truncated JPEG (which ``cv2.imread`` alone decodes with grey
fill) or an undecodable file is the same `FrameError`, naming the file, wherever it is read.

The ``{name}`` placeholders of folder and dump patterns (`check_placeholders`, `substitute`) and the
path of a numbered or whole-file pattern (`pattern_path`, also for stage dumps) follow the same rules
for every backend.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from harness.backends.port_files import printf_regex
from reference.data import read_image
from reference.errors import InputError

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def frame_number(path: Path) -> int | None:
    """The frame number in a file name: its last run of digits (``frame_00012.png`` -> 12)."""
    found = re.findall(r"\d+", path.stem)
    return int(found[-1]) if found else None


class FrameError(InputError):
    """A frame file that is missing, cannot be decoded (a truncated JPEG included) or is not the size
    expected; `problem` names the frame, `path` is the file."""


def check_placeholders(text: str, where: str, known: Sequence[str]) -> None:
    """ValueError naming `where` when `text` holds a ``{name}`` whose name is not one of `known`."""
    for match in PLACEHOLDER.finditer(text):
        if match.group(1) not in known:
            names = ", ".join("{" + name + "}" for name in known)
            raise ValueError(f"{where}: unknown placeholder {match.group(0)!r}; "
                             + (f"the only one is {names}" if len(known) == 1 else f"known: {names}"))


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace each ``{name}`` of `values` in `text`, in one pass (values are not substituted again)."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)


def pattern_path(folder: Path, pattern: str, number: int | None, values: dict[str, str] | None = None) -> Path:
    """The file ``pattern % number`` (number None: the whole-file pattern, ``%%`` read as ``%``) with its
    placeholders replaced by `values`, in `folder` (an absolute result replaces the folder)."""
    name = pattern % number if number is not None else pattern.replace("%%", "%")
    return folder / substitute(name, values or {})


def read_frame(path: Path, label: str | None = None, expected: tuple[int, int] | None = None) -> np.ndarray:
    """A frame file as BGR uint8; FrameError when it is missing, truncated or undecodable, or not `expected`
    (h, w) in size. `label` names the frame in the message (default: the file's name)."""
    label = label or path.name
    try:
        img = read_image(path)
    except InputError as exc:
        raise FrameError(path, f"output frame {label} could not be read as an image: {exc.problem}",
                         exc.fix) from None
    if expected is not None and img.shape[:2] != tuple(expected):
        raise FrameError(path, f"{label} is {img.shape[1]}x{img.shape[0]}, expected {expected[1]}x{expected[0]}")
    return img


@dataclass(frozen=True)
class FrameFiles:
    """The frame files of one run: frame i is ``dir / (pattern % (i + index_base))``."""

    dir: Path
    pattern: str
    index_base: int

    @classmethod
    def from_info(cls, spec: dict) -> FrameFiles:
        """From a backend's ``info["frame_files"]`` (`to_info`)."""
        return cls(Path(spec["dir"]), spec["pattern"], spec["index_base"])

    def to_info(self) -> dict:
        """{"dir", "pattern", "index_base"}, as a backend's ``info["frame_files"]``."""
        return {"dir": str(self.dir), "pattern": self.pattern, "index_base": self.index_base}

    def path(self, i: int) -> Path:
        """The file of frame `i` (0-based)."""
        return pattern_path(self.dir, self.pattern, i + self.index_base)

    def read(self, i: int, expected: tuple[int, int] | None = None, label: str | None = None) -> np.ndarray:
        """Frame `i` (BGR uint8) by `read_frame`; FrameError naming the file."""
        return read_frame(self.path(i), label, expected)

    def indices(self) -> list[int]:
        """The frames whose file is in the folder (a file named exactly ``pattern % number``), ascending; a
        file numbered below `index_base` gives a negative index."""
        found = printf_regex(self.pattern)
        numbers = set()
        with os.scandir(self.dir) as entries:
            for entry in entries:
                match = found.match(entry.name)
                if match and self.pattern % int(match.group(1)) == entry.name and entry.is_file():
                    numbers.add(int(match.group(1)))
        return sorted(n - self.index_base for n in numbers)
