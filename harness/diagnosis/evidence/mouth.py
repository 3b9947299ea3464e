"""Audio drive: how the mouth moves away from its template, in the candidate against the reference.

On every frame where both sides sit on the same template at the same place, each side's motion is
the grey difference between its frame and the template inside the mouth located by the template's
landmarks (the lip points 90..109 of the 110-point files, with a margin; the mask box of the face
rect when the source has no landmarks), resized to 24x24. Over the frames, in frame order, each
pixel's moving average over `SMOOTH` frames is removed: what is left is the motion the audio makes
from frame to frame, without the slow part that follows the head's pose (on real output the
generator draws the closed mouth a little differently at every pose, on both sides). Then:

* ``gain``: the regression slope of the candidate's motion on the reference's, sum(c.r) / sum(r.r):
  how much the candidate's mouth moves *along* the reference's motion (1 = as much). Noise on the
  candidate's side (codec, fp16, another paste) does not bias it, where it inflates the amplitude;
* ``amplitude_ratio``: RMS of the candidate's motion over the reference's;
* ``correlation`` and ``lag``: the Pearson correlation of the two motions with the candidate shifted
  by ``lag`` frames (its frame i against the reference's frame i + lag), at the best lag in -4..4;
  the gain and the amplitude are measured at that lag too.

Each measure has a 95 % interval from a moving-block bootstrap over the frames (blocks of `BLOCK`
frames, `RESAMPLES` resamples, a fixed seed). A reading is given only when an interval lies wholly
outside the range a faithful port shows on real output (`FAITHFUL_GAIN`, `FAITHFUL_CORRELATION`);
a point estimate outside it whose interval still reaches into it reads ``inconclusive``, with the
frames that would settle it. docs/evidence.md gives the measurements behind each bound.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harness.diagnosis.evidence.pixels import grey_thumbnail
from reference.data import read_landmarks
from reference.image import rect_mouth_box

THUMB = 24
LIPS = slice(90, 110)
MARGIN = 0.3  # of the lips' width and height
MAX_LAG = 4
SMOOTH = 7  # frames of the moving average removed (the pose's slow part)
BLOCK, RESAMPLES, SEED = 4, 1000, 0
FAITHFUL_GAIN = (0.5, 1.5)  # gain of a faithful port on real output: 0.51-0.81 over 22 frames, 0.68-0.72 over 50
FAITHFUL_CORRELATION = 0.4  # and its correlation: 0.46-0.82 over 22 frames
UNRELATED = 0.2  # correlation under this at every lag: another audio
WEAK_AMPLITUDE = 0.5  # a mouth that moves less than half as much, whatever the direction, is weak
LAG_GAIN = 0.2  # correlation a lag must gain over lag 0
MIN_MOTION = 1.0  # grey levels RMS: below this the reference's mouth does not move
MIN_FRAMES = 8
READINGS = {"weak drive": "the mouth barely follows the audio (features too small, or an encoder without its "
                          "trained weights)",
            "strong drive": "the mouth moves far more than the reference's (features too large)",
            "unrelated": "the mouth moves, but unlike the reference's at any lag (another audio, or features "
                         "that mean something else)",
            "partly wrong": "the mouth follows the audio, but only in part (features computed another way, or "
                            "mixed with something else)",
            "lag": "the mouth follows the audio with a delay (an audio offset)",
            "inconclusive": "outside a faithful port's range, but too few frames to tell"}


def mouth_box(source, t: int) -> tuple[int, int, int, int]:
    """The mouth of template `t`: its lip landmarks' box with a margin, else its rect's mask box."""
    path = _landmarks_path(source, t)
    if path is None or not path.is_file():
        return rect_mouth_box(source.rect(t))
    lips = read_landmarks(path)[LIPS]
    (x1, y1), (x2, y2) = lips.min(axis=0), lips.max(axis=0)
    mx, my = MARGIN * (x2 - x1), MARGIN * (y2 - y1)
    return int(x1 - mx), int(y1 - my), int(np.ceil(x2 + mx)) + 1, int(np.ceil(y2 + my)) + 1


def _landmarks_path(source, t: int) -> Path | None:
    if hasattr(source, "landmarks_path"):
        return source.landmarks_path(t)
    return source.root / "landmarks" / f"{t}.lms" if getattr(source, "has_landmarks", False) else None


def motion(frame: np.ndarray, template: np.ndarray, box) -> np.ndarray:
    """The frame's grey difference from its template in `box`, as a 24x24 float32 thumbnail."""
    return grey_thumbnail(frame, box, THUMB, np.float32) - grey_thumbnail(template, box, THUMB, np.float32)


def high_pass(x: np.ndarray, width: int = SMOOTH) -> np.ndarray:
    """`x` (frames first) less its moving average over `width` frames (edges: the nearest frame repeated)."""
    pad = width // 2
    padded = np.concatenate([np.repeat(x[:1], pad, axis=0), x, np.repeat(x[-1:], pad, axis=0)])
    sums = np.cumsum(np.concatenate([np.zeros_like(x[:1]), padded]), axis=0, dtype=np.float64)
    return (x - (sums[width:] - sums[:-width]) / width).astype(np.float64)


def _per_frame(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(frames, 3): each frame's r.r, c.c and r.c, the sums every measure is made of."""
    r, c = r.reshape(len(r), -1), c.reshape(len(c), -1)
    return np.stack([np.einsum("ij,ij->i", r, r), np.einsum("ij,ij->i", c, c), np.einsum("ij,ij->i", r, c)], axis=1)


def _measures(sums: np.ndarray) -> np.ndarray:
    """(gain, amplitude ratio, correlation) from summed r.r, c.c, r.c (last axis)."""
    rr, cc, rc = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(np.stack([rc / rr, np.sqrt(cc / rr), rc / np.sqrt(rr * cc)], axis=-1))


def bootstrap(per_frame: np.ndarray, block: int = BLOCK, resamples: int = RESAMPLES) -> np.ndarray:
    """95 % intervals (3, 2) of the `_measures` by a moving-block bootstrap over the frames."""
    n = len(per_frame)
    block = min(block, n)
    starts = np.random.default_rng(SEED).integers(0, n - block + 1, (resamples, math.ceil(n / block)))
    picks = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    return np.percentile(_measures(per_frame[picks].sum(axis=1)), [2.5, 97.5], axis=0).T


def _settle(n: int, estimate: float, interval, bound: float) -> int:
    """Frames an interval this wide at `n` frames needs to exclude `bound` (its width falls as 1/sqrt(n))."""
    half = (interval[1] - interval[0]) / 2
    return math.ceil(n * (half / max(abs(estimate - bound), 1e-6)) ** 2)


def _read(gain, ratio, corr, intervals, lag, corr_0, n) -> tuple[str | None, dict]:
    """The reading and, when inconclusive, which measure and how many frames would settle it."""
    (g_lo, g_hi), (r_lo, r_hi), (c_lo, c_hi) = intervals
    low, high = FAITHFUL_GAIN
    if r_hi < WEAK_AMPLITUDE or (g_hi < low and c_lo >= UNRELATED):
        return "weak drive", {}
    if lag != 0 and corr - corr_0 >= LAG_GAIN and corr >= FAITHFUL_CORRELATION:
        return "lag", {}
    if c_hi < UNRELATED:
        return "unrelated", {}
    if c_hi < FAITHFUL_CORRELATION:
        return "partly wrong", {}
    if g_lo > high:
        return "strong drive", {}
    for name, value, interval, bound, outside in (
            ("gain", gain, (g_lo, g_hi), low, gain < low), ("gain", gain, (g_lo, g_hi), high, gain > high),
            ("correlation", corr, (c_lo, c_hi), FAITHFUL_CORRELATION, corr < FAITHFUL_CORRELATION)):
        if outside:
            return "inconclusive", {"undecided": name, "frames_to_settle": _settle(n, value, interval, bound)}
    return None, {}


def audio_drive(ref: dict[int, np.ndarray], cand: dict[int, np.ndarray]) -> dict | None:
    """The measures, their intervals and the reading of the module docstring from each side's motion per
    frame index; None with too few frames or a reference mouth that does not move."""
    frames = sorted(ref.keys() & cand.keys())
    if len(frames) < MIN_FRAMES:
        return None
    r = high_pass(np.stack([ref[i] for i in frames]))
    c = high_pass(np.stack([cand[i] for i in frames]))
    rms_r, rms_c = float(np.sqrt(np.mean(r ** 2))), float(np.sqrt(np.mean(c ** 2)))
    if rms_r < MIN_MOTION:
        return None
    pos = {f: k for k, f in enumerate(frames)}
    aligned = {}  # lag -> the per-frame sums of the candidate's frame i against the reference's frame i + lag
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        pairs = [(pos[i], pos[i + lag]) for i in frames if i + lag in pos]
        if len(pairs) >= MIN_FRAMES // 2:
            aligned[lag] = _per_frame(r[[q for _, q in pairs]], c[[p for p, _ in pairs]])
    corr = {lag: float(_measures(sums.sum(axis=0))[2]) for lag, sums in aligned.items()}
    best = max(corr, key=lambda k: (corr[k], -abs(k)))
    gain, ratio, _ = (float(v) for v in _measures(aligned[best].sum(axis=0)))
    intervals = [tuple(float(v) for v in row) for row in bootstrap(aligned[best])]
    reading, undecided = _read(gain, ratio, corr[best], intervals, best, corr[0], len(frames))
    return {"reading": reading, "gain": gain, "gain_interval": list(intervals[0]), "amplitude_ratio": ratio,
            "amplitude_interval": list(intervals[1]), "correlation": corr[best], "correlation_interval":
            list(intervals[2]), "lag": best, "correlation_at_0": corr[0],
            "correlation_by_lag": {str(k): v for k, v in corr.items()}, "motion_rms": [rms_r, rms_c],
            "faithful_gain": list(FAITHFUL_GAIN), "faithful_correlation": FAITHFUL_CORRELATION, **undecided,
            "frames": list(frames)}
