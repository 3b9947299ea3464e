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

from harness.diagnosis.evidence.pixels import area, gain_db, inset, intersect, region, sse, within
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


def kernel_errors(ref: np.ndarray, cand: np.ndarray, rect, hole=None) -> dict[str, tuple[float, float]]:
    """Squared error in the rect of the candidate against the reference's rect region round-tripped
    through a 328x328 crop with each kernel (the way back always bicubic, as the canonical paste): over
    the whole rect, and leaving out `hole` (the lips, in frame coordinates: the audio moves them too)."""
    x1, y1, x2, y2 = rect
    size = (x2 - x1, y2 - y1)
    crop = resize(np.ascontiguousarray(region(ref, rect)), (CROP_SIZE, CROP_SIZE))
    target = np.ascontiguousarray(region(cand, rect))
    inside = intersect(hole, rect) if hole is not None else None
    inner = within(inside, rect) if inside is not None else None

    def errors(out: np.ndarray) -> tuple[float, float]:
        whole = sse(out, target)
        return whole, whole - (sse(out[inner], target[inner]) if inner is not None else 0.0)
    return {k: errors(_resize(crop, size, k)) for k in KERNELS}


def _resize(img: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    if kernel in APPLE_KERNELS:
        return cv2.resize(img, size, interpolation=APPLE_KERNELS[kernel])
    return resize(img, size, kernel)


class ResizeStats:
    """Kernel errors and high-frequency energies over the sampled frames."""

    def __init__(self) -> None:
        self.errors: dict[str, float] = dict.fromkeys(KERNELS, 0.0)  # over the whole rects
        self.outside: dict[str, float] = dict.fromkeys(KERNELS, 0.0)  # the lips left out: what names the kernel
        self.hf = [0.0, 0.0]
        self.values = 0  # values compared in the rects (the lips left out)
        self.frames: list[int] = []

    def add(self, i: int, ref: np.ndarray, cand: np.ndarray, rect, hole=None) -> None:
        self.values += (area(rect) - (area(intersect(hole, rect)) if hole is not None else 0)) * ref.shape[2]
        for k, (whole, outside) in kernel_errors(ref, cand, rect, hole).items():
            self.errors[k] += whole
            self.outside[k] += outside
        inner = inset(rect, 4)
        self.hf[0] += hf_energy(np.ascontiguousarray(region(ref, inner)))
        self.hf[1] += hf_energy(np.ascontiguousarray(region(cand, inner)))
        self.frames.append(i)

    def merge(self, other: "ResizeStats") -> None:
        for k in KERNELS:
            self.errors[k] += other.errors[k]
            self.outside[k] += other.outside[k]
        self.hf = [self.hf[0] + other.hf[0], self.hf[1] + other.hf[1]]
        self.frames += other.frames
        self.values += other.values

    def fit(self, total_sse: float, scale: float) -> dict | None:
        """The kernel closest to the candidate with the lips left out, and what it explains over the whole
        rects (`scale`: comparable frames over sampled ones); None when nothing was sampled, when no kernel leaves at most `CLEARLY` of the canonical
        kernel's error, or when the canonical round trip is within `MIN_RMS` of the candidate (fp16 noise,
        RMS 0.3, favours the sharper Lanczos kernel by 15 %: rounding, not a kernel)."""
        if not self.frames:
            return None
        out = self.outside
        best = min(out, key=out.get)
        gained = (self.errors[CANONICAL] - self.errors[best]) * scale
        rms = (out[CANONICAL] / self.values) ** 0.5 if self.values else 0.0
        if best == CANONICAL or gained <= 0 or out[best] > CLEARLY * out[CANONICAL] or rms < MIN_RMS:
            return None
        return {"kernel": best, "hf_ratio": self.hf[1] / self.hf[0] if self.hf[0] > 0 else None,
                "kernel_errors": {k: v / len(self.frames) for k, v in self.errors.items()},
                "explains_db": gain_db(total_sse, gained), "frames": list(self.frames)}
