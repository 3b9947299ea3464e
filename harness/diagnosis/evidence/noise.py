"""Precision noise: a small, unstructured residual inside the patch and none outside it.

A generator run in fp16 (or on another engine) moves its outputs by a few thousandths, which after
quantisation flips single values by a level or two, here and there, with no spatial structure; the
rest of the frame, the template, stays exact. Over the frames where both sides sit on the same
template at the same place, `NoiseStats` keeps the residual's moments inside the patch, its
horizontal lag-1 autocorrelation, and the mean absolute residual outside the patch (beyond a
JPEG block of margin). The residual reads as precision noise when every bound below holds.
"""
from __future__ import annotations

import cv2
import numpy as np

from harness.diagnosis.evidence.pixels import gain_db

MAX_OUTSIDE = 0.01  # mean abs outside the patch: the rest of the frame is exact
MAX_MEAN_ABS = 1.5
MAX_ABS = 32
MAX_BIAS = 0.3  # |mean| of the signed residual
MAX_AUTOCORR = 0.5
MARGIN = 16


def _abs_sum(a: np.ndarray, b: np.ndarray) -> float:
    return float(sum(cv2.sumElems(cv2.absdiff(a, b))))


class NoiseStats:
    """Moments of the residual inside and outside the patch over the frames seen."""

    def __init__(self) -> None:
        self.n = self.n_out = 0
        self.sum = self.sum_abs = self.sum_sq = self.sum_lag = self.sum_out = 0.0
        self.max_abs = 0
        self.frames: list[int] = []

    def add(self, i: int, ref: np.ndarray, cand: np.ndarray, box) -> None:
        x1, y1, x2, y2 = box
        d = cand[y1:y2, x1:x2].astype(np.int16) - ref[y1:y2, x1:x2].astype(np.int16)
        f = d.astype(np.float64)
        self.n += d.size
        self.sum += float(f.sum())
        self.sum_abs += float(np.abs(f).sum())
        self.sum_sq += float((f * f).sum())
        self.sum_lag += float((f[:, 1:] * f[:, :-1]).sum())
        self.max_abs = max(self.max_abs, int(np.abs(d).max()) if d.size else 0)
        h, w = ref.shape[:2]
        ox1, oy1, ox2, oy2 = max(x1 - MARGIN, 0), max(y1 - MARGIN, 0), min(x2 + MARGIN, w), min(y2 + MARGIN, h)
        near = _abs_sum(cand[oy1:oy2, ox1:ox2], ref[oy1:oy2, ox1:ox2])
        self.sum_out += _abs_sum(cand, ref) - near
        self.n_out += ref.size - (oy2 - oy1) * (ox2 - ox1) * ref.shape[2]
        self.frames.append(i)

    def merge(self, other: "NoiseStats") -> None:
        for name in ("n", "n_out", "sum", "sum_abs", "sum_sq", "sum_lag", "sum_out"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.max_abs = max(self.max_abs, other.max_abs)
        self.frames += other.frames

    def fit(self, total_sse: float) -> dict | None:
        """The precision_noise finding's fields, or None when the residual is not that (or is zero)."""
        if not self.n or self.sum_sq == 0:
            return None
        mean_abs, bias = self.sum_abs / self.n, self.sum / self.n
        autocorr = self.sum_lag / self.sum_sq
        outside = self.sum_out / self.n_out if self.n_out else 0.0
        fields = {"mean_abs": mean_abs, "max_abs": self.max_abs, "bias": bias, "autocorrelation": autocorr,
                  "outside_mean_abs": outside, "explains_db": gain_db(total_sse, self.sum_sq),
                  "frames": list(self.frames)}
        holds = (outside <= MAX_OUTSIDE and mean_abs <= MAX_MEAN_ABS and self.max_abs <= MAX_ABS
                 and abs(bias) <= MAX_BIAS and autocorr <= MAX_AUTOCORR)
        return fields if holds else None
