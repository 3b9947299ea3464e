"""`compare` with a video on one side or both: frames paired by pipeline slot, by presentation time.

A video's slot k is the picture shown at t = k / 25 s after its first one (`harness.video.read`); a
folder's slot k is the file numbered ``k + index_base``. The pictures are decoded once, in order,
and each pair goes through `travel.VideoEvidence.take` (a candidate picture that repeats the one
before is left out and counted duplicated) before it is measured and observed on the worker
threads. Slots a video drops are not compared either: ``frame_timing`` names them.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from harness.backends.frame_files import frame_number, read_frame
from harness.diagnosis.evidence.collect import Evidence
from harness.diagnosis.evidence.travel import VideoEvidence
from harness.video import read
from reference.errors import InputError

IN_FLIGHT = 8  # pairs decoded ahead of the workers


@dataclass
class Side:
    """One side of a comparison: a video (`info`, `line`) or a folder's files by slot."""

    path: Path
    info: read.VideoInfo | None = None
    line: read.Timeline | None = None
    files: dict[int, Path] | None = None

    @property
    def slots(self) -> set[int]:
        """The slots this side has a picture for."""
        if self.info is not None:
            return {k for k, j in enumerate(self.line.shown) if j is not None}
        return set(self.files)

    @property
    def span(self) -> int:
        return len(self.line.shown) if self.line is not None else max(self.files, default=-1) + 1

    def frames(self, wanted: set[int], raw: bool = False) -> Iterator[tuple[int, np.ndarray, tuple | None, int | None]]:
        """(slot, BGR, raw planes or None, decoded frame or None) for each slot of `wanted`, in slot order."""
        if self.info is not None:
            for p in read.pictures(self.info, self.line, raw):
                if p.slot in wanted:
                    yield p.slot, p.bgr, p.yuv, p.frame
            return
        for k in sorted(wanted):
            yield k, read_frame(self.files[k]), None, None


def open_side(path: Path, pattern: str, index_base: int) -> Side:
    """A video file (by its suffix) or a folder of frame files numbered from `index_base`."""
    if read.is_video(path):
        info = read.probe(path)
        return Side(path, info, info.timeline())
    if not path.is_dir():
        raise InputError(path, "neither a folder of frames nor a video file",
                         f"give a folder or a video ({', '.join(read.SUFFIXES)})")
    files: dict[int, Path] = {}
    for file in path.glob(pattern):
        number = frame_number(file)
        if file.is_file() and number is not None and number >= index_base:
            if number - index_base in files:
                raise InputError(file, f"and {files[number - index_base].name} are two files of one frame",
                                 "keep one of them, or narrow --pattern")
            files[number - index_base] = file
    if not files:
        raise InputError(path, f"no frame file matching {pattern!r}", "check --pattern and the frame names")
    return Side(path, files=files)


def label(k: int) -> str:
    return f"frame_{k + 1:05d}"


@dataclass
class Paired:
    rows: list[dict]
    missing: list[int]  # slots the reference has and the candidate lacks (beyond its end)
    extra: list[int]
    span: int  # the slots compared: 0 .. span - 1
    video: VideoEvidence


def compare_sides(a: Side, b: Side, measure_pair, evidence: Evidence | None, audio: Path | None,
                  progress: bool = False) -> Paired:
    """Every common slot measured by ``measure_pair(k, ref, cand)`` (a row) and observed by `evidence`."""
    folders = [side for side in (a, b) if side.files is not None]
    span = folders[0].span if len(folders) == 1 else max(a.span, b.span)  # a folder says which frames are compared
    slots_a, slots_b = {k for k in a.slots if k < span}, {k for k in b.slots if k < span}
    common = slots_a & slots_b
    if not common:
        raise InputError(b.path, f"has no frame in common with {a.path}", "check that both hold the same run")
    video = VideoEvidence(a.info, b.info, a.line, b.line, span, audio)
    dropped = set(video.dropped_b) | set(video.dropped_a)
    missing = sorted(slots_a - slots_b - dropped)
    extra = sorted(slots_b - slots_a - dropped)
    rows: dict[int, dict] = {}

    def one(k: int, ref: np.ndarray, cand: np.ndarray) -> None:
        if ref.shape != cand.shape:
            raise InputError(b.path, f"{label(k)} is {cand.shape[1]}x{cand.shape[0]}, the reference's "
                             f"{ref.shape[1]}x{ref.shape[0]}")
        rows[k] = measure_pair(k, ref, cand)
        if evidence is not None:
            evidence.observe(k, ref, cand)

    with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="compare") as pool:
        pending = []
        pairs = zip(a.frames(common), b.frames(common, raw=True))
        for (k, ref, _, _), (k_b, cand, yuv, frame_b) in tqdm(pairs, total=len(common), desc="compare", unit="pair",
                                                              disable=not progress, leave=False):
            assert k == k_b
            if not video.take(k, ref, cand, yuv, frame_b):
                continue
            pending.append(pool.submit(one, k, ref, cand))
            if len(pending) >= IN_FLIGHT:
                pending.pop(0).result()
        for job in pending:
            job.result()
    return Paired([rows[k] for k in sorted(rows)], missing, extra, span, video)
