"""The paste's interpolation, from the patch alone.

The canonical paste resizes the 328x328 crop (patch inside) to the face rect with OpenCV's bicubic
kernel. Without the models the crop is not known, but the reference's rect region resized back to
328x328 stands for it: each kernel of `reference.image.RESIZE_KERNELS` then resizes that crop to
the rect again, and the kernel whose result is closest to the candidate's rect region (against the
bicubic round trip, which carries the same loss) is the candidate's. `hf_ratio` is the patch's
high-frequency energy (the mean squared Laplacian) in the candidate over the reference's, reported
beside the kernel: the kernel itself is named by the simulation, not by this ratio.

Besides the pipeline's own kernels, two are simulated for the paste of Apple ports, drawn by
CoreGraphics at an interpolation quality: ``area`` (OpenCV's area average, a box prefilter when
shrinking) and ``lanczos`` (OpenCV's Lanczos-4). Apple publishes no kernels, only that ``none``
never interpolates, ``low`` is fast and low quality, ``default`` lets the context decide ("in
general medium quality") and ``high`` is slower and better. `CG_QUALITIES` reads them as nearest,
bilinear, area and Lanczos: what each is commonly taken to be, not a documented fact.
"""
from __future__ import annotations

import cv2
import numpy as np

from harness.diagnosis.evidence.pixels import gain_db, inset, region, sse
from reference.image import CROP_SIZE, RESIZE_KERNELS, resize

CANONICAL = "cv2_cubic"
APPLE_KERNELS = {"area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}
KERNELS = RESIZE_KERNELS + tuple(APPLE_KERNELS)
CG_QUALITIES = {"nearest": "CoreGraphics none", "bilinear": "CoreGraphics low", "area": "CoreGraphics medium/default",
                "lanczos": "CoreGraphics high"}
CLEARLY = 0.9  # a kernel is named when it leaves at most this share of the canonical kernel's error
MIN_RMS = 1.0  # grey levels: a rect closer than this to the canonical round trip differs by rounding, not by kernel
SAMPLE = 12  # frames simulated (evenly spread over the comparable ones)


def hf_energy(img: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image (3x3 kernel), away from the border."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[2:-2, 2:-2]
    return float(np.mean(lap ** 2)) if lap.size else 0.0


def kernel_errors(ref: np.ndarray, cand: np.ndarray, rect, hole=None) -> dict[str, float]:
    """Squared error in the rect of the candidate against the reference's rect region round-tripped
    through a 328x328 crop with each kernel (the way back always bicubic, as the canonical paste),
    leaving out `hole` (the mouth, in frame coordinates: the audio moves it, not the kernel)."""
    x1, y1, x2, y2 = rect
    size = (x2 - x1, y2 - y1)
    crop = resize(np.ascontiguousarray(region(ref, rect)), (CROP_SIZE, CROP_SIZE))
    target = np.ascontiguousarray(region(cand, rect))
    inner = None
    if hole is not None:
        hx1, hy1, hx2, hy2 = max(hole[0] - x1, 0), max(hole[1] - y1, 0), min(hole[2] - x1, size[0]), min(hole[3] - y1, size[1])
        inner = (slice(hy1, hy2), slice(hx1, hx2)) if hx2 > hx1 and hy2 > hy1 else None

    def error(out: np.ndarray) -> float:
        if inner is not None:
            out = out if out.flags.writeable else out.copy()
            out[inner] = target[inner]
        return sse(out, target)
    return {k: error(_resize(crop, size, k)) for k in KERNELS}


def _area(hole, rect) -> int:
    """Pixels of `hole` inside `rect` (0 without a hole)."""
    if hole is None:
        return 0
    w = min(hole[2], rect[2]) - max(hole[0], rect[0])
    h = min(hole[3], rect[3]) - max(hole[1], rect[1])
    return max(w, 0) * max(h, 0)


def _resize(img: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    if kernel in APPLE_KERNELS:
        return cv2.resize(img, size, interpolation=APPLE_KERNELS[kernel])
    return resize(img, size, kernel)


class ResizeStats:
    """Kernel errors and high-frequency energies over the sampled frames."""

    def __init__(self) -> None:
        self.errors: dict[str, float] = dict.fromkeys(KERNELS, 0.0)
        self.hf = [0.0, 0.0]
        self.values = 0  # values compared in the rects (the holes left out)
        self.frames: list[int] = []

    def add(self, i: int, ref: np.ndarray, cand: np.ndarray, rect, hole=None) -> None:
        x1, y1, x2, y2 = rect
        self.values += ((x2 - x1) * (y2 - y1) - _area(hole, rect)) * ref.shape[2]
        for k, v in kernel_errors(ref, cand, rect, hole).items():
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
        self.values += other.values

    def fit(self, total_sse: float, scale: float) -> dict | None:
        """The kernel closest to the candidate and what it explains (`scale`: comparable frames over
        sampled ones); None when nothing was sampled, when no kernel leaves at most `CLEARLY` of the canonical
        kernel's error, or when the canonical round trip is within `MIN_RMS` of the candidate (fp16 noise,
        RMS 0.3, favours the sharper Lanczos kernel by 15 %: rounding, not a kernel)."""
        if not self.frames:
            return None
        best = min(self.errors, key=self.errors.get)
        gained = (self.errors[CANONICAL] - self.errors[best]) * scale
        rms = (self.errors[CANONICAL] / self.values) ** 0.5 if self.values else 0.0
        if best == CANONICAL or gained <= 0 or self.errors[best] > CLEARLY * self.errors[CANONICAL] or rms < MIN_RMS:
            return None
        return {"kernel": best, "hf_ratio": self.hf[1] / self.hf[0] if self.hf[0] > 0 else None,
                "kernel_errors": {k: v / len(self.frames) for k, v in self.errors.items()},
                "explains_db": gain_db(total_sse, gained), "frames": list(self.frames)}
