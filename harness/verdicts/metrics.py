"""Frame and feature comparison metrics (docs/metrics.md: the definitions are part of the contract).

Small pure functions in the style of ``skimage.metrics``: explicit ``data_range`` and
``channel_axis``, definitions cited in each docstring. Frames are uint8 BGR ``H x W x 3`` arrays;
``frame_metrics`` computes everything for one reference/candidate pair once and derives the
regions (full frame, face rect, mouth box, outside the face) from the same absolute-difference
histograms and the same SSIM map.

SSIM equals ``skimage.metrics.structural_similarity`` with its defaults (uniform 7x7 window,
K1 = 0.01, K2 = 0.03, sample covariance, border of (win_size - 1) // 2 pixels cropped before the
mean, channel mean) to about 1e-10, and over ten times faster: one compiled pass over the rows
(``harness.verdicts.ssim_kernel``) in which the window sums are exact integers (uint8 input), so the
variance terms are computed without cancellation; only the final ratio is float32.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from harness.verdicts.ssim_kernel import channel_histograms, ssim_rows
from reference.image import check_rect, rect_mouth_box

CHANNELS = ("B", "G", "R")
REGIONS = ("full", "face", "mouth", "outside_face")
WITHIN = (1, 2, 8)  # within_k_pct: share of values with |ref - cand| <= k
SSIM_WIN_SIZE = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
_BLOCK_ROWS = 128  # SSIM map rows per task of _POOL
# The compiled kernels release the GIL: histograms and bands of SSIM rows run on one Python thread per
# CPU, started once. Idle threads sleep (numba's parallel loops, OpenMP threads, spin while they wait),
# so the metrics share a busy machine, such as a port producing the next frame, well.
_POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="metrics")


def _check_same_shape(ref: np.ndarray, cand: np.ndarray) -> None:
    if not isinstance(ref, np.ndarray) or not isinstance(cand, np.ndarray):
        raise ValueError(f"expected numpy arrays, got {type(ref).__name__} and {type(cand).__name__}")
    if ref.shape != cand.shape:
        raise ValueError(f"shape mismatch: ref {ref.shape} vs cand {cand.shape}")


def _check_uint8(ref: np.ndarray, cand: np.ndarray) -> None:
    _check_same_shape(ref, cand)
    if ref.dtype != np.uint8 or cand.dtype != np.uint8:
        raise ValueError(f"expected uint8 arrays, got ref {ref.dtype} {ref.shape} and cand {cand.dtype} {cand.shape}")


def _check_frames(ref: np.ndarray, cand: np.ndarray) -> None:
    _check_uint8(ref, cand)
    if ref.ndim != 3 or ref.shape[2] != 3:
        raise ValueError(f"expected H x W x 3 frames, got ref {ref.shape} and cand {cand.shape}")


def _channel_histograms(values: np.ndarray) -> np.ndarray:
    """C x 256 int64 counts of an H x W x C uint8 array (or view), one row per channel."""
    return channel_histograms(values.reshape(values.shape[0], -1), values.shape[2])


def _as_rows(a: np.ndarray) -> np.ndarray:
    """A 2-D view (or copy) of any array, as OpenCV takes it: one row per first-axis index."""
    return a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)


def _stats(hist: np.ndarray) -> dict:
    """pixel_stats keys plus ``mse`` from the histogram of |ref - cand| (all exact integer sums)."""
    n = int(hist.sum())
    k = np.arange(hist.size, dtype=np.int64)
    cum = np.cumsum(hist)
    out = {"identical_pct": 100.0 * int(hist[0]) / n}
    out.update({f"within_{w}_pct": 100.0 * int(cum[w]) / n for w in WITHIN})
    out["mae"] = int(k @ hist) / n
    out["max_abs"] = int(np.flatnonzero(hist)[-1])
    out["mse"] = int((k * k) @ hist) / n
    return out


def _abs_diff_stats(ref: np.ndarray, cand: np.ndarray) -> dict:
    """:func:`_stats` of |ref - cand| over every value of two same-shape uint8 arrays."""
    return _stats(channel_histograms(cv2.absdiff(_as_rows(ref), _as_rows(cand)), 1)[0])


def psnr_from_mse(mse: float, data_range: float = 255.0) -> float:
    """PSNR in dB of a mean squared error; ``math.inf`` for 0."""
    return math.inf if mse == 0 else 10.0 * math.log10(data_range * data_range / mse)


def pixel_stats(ref: np.ndarray, cand: np.ndarray) -> dict:
    """Agreement of two same-shape uint8 arrays over all their values (every channel value counts).

    ``identical_pct`` and ``within_{1,2,8}_pct``: share (in %) of values with |ref - cand| = 0 and
    <= 1, 2, 8; ``mae``: mean |ref - cand|; ``max_abs``: largest |ref - cand| (an int).
    """
    _check_uint8(ref, cand)
    if ref.size == 0:
        raise ValueError(f"nothing to compare: empty arrays of shape {ref.shape}")
    stats = _abs_diff_stats(ref, cand)
    del stats["mse"]
    return stats


def psnr(ref: np.ndarray, cand: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE); ``math.inf`` when identical.

    As ``skimage.metrics.peak_signal_noise_ratio`` with an explicit ``data_range``; any numeric dtype,
    the MSE accumulated in float64 (exactly, from the |ref - cand| histogram, for uint8).
    """
    _check_same_shape(ref, cand)
    if ref.dtype == np.uint8 and cand.dtype == np.uint8 and ref.size:
        return psnr_from_mse(_abs_diff_stats(ref, cand)["mse"], data_range)
    diff = ref.astype(np.float64) - cand.astype(np.float64)
    return psnr_from_mse(float(np.mean(diff * diff)), data_range)


@dataclass(frozen=True)
class _SsimMap:
    """The per-channel SSIM map of an image's interior, (H - 2p) x (W - 2p) x C, stored sparsely.

    Only ``block`` (float32, placed at ``row0``, ``col0``) was computed; every other window sees equal
    pixels in both images, so its SSIM is exactly 1 (numerator and denominator are the same numbers).
    """

    shape: tuple[int, int, int]
    block: np.ndarray
    block_sums: np.ndarray  # float64 per-channel sums of block
    row0: int = 0
    col0: int = 0

    def sums(self) -> np.ndarray:
        """float64 per-channel sums of the whole map."""
        return self.block_sums + (self.shape[0] * self.shape[1] - self.block.shape[0] * self.block.shape[1])

    def box_sums(self, rows: slice, cols: slice) -> tuple[np.ndarray, int]:
        """float64 per-channel sums of the map over ``[rows, cols]`` (clipped to the map), and its size."""
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        count = max(r1 - r0, 0) * max(c1 - c0, 0)
        br0, bc0 = max(r0 - self.row0, 0), max(c0 - self.col0, 0)
        br1 = min(r1 - self.row0, self.block.shape[0])
        bc1 = min(c1 - self.col0, self.block.shape[1])
        if br0 >= br1 or bc0 >= bc1:
            return np.full(self.shape[2], float(count)), count
        inside = self.block[br0:br1, bc0:bc1]
        return _channel_sums(inside) + (count - inside.shape[0] * inside.shape[1]), count

    def dense(self) -> np.ndarray:
        """The whole map as a float32 array."""
        out = np.ones(self.shape, np.float32)
        out[self.row0:self.row0 + self.block.shape[0], self.col0:self.col0 + self.block.shape[1]] = self.block
        return out


def _ssim_interior(x: np.ndarray, y: np.ndarray, data_range: float, win_size: int,
                   diff: np.ndarray | None = None) -> _SsimMap:
    """The SSIM map of uint8 H x W x C images on the interior (see :class:`_SsimMap`).

    Only the windows that touch the bounding box of the differing pixels are computed, so the result
    is bit-identical to computing every window, and a candidate that differs only in the face rect
    costs a fraction of a full frame. ``diff`` is |x - y| when the caller has it.
    """
    pad = win_size // 2
    height, width, channels = x.shape
    diff = (cv2.absdiff(x, y) if diff is None else diff).reshape(x.shape)  # cv2 drops a last axis of 1
    shape = (height - 2 * pad, width - 2 * pad, channels)
    empty = _SsimMap(shape, np.empty((0, 0, channels), np.float32), np.zeros(channels))
    differs = diff.reshape(height, width * channels)
    rows = np.flatnonzero(differs.max(axis=1))
    if rows.size == 0:
        return empty
    cols = np.flatnonzero(differs[rows[0]:rows[-1] + 1].max(axis=0)) // channels
    # interior pixel (r, c) sees image rows r..r+2p and columns c..c+2p
    r0, r1 = max(int(rows[0]) - 2 * pad, 0), min(int(rows[-1]), shape[0] - 1) + 1
    c0, c1 = max(int(cols[0]) - 2 * pad, 0), min(int(cols[-1]), shape[1] - 1) + 1
    if r0 >= r1 or c0 >= c1:
        return empty
    if 16 * (c1 - c0) >= 15 * shape[1]:  # whole rows: computing a few more windows costs less than copying
        c0, c1 = 0, shape[1]
    box = (slice(r0, r1 + 2 * pad), slice(c0, c1 + 2 * pad))
    return _SsimMap(shape, *_ssim_dense(x[box], y[box], data_range, win_size), r0, c0)


def _ssim_dense(x: np.ndarray, y: np.ndarray, data_range: float, win_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of the interior (p = (win_size - 1) // 2 pixels off every border, what skimage
    averages): float32 (H - 2p) x (W - 2p) x C, and its float64 per-channel sums (see
    ``harness.verdicts.ssim_kernel``), in bands of ``_BLOCK_ROWS`` rows on ``_POOL``."""
    height, width, channels = x.shape
    pad = win_size // 2
    n = win_size * win_size
    c1 = (SSIM_K1 * data_range * n) ** 2
    c2 = (SSIM_K2 * data_range) ** 2 * n * (n - 1)
    rows = height - 2 * pad
    out = np.empty((rows, (width - 2 * pad) * channels), np.float32)
    x, y = np.ascontiguousarray(x).reshape(height, -1), np.ascontiguousarray(y).reshape(height, -1)

    def band(r0: int) -> np.ndarray:
        r1 = min(r0 + _BLOCK_ROWS, rows)
        return ssim_rows(x[r0:r1 + 2 * pad], y[r0:r1 + 2 * pad], out[r0:r1], channels, win_size, c1, c2)

    sums = sum(_POOL.map(band, range(0, rows, _BLOCK_ROWS)))
    return out.reshape(rows, width - 2 * pad, channels), sums


def _ssim_input(a: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """``a`` as a contiguous H x W x C array: 2-D is one channel, 3-D has its channels at ``channel_axis``."""
    if a.ndim == 2:
        return np.ascontiguousarray(a)[:, :, None]
    if a.ndim != 3 or channel_axis is None:
        raise ValueError(f"expected a 2-D image or a 3-D image with a channel_axis, got shape {a.shape}")
    return np.ascontiguousarray(np.moveaxis(a, channel_axis, -1))


def _ssim_prepare(ref: np.ndarray, cand: np.ndarray, data_range: float, win_size: int,
                  channel_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    _check_uint8(ref, cand)
    x, y = _ssim_input(ref, channel_axis), _ssim_input(cand, channel_axis)
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"win_size must be odd and >= 3, got {win_size}")
    if min(x.shape[:2]) < win_size:
        raise ValueError(f"win_size {win_size} exceeds the image extent {x.shape[:2]}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return x, y


def _channel_sums(m: np.ndarray) -> np.ndarray:
    """float64 per-channel sums of an H x W x C float32 array (cv2.sumElems: 4 channels at a time)."""
    c = m.shape[2]
    return np.array([s for i in range(0, c, 4) for s in cv2.sumElems(m[:, :, i:i + 4])[:min(4, c - i)]])


def ssim(ref: np.ndarray, cand: np.ndarray, data_range: float = 255.0, win_size: int = SSIM_WIN_SIZE,
         channel_axis: int | None = -1) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004, IEEE TIP 13(4):600-612).

    Exactly ``skimage.metrics.structural_similarity(ref, cand, data_range=data_range,
    win_size=win_size, channel_axis=channel_axis)`` with its other defaults: uniform window,
    K1 = 0.01, K2 = 0.03, sample covariance (N / (N - 1)), the mean taken after cropping
    (win_size - 1) // 2 pixels from every border, then averaged over channels. uint8 images only;
    a 2-D image is one channel (``channel_axis`` then is ignored).
    """
    x, y = _ssim_prepare(ref, cand, data_range, win_size, channel_axis)
    smap = _ssim_interior(x, y, data_range, win_size)
    return float(smap.sums().mean() / (smap.shape[0] * smap.shape[1]))


def ssim_map(ref: np.ndarray, cand: np.ndarray, data_range: float = 255.0, win_size: int = SSIM_WIN_SIZE,
             channel_axis: int | None = -1) -> np.ndarray:
    """Per-pixel SSIM averaged over channels, float32 H x W (the ``full=True`` map of :func:`ssim`).

    The (win_size - 1) // 2 pixel border, which skimage computes from reflected pixels and then
    ignores, is NaN here; ``np.nanmean`` over a region gives that region's mean SSIM.
    """
    x, y = _ssim_prepare(ref, cand, data_range, win_size, channel_axis)
    pad = win_size // 2
    out = np.full(x.shape[:2], np.nan, np.float32)
    out[pad:-pad, pad:-pad] = _ssim_interior(x, y, data_range, win_size).dense().mean(axis=2)
    return out


def region_masks(shape: Sequence[int], rect: Sequence[int], mouth_box: Sequence[int]) -> dict:
    """The comparison regions of a frame of ``shape`` (H, W[, C]), rects as (x1, y1, x2, y2), ends exclusive.

    "full", "face" (``rect``) and "mouth" (``mouth_box``, see ``reference.image.rect_mouth_box``)
    are (row slice, column slice) pairs; "outside_face" is a bool H x W mask, True outside ``rect``.
    """
    height, width = int(shape[0]), int(shape[1])
    x1, y1, x2, y2 = check_rect(rect, shape)
    mx1, my1, mx2, my2 = check_rect(mouth_box, shape)
    outside = np.ones((height, width), bool)
    outside[y1:y2, x1:x2] = False
    return {
        "full": (slice(0, height), slice(0, width)),
        "face": (slice(y1, y2), slice(x1, x2)),
        "mouth": (slice(my1, my2), slice(mx1, mx2)),
        "outside_face": outside,
    }


def _region_ssims(smap: _SsimMap, rect: tuple, mouth_box: tuple, pad: int) -> dict:
    """Per-channel mean SSIM of each region from the interior map (frame pixel (r, c) is smap[r - pad, c - pad]).

    A crop's SSIM, skimage on the crop, averages the crop's interior, whose windows lie wholly in the
    crop: the full-frame map over the box shrunk by ``pad`` on each side. "outside_face" averages
    the map over its pixels outside ``rect``.
    """
    win_size = 2 * pad + 1
    out = {}
    for name, (x1, y1, x2, y2) in (("face", rect), ("mouth", mouth_box)):
        if x2 - x1 < win_size or y2 - y1 < win_size:
            raise ValueError(f"{name} box (x1={x1}, y1={y1}, x2={x2}, y2={y2}) is smaller than the "
                             f"{win_size}x{win_size} SSIM window")
        sums, count = smap.box_sums(slice(y1, y2 - 2 * pad), slice(x1, x2 - 2 * pad))
        out[name] = sums / count
    full_count = smap.shape[0] * smap.shape[1]
    x1, y1, x2, y2 = rect
    rows = slice(max(y1 - pad, 0), min(y2 - pad, smap.shape[0]))
    cols = slice(max(x1 - pad, 0), min(x2 - pad, smap.shape[1]))
    face_sums, face_count = smap.box_sums(rows, cols)
    full_sums = smap.sums()
    if face_count == full_count:
        raise ValueError(f"rect {rect} covers the whole SSIM interior of the frame: nothing is outside the face")
    out["full"] = full_sums / full_count
    out["outside_face"] = (full_sums - face_sums) / (full_count - face_count)
    return out


def _region_entry(hists: np.ndarray, ssims: np.ndarray, data_range: float) -> dict:
    """One region of frame_metrics from its per-channel |diff| histograms and per-channel mean SSIM."""
    def entry(hist: np.ndarray, ssim_value: float) -> dict:
        stats = _stats(hist)
        stats["psnr"] = psnr_from_mse(stats.pop("mse"), data_range)
        stats["ssim"] = float(ssim_value)
        return stats

    out = entry(hists.sum(axis=0), ssims.mean())
    out["channels"] = {name: entry(hists[c], ssims[c]) for c, name in enumerate(CHANNELS)}
    return out


def frame_metrics(ref: np.ndarray, cand: np.ndarray, rect: Sequence[int]) -> dict:
    """All frame metrics of a uint8 BGR pair (data range 255), per region of :func:`region_masks`.

    ``rect`` is the face rect (x1, y1, x2, y2); the mouth box is ``rect_mouth_box(rect)``. Each
    region maps to the :func:`pixel_stats` keys, "psnr" and "ssim" over all its channel values, and
    "channels": the same per channel, {"B": {...}, "G": {...}, "R": {...}}; a region's SSIM is its
    channel mean. "face" and "mouth" SSIM are those of the crops (``ssim(ref[crop], cand[crop])``);
    "outside_face" SSIM is the mean of the full-frame SSIM map over the pixels outside the rect
    within the map's interior (the frame less its 3 pixel border), so the windows of pixels next to
    the rect reach into it. ValueError for frames that are not equal-shape H x W x 3 uint8, a rect
    outside the frame or covering its SSIM interior, a face or mouth box smaller than 7x7.
    """
    _check_frames(ref, cand)
    rect = check_rect(rect, ref.shape)
    mouth_box = rect_mouth_box(rect)
    regions = region_masks(ref.shape, rect, mouth_box)
    diff = cv2.absdiff(ref, cand)
    hist_jobs = {name: _POOL.submit(_channel_histograms, diff[regions[name]]) for name in ("full", "face", "mouth")}
    smap = _ssim_interior(ref, cand, 255.0, SSIM_WIN_SIZE, diff)
    hists = {name: job.result() for name, job in hist_jobs.items()}
    hists["outside_face"] = hists["full"] - hists["face"]
    ssims = _region_ssims(smap, rect, mouth_box, SSIM_WIN_SIZE // 2)
    return {name: _region_entry(hists[name], ssims[name], 255.0) for name in REGIONS}


def feature_drift(ref: np.ndarray, cand: np.ndarray) -> dict:
    """Drift of a candidate feature array from the reference's, both taken as float64.

    ``max_abs`` and ``mean_abs`` of cand - ref; ``rel_l2`` = ||cand - ref||_2 / ||ref||_2 (0 when both
    are zero, inf when only ref is); ``cosine`` of the flattened arrays (1 when both are zero, 0 when
    only one is). ValueError when the shapes differ or the arrays are empty.
    """
    a, b = np.asarray(ref, np.float64), np.asarray(cand, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: ref {a.shape} vs cand {b.shape}")
    if a.size == 0:
        raise ValueError(f"nothing to compare: empty arrays of shape {a.shape}")
    a, b = a.ravel(), b.ravel()
    diff = b - a
    norm_a, norm_b, norm_diff = (float(np.linalg.norm(v)) for v in (a, b, diff))
    diff = np.abs(diff, out=diff)
    if norm_a == 0:
        rel_l2 = 0.0 if norm_diff == 0 else math.inf
    else:
        rel_l2 = norm_diff / norm_a
    if norm_a == 0 or norm_b == 0:
        cosine = 1.0 if norm_a == norm_b else 0.0
    else:
        cosine = float(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0))
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "rel_l2": rel_l2, "cosine": cosine}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays over all their values (as float64); 0 when either is constant."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / den if den > 0 else 0.0


def common_rows(ref: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two stage arrays as float64 over the rows both have (arrays that differ only in length: a port
    dumping the whole clip, the reference only what its frames use); ValueError when their rows differ
    in shape or one is empty."""
    a, b = np.asarray(ref, np.float64), np.asarray(cand, np.float64)
    if a.shape[1:] != b.shape[1:] or not len(a) or not len(b):
        raise ValueError(f"rows of shape {a.shape[1:]} and {b.shape[1:]} ({len(a)} and {len(b)} rows)")
    n = min(len(a), len(b))
    return a[:n], b[:n]


def stage_drift(ref: np.ndarray, cand: np.ndarray) -> dict:
    """`feature_drift` of two stage arrays over their common rows (`common_rows`), with ``rows``."""
    a, b = common_rows(ref, cand)
    return {**feature_drift(a, b), "rows": len(a)}
