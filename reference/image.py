"""Image stages of the canonical pipeline (SyncTalk_2D ``inference_328.py``), as pure functions.

Every function takes and returns uint8 BGR numpy arrays in HWC layout (except
``generator_input``, which builds the float32 NCHW model input, and ``quantize``,
which takes the float model output), never modifies its inputs, and uses OpenCV
with the same calls and kernels as the reference script:

    crop = cv2.resize(full[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
    roi = crop[4:324, 4:324].copy()
    masked = cv2.rectangle(roi.copy(), (5, 5, 310, 305), (0, 0, 0), -1)
    x = concat(roi.transpose(2, 0, 1).astype(np.float32), masked...) / 255.0
    patch = np.array(pred.transpose(1, 2, 0) * 255, dtype=np.uint8)
    crop[4:324, 4:324] = patch
    full[y1:y2, x1:x2] = cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)

Rectangles are ``(x1, y1, x2, y2)`` with exclusive ends, i.e. ``full[y1:y2, x1:x2]``.

Port variants (docs/conventions.md): every resize takes a kernel, a cv2 ``INTER_*`` flag or
one of ``RESIZE_KERNELS`` ("pil_cubic" is Pillow's bicubic, a = -0.5 and widened when shrinking,
where cv2's is a = -0.75 over a fixed 4x4; three are the loops ports write by hand, see
``handwritten_resize``); ``paste`` can skip the 328 crop ("direct").
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PIL import Image

CROP_SIZE = 328
ROI_SIZE = 320
ROI_OFFSET = 4
# (x, y, w, h) as cv2.rectangle takes it: fills x 5..314 and y 5..309 inclusive.
MASK_RECT = (5, 5, 310, 305)
# The box a port gets when it passes the same numbers as two corner points,
# cv2.rectangle(img, (5, 5), (310, 305), ...): x 5..310, y 5..305 inclusive. The Sanders
# pack's model_inputs/K.jpg were made this way (verified on all 523 frames).
MASK_RECT_TWO_POINT = (5, 5, 306, 301)

Rect = tuple[int, int, int, int]

RESIZE_KERNELS = ("cv2_cubic", "pil_cubic", "bilinear", "nearest", "nearest_floor", "bilinear_align", "bilinear_scaled")
HANDWRITTEN = ("nearest_floor", "bilinear_align", "bilinear_scaled")
_CV2_FLAGS = {"cv2_cubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
PASTE_MODES = ("crop328", "direct")

__all__ = [
    "CROP_SIZE",
    "ROI_SIZE",
    "ROI_OFFSET",
    "MASK_RECT",
    "MASK_RECT_TWO_POINT",
    "Rect",
    "RESIZE_KERNELS",
    "HANDWRITTEN",
    "handwritten_resize",
    "PASTE_MODES",
    "check_rect",
    "resize",
    "crop_face",
    "roi_of",
    "mask_roi",
    "generator_input",
    "quantize",
    "paste",
    "rect_mouth_box",
]


def _as_rect(rect: Sequence[int]) -> Rect:
    if len(rect) != 4:
        raise ValueError(f"rect must be (x1, y1, x2, y2), got {tuple(rect)!r}")
    values = []
    for v in rect:
        if isinstance(v, (float, np.floating)) and not float(v).is_integer():
            raise ValueError(f"rect must hold integers, got {tuple(rect)!r}")
        values.append(int(v))
    return values[0], values[1], values[2], values[3]


def check_rect(rect: Sequence[int], frame_shape: Sequence[int]) -> Rect:
    """Return ``rect`` as a tuple of ints after checking it is non-empty and inside a frame of ``frame_shape``.

    Raises ValueError with the numbers otherwise.
    """
    x1, y1, x2, y2 = _as_rect(rect)
    height, width = int(frame_shape[0]), int(frame_shape[1])
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"rect (x1={x1}, y1={y1}, x2={x2}, y2={y2}) is empty: need x2 > x1 and y2 > y1")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise ValueError(
            f"rect (x1={x1}, y1={y1}, x2={x2}, y2={y2}) lies outside the {width}x{height} frame: "
            f"need 0 <= x1 < x2 <= {width} and 0 <= y1 < y2 <= {height}"
        )
    return x1, y1, x2, y2


def _check_image(name: str, image: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {image.dtype}")
    if shape is not None and image.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {image.shape}")
    if shape is None and (image.ndim != 3 or image.shape[2] != 3):
        raise ValueError(f"{name} must be an HxWx3 BGR image, got shape {image.shape}")


def _source_coords(n_out: int, n_in: int, kernel: str) -> np.ndarray:
    """Source coordinate of each output pixel of a hand-written resize (float32, as ports compute it)."""
    x = np.arange(n_out, dtype=np.float32)
    if kernel == "bilinear_align":  # x * (in - 1) / (out - 1): first and last pixels on the corners
        return x * np.float32(n_in - 1) / np.float32(max(n_out - 1, 1))
    return x * np.float32(n_in - 1) / np.float32(n_out)  # bilinear_scaled: the last column never reached


def handwritten_resize(img: np.ndarray, size: tuple[int, int], kernel: str) -> np.ndarray:
    """The resize loops ports write by hand, exactly (uint8 HxWxC in and out, ``size`` = (w, h)):

    * "nearest_floor": ``out[y, x] = img[y * in_h // out_h, x * in_w // out_w]`` (integer arithmetic);
    * "bilinear_align": float32 source ``sx = x * (in_w - 1) / (out_w - 1)`` (same for y), left/top
      neighbour ``int(sx)``, right/bottom one clamped to the last pixel,
      ``top = tl + (tr - tl) * ax``, ``bottom = bl + (br - bl) * ax``, ``v = top + (bottom - top) * ay``
      in float32, truncated to uint8;
    * "bilinear_scaled": the same with ``sx = x * (in_w - 1) / out_w``.
    """
    out_w, out_h = size
    in_h, in_w = img.shape[:2]
    if kernel == "nearest_floor":
        ys = np.arange(out_h) * in_h // out_h
        xs = np.arange(out_w) * in_w // out_w
        return np.ascontiguousarray(img[ys[:, None], xs[None, :]])
    if kernel not in HANDWRITTEN:
        raise ValueError(f"unknown hand-written resize {kernel!r}; choose one of {', '.join(HANDWRITTEN)}")
    sx, sy = _source_coords(out_w, in_w, kernel), _source_coords(out_h, in_h, kernel)
    x0, y0 = sx.astype(np.int64), sy.astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, in_w - 1), np.minimum(y0 + 1, in_h - 1)
    ax = (sx - x0.astype(np.float32))[None, :, None]
    ay = (sy - y0.astype(np.float32))[:, None, None]
    src = img.astype(np.float32)
    top_rows, bottom_rows = src[y0], src[y1]
    tl, tr, bl, br = top_rows[:, x0], top_rows[:, x1], bottom_rows[:, x0], bottom_rows[:, x1]
    top = tl + (tr - tl) * ax
    bottom = bl + (br - bl) * ax
    return (top + (bottom - top) * ay).astype(np.uint8)


def resize(img: np.ndarray, size: tuple[int, int], kernel: int | str = cv2.INTER_CUBIC) -> np.ndarray:
    """``img`` resized to ``size`` = (w, h) with a cv2 ``INTER_*`` flag or a kernel of ``RESIZE_KERNELS``
    ("bilinear" is cv2.INTER_LINEAR, "nearest" cv2.INTER_NEAREST, "pil_cubic" Pillow's BICUBIC, and
    the ``HANDWRITTEN`` loops of ``handwritten_resize``)."""
    if kernel in HANDWRITTEN:
        return handwritten_resize(img, size, kernel)
    if kernel == "pil_cubic":
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize(size, Image.Resampling.BICUBIC))
    if isinstance(kernel, str):
        if kernel not in _CV2_FLAGS:
            raise ValueError(f"unknown resize kernel {kernel!r}; choose one of {', '.join(RESIZE_KERNELS)}")
        kernel = _CV2_FLAGS[kernel]
    return cv2.resize(img, size, interpolation=kernel)


def crop_face(full: np.ndarray, rect: Sequence[int], interpolation: int | str = cv2.INTER_CUBIC) -> np.ndarray:
    """Cut ``full[y1:y2, x1:x2]`` and resize it to the 328x328 face crop (cv2 bicubic by default)."""
    _check_image("full", full)
    x1, y1, x2, y2 = check_rect(rect, full.shape)
    return resize(full[y1:y2, x1:x2], (CROP_SIZE, CROP_SIZE), interpolation)


def roi_of(crop: np.ndarray) -> np.ndarray:
    """The 320x320 ROI ``crop[4:324, 4:324]`` of a 328x328 crop, as a copy."""
    _check_image("crop", crop, (CROP_SIZE, CROP_SIZE, 3))
    end = ROI_OFFSET + ROI_SIZE
    return crop[ROI_OFFSET:end, ROI_OFFSET:end].copy()


def mask_roi(roi: np.ndarray, rect: Sequence[int] = MASK_RECT) -> np.ndarray:
    """A copy of ``roi`` with the mouth box zeroed, equal to
    ``cv2.rectangle(roi.copy(), (5, 5, 310, 305), (0, 0, 0), -1)`` (x 5..314, y 5..309 inclusive).

    ``rect`` (x, y, w, h) selects another box, e.g. ``MASK_RECT_TWO_POINT`` (the pack's model_inputs).
    """
    _check_image("roi", roi, (ROI_SIZE, ROI_SIZE, 3))
    x, y, w, h = _as_rect(rect)
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > ROI_SIZE or y + h > ROI_SIZE:
        raise ValueError(f"mask rect (x={x}, y={y}, w={w}, h={h}) must be non-empty and inside the 320x320 ROI")
    masked = roi.copy()
    masked[y : y + h, x : x + w] = 0
    return masked


def generator_input(roi: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """The generator's image input: concat(ROI, masked ROI) channels-first, BGR, float32 / 255 -> (1, 6, 320, 320)."""
    _check_image("roi", roi, (ROI_SIZE, ROI_SIZE, 3))
    _check_image("masked", masked, (ROI_SIZE, ROI_SIZE, 3))
    out = np.empty((1, 6, ROI_SIZE, ROI_SIZE), np.float32)  # filled in place: no intermediate copies
    out[0, :3] = roi.transpose(2, 0, 1)
    out[0, 3:] = masked.transpose(2, 0, 1)
    out /= np.float32(255.0)
    return out


def quantize(output: np.ndarray, rounding: bool = False) -> np.ndarray:
    """Generator output (3, 320, 320) or (1, 3, 320, 320) in [0, 1] -> (320, 320, 3) uint8 by truncation
    (canonical) or, with ``rounding``, to the nearest integer (a port variant).

    Same as SyncTalk's ``np.array(pred.transpose(1, 2, 0) * 255, dtype=np.uint8)`` for values in
    [0, 1] (the product is computed in the output's own float dtype), except that values are
    clipped to [0, 255] first so that out-of-range values saturate instead of wrapping; NaN -> 0.
    """
    arr = np.asarray(output)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise ValueError(f"output must hold one image, got batch of {arr.shape[0]} (shape {arr.shape})")
        arr = arr[0]
    if arr.shape != (3, ROI_SIZE, ROI_SIZE):
        raise ValueError(f"output must have shape (3, 320, 320) or (1, 3, 320, 320), got {np.shape(output)}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    scaled = arr.transpose(1, 2, 0) * arr.dtype.type(255)
    np.fmax(scaled, 0, out=scaled)  # NaN and -inf -> 0 (fmax takes the number over a NaN)
    np.fmin(scaled, 255, out=scaled)  # +inf -> 255
    if rounding:
        np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def paste(
    full: np.ndarray,
    crop: np.ndarray,
    patch: np.ndarray,
    rect: Sequence[int],
    interpolation: int | str = cv2.INTER_CUBIC,
    mode: str = "crop328",
) -> np.ndarray:
    """Composite a generated 320x320 ``patch`` back into a new copy of ``full``.

    "crop328" (canonical): the patch replaces ``crop[4:324, 4:324]`` of a copy of the 328x328
    ``crop``; that crop is resized to the rect's (w, h) (cv2 bicubic by default) and written into
    ``full[y1:y2, x1:x2]``. "direct" (a port variant): the patch alone is resized to the whole
    rect's (w, h) and written over all of it, so the 4-pixel crop border is lost and the face is
    stretched by 328/320; ``crop`` is not used.
    """
    _check_image("full", full)
    _check_image("crop", crop, (CROP_SIZE, CROP_SIZE, 3))
    _check_image("patch", patch, (ROI_SIZE, ROI_SIZE, 3))
    x1, y1, x2, y2 = check_rect(rect, full.shape)
    if mode == "direct":
        work = patch
    elif mode == "crop328":
        work = crop.copy()
        end = ROI_OFFSET + ROI_SIZE
        work[ROI_OFFSET:end, ROI_OFFSET:end] = patch
    else:
        raise ValueError(f"unknown paste mode {mode!r}; choose one of {', '.join(PASTE_MODES)}")
    out = full.copy()
    out[y1:y2, x1:x2] = resize(work, (x2 - x1, y2 - y1), interpolation)
    return out


def rect_mouth_box(rect: Sequence[int]) -> Rect:
    """The mask rectangle in full-frame coordinates ``(x1, y1, x2, y2)``, exclusive ends.

    The masked ROI pixels x 5..314, y 5..309 are crop pixels x 9..318, y 9..313, i.e. the crop
    area [9, 319) x [9, 314); it is scaled by (rect size / 328) and rounded outward (floor the
    start, ceil the end), so the box covers every frame pixel the masked area touches. It always
    lies inside ``rect``.
    """
    x1, y1, x2, y2 = _as_rect(rect)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"rect (x1={x1}, y1={y1}, x2={x2}, y2={y2}) is empty: need x2 > x1 and y2 > y1")
    mx, my, mw, mh = MASK_RECT
    w, h = x2 - x1, y2 - y1
    cx0, cx1 = ROI_OFFSET + mx, ROI_OFFSET + mx + mw  # 9, 319
    cy0, cy1 = ROI_OFFSET + my, ROI_OFFSET + my + mh  # 9, 314
    # Exact integer floor/ceil of c * size / 328 (no float rounding at integral points).
    bx1 = x1 + (cx0 * w) // CROP_SIZE
    by1 = y1 + (cy0 * h) // CROP_SIZE
    bx2 = min(x2, x1 + -((-cx1 * w) // CROP_SIZE))
    by2 = min(y2, y1 + -((-cy1 * h) // CROP_SIZE))
    return bx1, by1, bx2, by2
