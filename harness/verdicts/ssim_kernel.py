"""The compiled kernels of ``harness.verdicts.metrics`` (numba): the SSIM map, one pass over the rows of a uint8
image pair, and per-channel histograms.

For every window of ``win x win`` pixels the sums Sx, Sy, Sxy and Sdd (d = x - y) are kept as
float64 values that are exact integers: the column sums slide down the rows (one row added, one
removed), the window sums are differences of a per-row prefix sum. With N = win^2,
skimage's (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)), v the sample
(co)variances, equals 4 (P + c1/2)(V + c2/2) / ((D + 2P + c1)(W + c2)) with P = Sx Sy,
D = (Sx - Sy)^2, V = N Sxy - P, W = N Sdd + 2V - D, c1 = C1 N^2, c2 = C2 N (N - 1): every term
but c1 and c2 an integer below 2^53, so the variances suffer no cancellation; the ratio is taken in
float64 and stored as float32. The floating-point flags allow
reassociation and fused multiply-add (exact on these integers) but no approximate division; numpy's
error model (no ZeroDivisionError check: the denominator is positive) lets the ratio loop vectorize.
The kernels release the GIL (``nogil``): ``harness.verdicts.metrics`` runs bands of rows on Python threads.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit
from numba.core.caching import CacheImpl, UserProvidedCacheLocator

from harness.system.userdirs import writable_dir

_FLAGS = {"reassoc", "nsz", "contract", "nnan", "ninf"}


class _UserCacheLocator(UserProvidedCacheLocator):
    """numba's cache of this module's kernels in the user cache ($SYNCTALK_PARITY_CACHE/numba, default
    ~/.cache/synctalk-parity/numba), never beside the source, so a read-only install works."""

    def __init__(self, py_func, py_file) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(writable_dir("numba") / self.get_suitable_cache_subpath(py_file))

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.abspath(py_file) != os.path.abspath(__file__):
            return None  # another module's function: numba's own locators
        return super(UserProvidedCacheLocator, cls).from_function(py_func, py_file)


if _UserCacheLocator not in CacheImpl._locator_classes:
    CacheImpl._locator_classes.insert(0, _UserCacheLocator)


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def _prefix_sums(v: np.ndarray, out: np.ndarray, channels: int) -> None:  # pragma: no cover - compiled
    """out[f + channels] = sum of v[g] for g <= f with g = f (mod channels): per-channel prefix sums of a
    row whose channels are interleaved (any channel count; the sums go through memory)."""
    for f in range(v.shape[0]):
        out[f + channels] = out[f] + v[f]


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def _prefix_sums3(vx: np.ndarray, vy: np.ndarray, vxy: np.ndarray, vdd: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                  cxy: np.ndarray, cdd: np.ndarray) -> None:  # pragma: no cover - compiled
    """:func:`_prefix_sums` of four three-channel rows (colour frames) in one loop, the twelve sums in
    registers (tests/benchmarks/test_speed.py times the SSIM)."""
    x0 = x1 = x2 = y0 = y1 = y2 = p0 = p1 = p2 = d0 = d1 = d2 = 0.0
    for f in range(0, vx.shape[0] - 2, 3):
        x0 += vx[f]
        x1 += vx[f + 1]
        x2 += vx[f + 2]
        y0 += vy[f]
        y1 += vy[f + 1]
        y2 += vy[f + 2]
        p0 += vxy[f]
        p1 += vxy[f + 1]
        p2 += vxy[f + 2]
        d0 += vdd[f]
        d1 += vdd[f + 1]
        d2 += vdd[f + 2]
        cx[f + 3], cx[f + 4], cx[f + 5] = x0, x1, x2
        cy[f + 3], cy[f + 4], cy[f + 5] = y0, y1, y2
        cxy[f + 3], cxy[f + 4], cxy[f + 5] = p0, p1, p2
        cdd[f + 3], cdd[f + 4], cdd[f + 5] = d0, d1, d2


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def _ssim_row(cx: np.ndarray, cy: np.ndarray, cxy: np.ndarray, cdd: np.ndarray, span: int, n: float, c1: float,
              c2: float, row: np.ndarray, acc: np.ndarray) -> None:  # pragma: no cover - compiled
    """One row of the map from the prefix sums (window f: sums [f, f + span)); ``acc`` += the row. The
    window ends are views, not ``f + span`` indices, which numba would wrap (a gather per load)."""
    ex, ey, exy, edd = cx[span:], cy[span:], cxy[span:], cdd[span:]
    for f in range(row.shape[0]):
        sx, sy = ex[f] - cx[f], ey[f] - cy[f]
        sxy, sdd = exy[f] - cxy[f], edd[f] - cdd[f]
        p = sx * sy
        d = (sx - sy) * (sx - sy)
        v = n * sxy - p
        w = n * sdd + 2.0 * v - d
        value = np.float32(4.0 * (p + 0.5 * c1) * (v + 0.5 * c2) / ((d + 2.0 * p + c1) * (w + c2)))
        row[f] = value
        acc[f] += value


@njit(cache=True, nogil=True, fastmath=_FLAGS, error_model="numpy")
def ssim_rows(x: np.ndarray, y: np.ndarray, out: np.ndarray, channels: int, win: int, c1: float,
              c2: float) -> np.ndarray:  # pragma: no cover - compiled; tested through harness.verdicts.metrics
    """Write the SSIM map of uint8 images ``x``, ``y`` (H x W*C, channels interleaved) into ``out``
    ((H - win + 1) x (W - win + 1)*C float32); return its per-channel float64 sums."""
    width = x.shape[1]
    n = float(win * win)
    rows, cols = out.shape
    vx, vy, vxy, vdd = np.zeros(width), np.zeros(width), np.zeros(width), np.zeros(width)
    cx, cy = np.zeros(width + channels), np.zeros(width + channels)
    cxy, cdd = np.zeros(width + channels), np.zeros(width + channels)
    acc = np.zeros(cols)
    for r in range(win):
        for f in range(width):
            a, e = float(x[r, f]), float(y[r, f])
            vx[f] += a
            vy[f] += e
            vxy[f] += a * e
            vdd[f] += (a - e) * (a - e)
    for r in range(rows):
        if r > 0:  # slide the column sums down: row r + win - 1 enters, row r - 1 leaves
            new, old = r + win - 1, r - 1
            for f in range(width):
                a, e = float(x[new, f]), float(y[new, f])
                a0, e0 = float(x[old, f]), float(y[old, f])
                vx[f] += a - a0
                vy[f] += e - e0
                vxy[f] += a * e - a0 * e0
                vdd[f] += (a - e) * (a - e) - (a0 - e0) * (a0 - e0)
        if channels == 3:
            _prefix_sums3(vx, vy, vxy, vdd, cx, cy, cxy, cdd)
        else:
            _prefix_sums(vx, cx, channels)
            _prefix_sums(vy, cy, channels)
            _prefix_sums(vxy, cxy, channels)
            _prefix_sums(vdd, cdd, channels)
        _ssim_row(cx, cy, cxy, cdd, win * channels, n, c1, c2, out[r], acc)
    sums = np.zeros(channels)
    for f in range(cols):
        sums[f % channels] += acc[f]
    return sums


@njit(cache=True, nogil=True, error_model="numpy")
def channel_histograms(values: np.ndarray, channels: int) -> np.ndarray:  # pragma: no cover - compiled
    """channels x 256 int64 counts of a uint8 array of rows (H x W*C, channels interleaved), per channel.
    Each channel counts in four partial histograms (pixels 4k, 4k + 1, ...), so that runs of equal
    values do not wait on one counter."""
    lanes = 4 * channels
    counts = np.zeros((lanes, 256), np.int64)
    for r in range(values.shape[0]):
        row = values[r]
        end = row.shape[0] - row.shape[0] % lanes
        for f in range(0, end, lanes):
            for k in range(lanes):
                counts[k, row[f + k]] += 1
        for f in range(end, row.shape[0]):
            counts[f % channels, row[f]] += 1
    return counts.reshape(4, channels, 256).sum(axis=0)
