"""What a video side adds to the image evidence: its container and timeline, the slots it repeats, and
the few frames the codec and colour-reading models need.

`VideoEvidence.take` sees each slot's pair in slot order (before `collect.Evidence.observe`): it
keeps a grey thumbnail of both sides and says whether the candidate's picture repeats the slot
before (a *duplicated* frame: the candidate's picture is within noise of its previous one while the
reference's moved, or the same decoded frame fills two slots), so that the pair is left out of the
comparison and costs one frame. It keeps a block of consecutive pairs in the middle of the run (the
codec round trip, which needs a run of pictures as the encoder saw them) and, on sampled slots, the
candidate's raw YUV planes (the colour reading fit). The findings are made in `timing`, `av_sync`
and `video_codec`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from harness.video.read import Timeline, VideoInfo

BLOCK = 12  # consecutive pairs kept for the codec round trip
THUMB = 8  # thumbnails at 1/8 scale
REPEAT_SHARE = 0.2  # a picture within this share of the reference's motion of its previous one repeats it
MIN_MOTION = 0.3  # grey levels: the reference must move at least this much between the two slots


def _thumb(img: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (grey.shape[1] // THUMB, grey.shape[0] // THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class VideoEvidence:
    """Each side's video (None for a folder of frames), its timeline, the run's input audio (None when not
    known) and what `take` kept."""

    info_a: VideoInfo | None
    info_b: VideoInfo | None
    line_a: Timeline | None
    line_b: Timeline | None
    slots: int
    input_audio: Path | None = None
    every: int = field(init=False)  # the candidate's raw planes are kept on every `every`-th slot
    duplicated: list[int] = field(default_factory=list)
    block: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    raw: dict[int, tuple[np.ndarray, tuple]] = field(default_factory=dict)
    _prev: tuple[int, np.ndarray, np.ndarray, int | None] | None = None

    def __post_init__(self) -> None:
        start = max(0, self.slots // 2 - BLOCK // 2)
        self.block_slots = range(start, min(start + BLOCK, self.slots))
        self.every = max(1, self.slots // BLOCK)

    @property
    def dropped_b(self) -> list[int]:
        return self.line_b.dropped if self.line_b is not None else []

    @property
    def dropped_a(self) -> list[int]:
        return self.line_a.dropped if self.line_a is not None else []

    def take(self, k: int, ref: np.ndarray, cand: np.ndarray, yuv_b: tuple | None = None,
             frame_b: int | None = None) -> bool:
        """Slot `k`'s pair, in slot order; False when the candidate repeats its previous picture there (the
        pair is then not compared). `yuv_b` are the candidate's raw planes, `frame_b` its decoded frame."""
        ta, tb = _thumb(ref), _thumb(cand)
        prev, self._prev = self._prev, (k, ta, tb, frame_b)
        if prev is not None and prev[0] == k - 1 and ref.shape == cand.shape:
            ref_motion = float(np.mean(np.abs(ta - prev[1])))
            cand_motion = float(np.mean(np.abs(tb - prev[2])))
            same_frame = frame_b is not None and frame_b == prev[3]
            if same_frame or (ref_motion > MIN_MOTION and cand_motion < REPEAT_SHARE * ref_motion):
                self.duplicated.append(k)
                return False
        if k in self.block_slots:
            self.block[k] = (ref, cand)
        if yuv_b is not None and k % self.every == 0:
            self.raw[k] = (ref, yuv_b)
        return True
