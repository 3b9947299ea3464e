"""Temporal offset: is the candidate the reference shifted by a constant number of frames?

A port that drops or repeats its first frame, or starts its frame counter at the wrong index, makes
every frame differ although each one is right. Compared on the 32x32 mouth thumbnails both runs
keep (see ``diagnosis.audio``), candidate frame i is matched against reference frame i + d for
d in -3..+3; a shift that brings the mouth difference under a quarter of the unshifted one explains
the divergence.
"""
from __future__ import annotations

import numpy as np

MAX_SHIFT = 3
EXPLAINS_BELOW = 0.25  # shifted mouth difference / unshifted one


def shifted_difference(cand: np.ndarray, ref: np.ndarray, shift: int) -> float | None:
    """Mean absolute grey-level difference of candidate frame i and reference frame i + shift over the
    frames both have; None when they share fewer than two."""
    start, stop = max(0, -shift), min(len(cand), len(ref) - shift)
    if stop - start < 2:
        return None
    a = cand[start:stop].astype(np.float32)
    b = ref[start + shift:stop + shift].astype(np.float32)
    return float(np.mean(np.abs(a - b)))


def temporal_offset(cand: np.ndarray, ref: np.ndarray, max_shift: int = MAX_SHIFT) -> dict | None:
    """The best constant frame shift of ``cand`` against ``ref`` (frames x 32 x 32 mouth thumbnails).

    Returns {"offset", "difference" (per shift), "explains", "text"}, or None when the runs are too
    short to test every shift. "offset" d > 0 means candidate frame i shows reference frame i + d.
    """
    if min(len(cand), len(ref)) < max_shift + 2:
        return None
    diffs = {d: shifted_difference(cand, ref, d) for d in range(-max_shift, max_shift + 1)}
    diffs = {d: v for d, v in diffs.items() if v is not None}
    best = min(diffs, key=lambda d: (diffs[d], abs(d)))
    explains = best != 0 and diffs[best] < EXPLAINS_BELOW * diffs[0]
    out = {"offset": best if explains else 0, "difference": {str(d): v for d, v in diffs.items()},
           "explains": explains}
    if explains:
        way = "ahead of" if best > 0 else "behind"
        out["text"] = (f"frame offset {best:+d}: the candidate runs {abs(best)} frame{'s' * (abs(best) > 1)} {way} "
                       f"the reference (its frame i matches reference frame i{best:+d}: mouth difference "
                       f"{diffs[best]:.2f} grey levels, unshifted {diffs[0]:.2f})")
    return out
