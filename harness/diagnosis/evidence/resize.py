"""The paste's interpolation, from the patch alone.

The canonical paste resizes the 328x328 crop (patch inside) to the face rect with OpenCV's bicubic
kernel. Without the models the crop is not known, but the reference's rect region resized back to
328x328 stands for it: each kernel of `reference.image.RESIZE_KERNELS` then resizes that crop to
the rect again, and the kernel whose result is closest to the candidate's rect region (against the
bicubic round trip, which carries the same loss) is the candidate's. `hf_ratio` is the patch's
high-frequency energy (the mean squared Laplacian) in the candidate over the reference's, reported
beside the kernel: the kernel itself is named by the simulation, not by this ratio.
"""
from __future__ import annotations

import cv2
import numpy as np

from harness.diagnosis.evidence.pixels import gain_db, inset, region, sse
from reference.image import CROP_SIZE, RESIZE_KERNELS, resize

CANONICAL = "cv2_cubic"
SAMPLE = 12  # frames simulated (evenly spread over the comparable ones)


def hf_energy(img: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image (3x3 kernel), away from the border."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[2:-2, 2:-2]
    return float(np.mean(lap ** 2)) if lap.size else 0.0


def kernel_errors(ref: np.ndarray, cand: np.ndarray, rect) -> dict[str, float]:
    """Squared error in the rect of the candidate against the reference's rect region round-tripped
    through a 328x328 crop with each kernel (the way back always bicubic, as the canonical paste)."""
    x1, y1, x2, y2 = rect
    size = (x2 - x1, y2 - y1)
    crop = resize(np.ascontiguousarray(region(ref, rect)), (CROP_SIZE, CROP_SIZE))
    target = np.ascontiguousarray(region(cand, rect))
    return {k: sse(resize(crop, size, k), target) for k in RESIZE_KERNELS}


class ResizeStats:
    """Kernel errors and high-frequency energies over the sampled frames."""

    def __init__(self) -> None:
        self.errors: dict[str, float] = dict.fromkeys(RESIZE_KERNELS, 0.0)
        self.hf = [0.0, 0.0]
        self.frames: list[int] = []

    def add(self, i: int, ref: np.ndarray, cand: np.ndarray, rect) -> None:
        for k, v in kernel_errors(ref, cand, rect).items():
            self.errors[k] += v
        inner = inset(rect, 4)
        self.hf[0] += hf_energy(np.ascontiguousarray(region(ref, inner)))
        self.hf[1] += hf_energy(np.ascontiguousarray(region(cand, inner)))
        self.frames.append(i)

    def merge(self, other: "ResizeStats") -> None:
        for k, v in other.errors.items():
            self.errors[k] += v
        self.hf = [self.hf[0] + other.hf[0], self.hf[1] + other.hf[1]]
        self.frames += other.frames

    def fit(self, total_sse: float, scale: float) -> dict | None:
        """The kernel closest to the candidate and what it explains (`scale`: comparable frames over
        sampled ones); None when the canonical kernel is closest or nothing was sampled."""
        if not self.frames:
            return None
        best = min(self.errors, key=self.errors.get)
        gained = (self.errors[CANONICAL] - self.errors[best]) * scale
        if best == CANONICAL or gained <= 0:
            return None
        return {"kernel": best, "hf_ratio": self.hf[1] / self.hf[0] if self.hf[0] > 0 else None,
                "kernel_errors": {k: v / len(self.frames) for k, v in self.errors.items()},
                "explains_db": gain_db(total_sse, gained), "frames": list(self.frames)}
