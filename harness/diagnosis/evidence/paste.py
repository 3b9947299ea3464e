"""Where the generated patch really sits, and the pattern of its displacement.

`patch_box` finds, in one composited frame, the region that differs from its template frame: the
absolute difference (largest over the channels) at half resolution, box-blurred so that codec noise
averages away, thresholded above the frame's own noise level; its rows and columns that hold a
third of the busiest line's changed pixels, as one contiguous span each, are refined at full
resolution. It is the generated patch wherever the port pasted it.

`paste_position` compares the two sides frame by frame. Each side's box is measured against the
canonical rect of its own template (so a side composited on other templates is not displaced for
that), and the candidate's against where the reference's box would sit on the candidate's rect:
``dx``, ``dy`` (pixels, the box's top-left corner) and ``scale`` (width ratio). Each model below
predicts the candidate's boxes; its fit error is each frame's median absolute edge error, averaged
over all frames but the worst fifth (a measured box may sit a few pixels outside its rect, or lose
one edge, or two, where the patch fades into its template). The pattern is the model with the lowest error, and the finding
gives the runner-up's (the best model of another kind) and whether the winner is clearly lower
(at most `CLEARLY` of it):

* ``shift``: a constant offset in pixels;
* ``crop_border``: a constant offset of a whole number of crop pixels (the 320 patch placed at
  another offset inside its 328 crop), scaled with each rect's size;
* ``y_flipped``: the box at y = H - y2 (a bottom-left origin), so ``dy`` varies with the rect;
* ``x_flipped``: at x = W - x2;
* ``neighbour_rect``: the rect of another template, ``k`` images away;
* ``scaled``: the expected boxes resized by their median size ratio and moved by the median offset
  of their centres; named when the width ratio is off 1 by more than `SCALE_TOLERANCE`, it fits
  within `FITS_PX`, and at most `CLEARLY` of a constant offset's error (a patch resized straight
  into the rect, say);
* ``irregular``: a constant offset fits best, yet not within `FITS_PX`: no pattern explains the
  boxes better than a constant offset does.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from harness.diagnosis.evidence.pixels import Box, channel_max, half_size
from reference.image import CROP_SIZE

MIN_LEVEL = 6.0  # grey levels: the least blurred difference that counts as changed
SPAN_SHARE = 0.33  # a row or column belongs to the box when it holds this share of the busiest one's changes
TOLERANCE = 1.5  # pixels: positions closer than this agree
SCALE_TOLERANCE = 0.02
FITS_PX = 3.0  # a constant offset fits when its boxes sit this close (real boxes: 1-3 px outside their rect)
CLEARLY = 0.5  # a pattern is clearly the one when its error is at most this share of the runner-up's
TRIM = 0.2  # share of the frames left out of a fit error (real boxes: up to 1 in 10 measured with two edges off)
NEIGHBOURS = (-3, -2, -1, 1, 2, 3)
MAX_CROP_OFFSET = 8  # crop pixels
MIN_RESPONSE = 0.2  # phase correlation peak below which the refinement is not trusted
WHOLE_PIXEL = 0.15  # pixels: an offset this close to whole pixels is a shift, not a crop offset


def _span(profile: np.ndarray, share: float = SPAN_SHARE, gap: int = 2) -> tuple[int, int] | None:
    """The contiguous run (gaps up to `gap` bridged) of entries >= share * max around the maximum."""
    peak = int(np.argmax(profile))
    if profile[peak] <= 0:
        return None
    on = np.flatnonzero(profile >= share * profile[peak])
    breaks = np.flatnonzero(np.diff(on) > gap + 1)
    starts, ends = np.r_[0, breaks + 1], np.r_[breaks, len(on) - 1]
    k = int(np.searchsorted(on[ends], peak))
    return int(on[starts[k]]), int(on[ends[k]]) + 1


def _blurred_difference(frame: np.ndarray, template: np.ndarray, blur: int) -> np.ndarray:
    return cv2.blur(channel_max(cv2.absdiff(frame, template)), (blur, blur))


def patch_box(frame: np.ndarray, template: np.ndarray) -> Box | None:
    """The box (x1, y1, x2, y2) of what differs from the template, or None when nothing does."""
    smooth = _blurred_difference(half_size(frame), half_size(template), 3)
    level = max(MIN_LEVEL, 1.5 * float(np.percentile(smooth[::4, ::4], 90)) + 2.0)  # above the codec's noise
    half = smooth > level
    rows = _span(half.sum(axis=1))
    if rows is None or half.sum() < 16:
        return None
    cols = _span(half[rows[0]:rows[1]].sum(axis=0))
    h, w = frame.shape[:2]
    pad = 6
    y1, y2 = max(2 * rows[0] - pad, 0), min(2 * rows[1] + pad, h)
    x1, x2 = max(2 * cols[0] - pad, 0), min(2 * cols[1] + pad, w)
    fine = _blurred_difference(frame[y1:y2, x1:x2], template[y1:y2, x1:x2], 5) > level
    rows, cols = _span(fine.sum(axis=1)), _span(fine.sum(axis=0))
    if rows is None or cols is None:
        return None
    return x1 + cols[0], y1 + rows[0], x1 + cols[1], y1 + rows[1]


def refine(ref: np.ndarray, cand: np.ndarray, box_a: Box, box_b: Box) -> tuple[float, float] | None:
    """How far the content of the reference's `box_a` moved in the candidate, to a fraction of a pixel:
    the offset of the boxes' top-left corners refined by phase correlation of the grey content
    (OpenCV, Hann window). None when the boxes differ in size or the moved window leaves the frame."""
    x1, y1, x2, y2 = box_a
    w, h = x2 - x1, y2 - y1
    if abs((box_b[2] - box_b[0]) / w - 1) > SCALE_TOLERANCE or abs((box_b[3] - box_b[1]) / h - 1) > SCALE_TOLERANCE:
        return None
    ix, iy = box_b[0] - x1, box_b[1] - y1
    if x1 + ix < 0 or y1 + iy < 0 or x2 + ix > cand.shape[1] or y2 + iy > cand.shape[0] or min(w, h) < 16:
        return None
    grey = lambda img, dx, dy: cv2.cvtColor(np.ascontiguousarray(img[y1 + dy:y2 + dy, x1 + dx:x2 + dx]),  # noqa: E731
                                            cv2.COLOR_BGR2GRAY).astype(np.float32)
    (sx, sy), response = cv2.phaseCorrelate(grey(ref, 0, 0), grey(cand, ix, iy), cv2.createHanningWindow((w, h), cv2.CV_32F))
    if response < MIN_RESPONSE or max(abs(sx), abs(sy)) > 3:
        return float(ix), float(iy)
    return ix + sx, iy + sy


@dataclass(frozen=True)
class Placement:
    """One frame's boxes, the canonical rects of the templates each side was composited on, and (when
    measured) how far the reference's patch content moved in the candidate (`refine`)."""

    i: int
    box_a: Box
    rect_a: Box
    box_b: Box
    rect_b: Box
    moved: tuple[float, float] | None = None

    def expected_b(self) -> tuple[float, float, float, float]:
        """Where the reference's box would sit on the candidate's rect (same relative place and size)."""
        ax1, ay1, ax2, ay2 = self.rect_a
        bx1, by1, bx2, by2 = self.rect_b
        sx, sy = (bx2 - bx1) / (ax2 - ax1), (by2 - by1) / (ay2 - ay1)
        x1, y1, x2, y2 = self.box_a
        return (bx1 + (x1 - ax1) * sx, by1 + (y1 - ay1) * sy, bx1 + (x2 - ax1) * sx, by1 + (y2 - ay1) * sy)

    def offset(self) -> tuple[float, float, float]:
        """(dx, dy, scale) of the candidate's box against `expected_b`."""
        ex1, ey1, ex2, _ = self.expected_b()
        x1, y1, x2, _ = self.box_b
        scale = (x2 - x1) / max(ex2 - ex1, 1.0)
        if self.moved is not None:
            x1, y1 = self.box_a[0] + self.moved[0], self.box_a[1] + self.moved[1]
        return x1 - ex1, y1 - ey1, scale

    def agrees(self) -> bool:
        dx, dy, scale = self.offset()
        return abs(dx) <= TOLERANCE and abs(dy) <= TOLERANCE and abs(scale - 1.0) <= SCALE_TOLERANCE


def _fit_error(boxes: Sequence[Box], predicted: Sequence[Sequence[float] | None]) -> float | None:
    """How far a model's boxes sit from the measured ones, in pixels: each frame's median absolute edge
    error (a box a measurement cut short on one edge does not count), averaged over the frames but the
    worst `TRIM` of them (frames measured wrong); None when the model predicts fewer than half the frames."""
    per_frame = sorted(float(np.median([abs(b - p) for b, p in zip(box, pred)]))
                       for box, pred in zip(boxes, predicted) if pred is not None)
    if len(per_frame) < len(boxes) / 2:
        return None
    return float(np.mean(per_frame[:max(1, math.ceil(len(per_frame) * (1 - TRIM)))]))


def _flipped(box: Sequence[float], axis: int, size: int) -> tuple[float, ...]:
    out = list(box)
    out[axis], out[axis + 2] = size - box[axis + 2], size - box[axis]
    return tuple(out)


def _moved(box: Sequence[float], dx: float, dy: float) -> tuple[float, ...]:
    return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy


def paste_position(placements: list[Placement], shape: tuple[int, int], rects: Sequence[Box],
                   templates_b: dict[int, int]) -> dict | None:
    """The candidate's displacement and its pattern (module docstring); None when every frame agrees.
    `rects` are the pack's rects by template, `templates_b` the candidate's template per frame."""
    moved = [p for p in placements if not p.agrees()]
    if not moved or len(moved) < 0.5 * len(placements):
        return None
    h, w = shape
    boxes = [p.box_b for p in moved]
    expected = [p.expected_b() for p in moved]
    offsets = [p.offset() for p in moved]
    dx, dy = statistics.median(o[0] for o in offsets), statistics.median(o[1] for o in offsets)
    scale = statistics.median(o[2] for o in offsets)
    crop_dx = statistics.median(o[0] * CROP_SIZE / (p.rect_b[2] - p.rect_b[0]) for o, p in zip(offsets, moved))
    crop_dy = statistics.median(o[1] * CROP_SIZE / (p.rect_b[3] - p.rect_b[1]) for o, p in zip(offsets, moved))
    models = {
        "shift": [_moved(e, dx, dy) for e in expected],
        "crop_border": [_moved(e, crop_dx * (p.rect_b[2] - p.rect_b[0]) / CROP_SIZE,
                               crop_dy * (p.rect_b[3] - p.rect_b[1]) / CROP_SIZE) for e, p in zip(expected, moved)],
        "y_flipped": [_flipped(e, 1, h) for e in expected],
        "x_flipped": [_flipped(e, 0, w) for e in expected],
        "scaled": _scaled(boxes, expected),
    }
    for k in NEIGHBOURS:
        models[f"neighbour_rect{k:+d}"] = [_neighbour(p, rects, templates_b.get(p.i), k) for p in moved]
    errors = {name: err for name, pred in models.items() if (err := _fit_error(boxes, pred)) is not None}
    offset = "shift" if errors["shift"] <= errors["crop_border"] else "crop_border"
    if (abs(scale - 1.0) > SCALE_TOLERANCE and errors["scaled"] <= FITS_PX
            and errors["scaled"] <= CLEARLY * errors[offset]):
        offset = "scaled"  # a constant offset fits, yet the boxes' size tells a resized patch better
    candidates = [m for m in errors if _family(m) != "offset"] + [offset]
    ranked = sorted(candidates, key=lambda m: (errors[m], _family(m) == "offset"))  # a tie goes to the pattern
    best = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    whole = _whole(dx, WHOLE_PIXEL) and _whole(dy, WHOLE_PIXEL)
    in_crop = _whole(crop_dx) and _whole(crop_dy) and max(abs(crop_dx), abs(crop_dy)) <= MAX_CROP_OFFSET
    if _family(best) != "offset" or best == "scaled":
        pattern = best  # explains the boxes better than any constant offset, or a resized patch
    elif errors[best] > FITS_PX:
        pattern = "irregular"
    else:
        pattern = "crop_border" if in_crop and not whole else "shift"
    clear = runner_up is None or errors[best] <= CLEARLY * errors[runner_up]
    out = {"pattern": pattern,
           "frames": [p.i for p in moved], "frames_agreeing": len(placements) - len(moved),
           "reference_vs_rect": _against_rect([(p.box_a, p.rect_a) for p in placements]),
           "candidate_vs_rect": _against_rect([(p.box_b, p.rect_b) for p in placements]),
           "dx": dx, "dy": dy, "scale": scale, "model_error_px": errors[best],
           "runner_up": runner_up, "runner_up_error_px": errors.get(runner_up), "clear": clear,
           "model_errors_px": {name: errors[name] for name in ranked},
           "per_frame": [{"i": p.i, "dx": o[0], "dy": o[1], "scale": o[2], "box_a": list(p.box_a),
                          "box_b": list(p.box_b), "rect_a": list(p.rect_a), "rect_b": list(p.rect_b)}
                         for p, o in zip(moved, offsets)]}
    if pattern == "crop_border":
        out["crop_offset"] = [4 + round(crop_dx), 4 + round(crop_dy)]  # the patch's top-left in its crop
    if pattern.startswith("neighbour"):
        out["pattern"], out["neighbour"] = "neighbour_rect", int(best.removeprefix("neighbour_rect"))
    return out


def _scaled(boxes: Sequence[Box], expected: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """The expected boxes resized by the median size ratio and moved by the median offset of the centres."""
    ratio = [statistics.median((b[k + 2] - b[k]) / max(e[k + 2] - e[k], 1.0) for b, e in zip(boxes, expected))
             for k in (0, 1)]
    shift = [statistics.median((b[k] + b[k + 2] - e[k] - e[k + 2]) / 2 for b, e in zip(boxes, expected)) for k in (0, 1)]
    out = []
    for e in expected:
        centre = [(e[k] + e[k + 2]) / 2 + shift[k] for k in (0, 1)]
        half = [(e[k + 2] - e[k]) * ratio[k] / 2 for k in (0, 1)]
        out.append((centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1]))
    return out


def _family(model: str) -> str:
    """Models that read a constant offset (resized or not) are one family: one of them stands for it."""
    return "offset" if model in ("shift", "crop_border", "scaled") else model


def _against_rect(pairs: list[tuple[Box, Box]]) -> dict:
    """Where a side's boxes sit against the canonical rects of its templates: median dx, dy of the top-left
    corner (pixels) and width ratio."""
    return {"dx": statistics.median(b[0] - r[0] for b, r in pairs), "dy": statistics.median(b[1] - r[1] for b, r in pairs),
            "scale": statistics.median((b[2] - b[0]) / (r[2] - r[0]) for b, r in pairs)}


def _whole(value: float, within: float = 0.35) -> bool:
    """`value` is within `within` of a whole number (zero counts)."""
    return abs(value - round(value)) <= within


def _neighbour(p: Placement, rects: Sequence[Box], t: int | None, k: int) -> tuple[float, ...] | None:
    """The reference's box placed on the rect of template t + k instead of t's."""
    if t is None or not 0 <= t + k < len(rects):
        return None
    return Placement(p.i, p.box_a, p.rect_a, p.box_b, rects[t + k]).expected_b()
