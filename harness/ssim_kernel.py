"""The SSIM map kernel: one pass over the rows of a uint8 image pair, compiled with numba.

For every window of ``win x win`` pixels the sums Sx, Sy, Sxy and Sdd (d = x - y) are kept as
float64 values that are exact integers: the column sums slide down the rows (one row added, one
removed), the window sums are differences of a per-row prefix sum. With N = win^2,
skimage's (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)), v the sample
(co)variances, equals 4 (P + c1/2)(V + c2/2) / ((D + 2P + c1)(W + c2)) with P = Sx Sy,
D = (Sx - Sy)^2, V = N Sxy - P, W = N Sdd + 2V - D, c1 = C1 N^2, c2 = C2 N (N - 1): every term
but c1 and c2 an integer below 2^53, so the variances suffer no cancellation; the ratio is taken in
float64 and stored as float32. The floating-point flags allow
reassociation and fused multiply-add (exact on these integers) but no approximate division.
Blocks of rows run on numba's threads; ``nogil`` lets other Python threads run meanwhile.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit, prange
from numba.core.caching import CacheImpl, UserProvidedCacheLocator

from harness.userdirs import writable_dir

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


@njit(cache=True, nogil=True, fastmath=_FLAGS)
def _prefix_sums(v: np.ndarray, out: np.ndarray, channels: int) -> None:  # pragma: no cover - compiled
    """out[f + channels] = sum of v[g] for g <= f with g = f (mod channels): per-channel prefix sums of a
    row whose channels are interleaved. Three channels (colour frames) keep their sums in registers;
    the general loop's sums go through memory (tests/benchmarks/test_speed.py times the SSIM)."""
    if channels == 3:
        s0 = s1 = s2 = 0.0
        for f in range(0, v.shape[0] - 2, 3):
            s0 += v[f]
            s1 += v[f + 1]
            s2 += v[f + 2]
            out[f + 3] = s0
            out[f + 4] = s1
            out[f + 5] = s2
    else:
        for f in range(v.shape[0]):
            out[f + channels] = out[f] + v[f]


@njit(cache=True, parallel=True, nogil=True, fastmath=_FLAGS)
def ssim_rows(x: np.ndarray, y: np.ndarray, out: np.ndarray, channels: int, win: int, c1: float, c2: float,
              block: int) -> np.ndarray:  # pragma: no cover - compiled; tested through harness.metrics
    """Write the SSIM map of uint8 images ``x``, ``y`` (H x W*C, channels interleaved) into ``out``
    ((H - win + 1) x (W - win + 1)*C float32); return its per-block, per-channel float64 sums."""
    width = x.shape[1]
    n = float(win * win)
    rows, cols = out.shape
    span = win * channels
    blocks = (rows + block - 1) // block
    sums = np.zeros((blocks, channels))
    for b in prange(blocks):
        r0 = b * block
        r1 = min(r0 + block, rows)
        vx, vy, vxy, vdd = np.zeros(width), np.zeros(width), np.zeros(width), np.zeros(width)
        cx, cy = np.zeros(width + channels), np.zeros(width + channels)
        cxy, cdd = np.zeros(width + channels), np.zeros(width + channels)
        for r in range(r0, r0 + win):
            for f in range(width):
                a, e = float(x[r, f]), float(y[r, f])
                vx[f] += a
                vy[f] += e
                vxy[f] += a * e
                vdd[f] += (a - e) * (a - e)
        for r in range(r0, r1):
            if r > r0:  # slide the column sums down: row r + win - 1 enters, row r - 1 leaves
                new, old = r + win - 1, r - 1
                for f in range(width):
                    a, e = float(x[new, f]), float(y[new, f])
                    a0, e0 = float(x[old, f]), float(y[old, f])
                    vx[f] += a - a0
                    vy[f] += e - e0
                    vxy[f] += a * e - a0 * e0
                    vdd[f] += (a - e) * (a - e) - (a0 - e0) * (a0 - e0)
            _prefix_sums(vx, cx, channels)
            _prefix_sums(vy, cy, channels)
            _prefix_sums(vxy, cxy, channels)
            _prefix_sums(vdd, cdd, channels)
            for f in range(cols):
                sx, sy = cx[f + span] - cx[f], cy[f + span] - cy[f]
                sxy, sdd = cxy[f + span] - cxy[f], cdd[f + span] - cdd[f]
                p = sx * sy
                d = (sx - sy) * (sx - sy)
                v = n * sxy - p
                w = n * sdd + 2.0 * v - d
                out[r, f] = 4.0 * (p + 0.5 * c1) * (v + 0.5 * c2) / ((d + 2.0 * p + c1) * (w + c2))
            for c in range(channels):
                total = 0.0
                for f in range(c, cols, channels):
                    total += out[r, f]
                sums[b, c] += total
    return sums
