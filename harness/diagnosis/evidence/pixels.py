"""Small pixel helpers shared by the evidence modules: fast channel maxima, half-size views, squared
errors, boxes, and the dB a model gains on a residual."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x1, y1, x2, y2, exclusive ends


def channel_max(diff: np.ndarray) -> np.ndarray:
    """The largest of the three channels of an (H, W, 3) array (faster than ``max(axis=2)``)."""
    return np.maximum(np.maximum(diff[..., 0], diff[..., 1]), diff[..., 2])


def half_size(img: np.ndarray) -> np.ndarray:
    """Every second pixel of every second row (``img[::2, ::2]``, contiguous)."""
    return cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_NEAREST)


def sse(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of squared differences of two uint8 arrays of one shape."""
    return float(cv2.norm(np.ascontiguousarray(a), np.ascontiguousarray(b), cv2.NORM_L2SQR))


def inset(box: Sequence[int], by: int) -> Box:
    """`box` shrunk by `by` pixels on every side (never below one pixel)."""
    x1, y1, x2, y2 = box
    by = max(0, min(by, (x2 - x1 - 1) // 2, (y2 - y1 - 1) // 2))
    return x1 + by, y1 + by, x2 - by, y2 - by


def clip_box(box: Sequence[float], shape: Sequence[int]) -> Box | None:
    """`box` rounded to pixels and clipped to a frame of `shape`; None when nothing is left."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def area(box: Sequence[int] | None) -> int:
    """Pixels in `box` (0 for None or an empty box)."""
    return 0 if box is None else max(box[2] - box[0], 0) * max(box[3] - box[1], 0)


def intersect(a: Sequence[int], b: Sequence[int]) -> Box | None:
    """The part of box `a` inside box `b`; None when they do not overlap."""
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def within(box: Sequence[int], outer: Sequence[int]) -> tuple[slice, slice]:
    """Row and column slices of `box` in the coordinates of `outer`'s region (`box` inside `outer`)."""
    return slice(box[1] - outer[1], box[3] - outer[1]), slice(box[0] - outer[0], box[2] - outer[0])


def region(img: np.ndarray, box: Sequence[int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return img[y1:y2, x1:x2]


def moved_patch(background: np.ndarray, content: np.ndarray, to: Sequence[float]) -> np.ndarray:
    """A copy of `background` with `content` resized (bicubic) into the box `to` (clipped to the frame)."""
    out = background.copy()
    box = clip_box(to, out.shape)
    if box is None:
        return out
    x1, y1, x2, y2 = (int(round(v)) for v in to)
    resized = cv2.resize(content, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
    bx1, by1, bx2, by2 = box
    out[by1:by2, bx1:bx2] = resized[by1 - y1:by2 - y1, bx1 - x1:bx2 - x1]
    return out


def gain_db(total: float, removed: float) -> float:
    """dB by which the PSNR over everything compared rises when `removed` of the `total` squared
    error goes away (inf when all of it does; 0 when none or a negative share)."""
    if total <= 0 or removed <= 0:
        return 0.0
    left = total - removed
    return math.inf if left <= total * 1e-12 else 10.0 * math.log10(total / left)


def grey_thumbnail(image: np.ndarray, box: Sequence[int], size: int, dtype=np.uint8) -> np.ndarray:
    """The grey `size` x `size` thumbnail (area-averaged) of `box` (x1, y1, x2, y2, clipped to the image)
    of a BGR image, in `dtype`: uint8 for a picture, float32 to subtract one thumbnail from another."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h)
    grey = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY).astype(dtype, copy=False)
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
