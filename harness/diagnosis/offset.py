"""Temporal offset: is the candidate the reference shifted by a constant number of frames?

A port that drops or repeats its first frame, or starts its frame counter at the wrong index, makes
every frame differ although each one is right. Candidate frame i is compared with reference frame
i + d, for d in -3..+3, on the 32x32 grey thumbnail of reference frame i + d's mouth box (the face
rect moves from frame to frame, so both are cut at the same place); a shift that brings the mouth
difference under a quarter of the unshifted one explains the divergence.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.diagnosis.audio import mouth_thumbnail

MAX_SHIFT = 3
EXPLAINS_BELOW = 0.25  # shifted mouth difference / unshifted one


def shifted_difference(cand: Sequence[np.ndarray], ref_mouths: np.ndarray, rects: Sequence, shift: int) -> float | None:
    """Mean absolute grey-level difference between the mouth thumbnails of candidate frame i and
    reference frame i + shift (``ref_mouths``, cut at ``rects``) over the frames both have; None when
    they share fewer than two."""
    pairs = [(i, i + shift) for i in range(len(cand)) if 0 <= i + shift < len(ref_mouths)]
    if len(pairs) < 2:
        return None
    return float(np.mean([np.mean(np.abs(mouth_thumbnail(cand[i], rects[j]).astype(np.float32) - ref_mouths[j]))
                          for i, j in pairs]))


def temporal_offset(cand: Sequence[np.ndarray], ref_mouths: np.ndarray, rects: Sequence,
                    max_shift: int = MAX_SHIFT) -> dict | None:
    """The best constant frame shift of the candidate's first frames ``cand`` against the reference
    (its mouth thumbnails and face rects per frame).

    Returns {"offset", "difference" (per shift), "explains", "text"}, or None when the run is too
    short to test every shift. "offset" d > 0 means candidate frame i shows reference frame i + d.
    """
    if min(len(cand), len(ref_mouths)) < max_shift + 2:
        return None
    diffs = {d: shifted_difference(cand, ref_mouths, rects, d) for d in range(-max_shift, max_shift + 1)}
    diffs = {d: v for d, v in diffs.items() if v is not None}
    best = min(diffs, key=lambda d: (diffs[d], abs(d)))
    explains = best != 0 and diffs[best] < EXPLAINS_BELOW * diffs[0]
    out = {"offset": best if explains else 0, "difference": {str(d): v for d, v in diffs.items()},
           "frames": len(cand), "explains": explains}
    if explains:
        way = "ahead of" if best > 0 else "behind"
        out["text"] = (f"frame offset {best:+d}: the candidate runs {abs(best)} frame{'s' * (abs(best) > 1)} {way} "
                       f"the reference (its frame i matches reference frame i{best:+d}: mouth difference "
                       f"{diffs[best]:.2f} grey levels, unshifted {diffs[0]:.2f})")
    return out
