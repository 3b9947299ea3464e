"""Streaming a backend's frames against the reference: per-frame metrics in a worker thread while
the backend makes the next frame, running per-region statistics, the worst frames kept for the report.

Reference frames are never all held in memory: a composited frame equals its template frame outside
the face rect, so `ReferenceFrames` keeps only each frame's rect region (about 100 KB) and rebuilds
the full frame from the template on demand; candidate frames are compared one at a time.

A backend may hand out None for a frame it did not make (a folder of frames made elsewhere with a
gap): the frame is counted missing and the comparison goes on with the next one.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from tqdm import tqdm

from harness.backends.base import BackendFailed, BackendRun
from harness.diagnosis.audio import mouth_thumbnail
from harness.diagnosis.explain import DIAGNOSIS_FRAMES
from harness.system.images import decoded_image
from harness.verdicts import metrics
from reference.data import open_template_source
from reference.image import rect_mouth_box
from reference.ordered_worker import OrderedWorker
from reference.output import encode_frame

WORST_FRAMES = 3
METRICS_AHEAD = 2  # frames whose metrics may wait in the worker while the backend produces the next
PER_FRAME_KEYS = ("identical_pct", "within_1_pct", "mae", "max_abs", "psnr", "ssim")


@dataclass
class ReferenceFrames:
    """The canonical reference of one audio: rect regions of every frame plus its stages."""

    source_path: Path
    source_kind: str
    templates: list[int]
    rects: list[tuple[int, int, int, int]]
    patches: list[np.ndarray]
    stages: dict
    timings: dict
    mouths: np.ndarray  # (frames, 32, 32) grey mouth thumbnails, for the audio-dependence check

    def __post_init__(self) -> None:
        self._source = open_template_source(self.source_path, self.source_kind)

    def frame(self, i: int) -> np.ndarray:
        """Full reference frame `i`: its template frame with the generated rect pasted in."""
        t = self.templates[i]
        out = decoded_image(self._source.image_path(t)).copy()
        x1, y1, x2, y2 = self.rects[i]
        out[y1:y2, x1:x2] = self.patches[i]
        return out


class _Summary:
    """Running per-region statistics and the worst frame of each frame criterion."""

    def __init__(self) -> None:
        self.sums: dict = {}
        self.mins: dict = {}
        self.maxs: dict = {}
        self.n = 0
        self.worst = {"identical_pct": (math.inf, -1), "psnr": (math.inf, -1), "ssim": (math.inf, -1)}

    def add(self, i: int, frame: dict) -> dict:
        self.n += 1
        compact = {}
        for region in metrics.REGIONS:
            compact[region] = {k: float(frame[region][k]) for k in PER_FRAME_KEYS}
            for k, v in compact[region].items():
                key = (region, k)
                self.sums[key] = self.sums.get(key, 0.0) + v
                self.mins[key] = min(self.mins.get(key, math.inf), v)
                self.maxs[key] = max(self.maxs.get(key, -math.inf), v)
        for k in self.worst:
            if compact["full"][k] < self.worst[k][0]:
                self.worst[k] = (compact["full"][k], i)
        return compact

    def to_dict(self) -> dict:
        out: dict = {region: {} for region in metrics.REGIONS}
        for (region, k), total in self.sums.items():
            out[region][k] = {"mean": total / self.n, "min": self.mins[(region, k)], "max": self.maxs[(region, k)]}
        return out


class WorstFrames:
    """Keeps the K frames with the lowest full-frame PSNR and writes face crops of them for the report."""

    def __init__(self, k: int = WORST_FRAMES) -> None:
        self.k = k
        self.kept: list[tuple[float, int, np.ndarray, np.ndarray]] = []

    def offer(self, i: int, psnr: float, want: np.ndarray, cand: np.ndarray) -> None:
        if math.isinf(psnr):
            return
        if len(self.kept) < self.k or psnr < self.kept[-1][0]:
            self.kept.append((psnr, i, want, cand))
            self.kept.sort(key=lambda item: item[0])
            del self.kept[self.k:]

    def write(self, folder: Path, base: Path, rects: list) -> list[dict]:
        """PNG face crops (rect plus a margin, lossless) of reference and candidate; paths relative to `base`."""
        out = []
        for psnr, i, want, cand in self.kept:
            x1, y1, x2, y2 = rects[i]
            m = (x2 - x1) // 4
            box = (max(x1 - m, 0), max(y1 - m, 0), min(x2 + m, want.shape[1]), min(y2 + m, want.shape[0]))
            folder.mkdir(parents=True, exist_ok=True)
            files = {}
            for name, img in (("reference", want), ("candidate", cand)):
                path = folder / f"frame_{i + 1:05d}_{name}.png"
                path.write_bytes(encode_frame(np.ascontiguousarray(img[box[1]:box[3], box[0]:box[2]]), "png", 3))
                files[name] = path.relative_to(base).as_posix()
            out.append({"i": i, "psnr": psnr, "crop_box": list(box), "rect": list(rects[i]),
                        "mouth_box": list(rect_mouth_box(rects[i])), **files})
        return out


@contextmanager
def closing_iterator(frames: Iterable) -> Iterator[Iterator]:
    """An iterator over `frames` that is closed (a generator's `finally` run) when the block ends."""
    it = iter(frames)
    try:
        yield it
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def compare_run(run: BackendRun, ref: ReferenceFrames, frames: int, progress: bool, label: str,
                worst_frames: WorstFrames | None = None, video=None, mouths: list | None = None,
                first: list | None = None) -> tuple:
    """Stream a backend's frames against the reference: (summary, per_frame, worst, n_frames, missing),
    `missing` the indices of the frames the backend handed out as None. The metrics of frame i are
    computed in a worker thread while the backend produces frame i + 1. `first` collects the first
    DIAGNOSIS_FRAMES candidate frames for the diagnosis (None for a missing one)."""
    summary, per_frame, missing = _Summary(), [], []

    def take(done: list) -> None:
        for (i, want, cand), result in done:
            per_frame.append({"i": i, "t": ref.templates[i], **summary.add(i, result)})
            if worst_frames is not None:
                worst_frames.offer(i, per_frame[-1]["full"]["psnr"], want, cand)

    n = 0
    # Closed here, not left to garbage collection or to the progress wrapper: a streaming port is
    # stopped (its process group killed) as soon as the comparison ends, by an error or Ctrl-C too.
    with OrderedWorker(metrics.frame_metrics, METRICS_AHEAD) as worker, closing_iterator(run.frames) as cands:
        for i, cand in enumerate(tqdm(cands, total=frames, desc=label, unit="frame", disable=not progress,
                                      leave=False)):
            if i >= frames:
                break
            if first is not None and i < DIAGNOSIS_FRAMES:
                first.append(cand)
            if cand is None:
                missing.append(i)
                continue
            want = ref.frame(i)
            if cand.shape != want.shape:
                raise BackendFailed(f"frame {i + 1} is {cand.shape[1]}x{cand.shape[0]}, "
                                    f"expected {want.shape[1]}x{want.shape[0]}")
            take(worker.submit((i, want, cand), want, cand, ref.rects[i]))
            if video is not None:
                video.add(want, cand)
            if mouths is not None:
                mouths.append(mouth_thumbnail(cand, ref.rects[i]))
            n += 1
        take(worker.drain())
    if n + len(missing) < frames:
        raise BackendFailed(f"produced {n + len(missing)} frames, expected {frames}")
    if not n:
        raise BackendFailed(f"all {frames} frames are missing")
    return summary.to_dict(), per_frame, summary.worst, n, missing
