"""Audio drive: how the mouth moves away from its template, in the candidate against the reference.

On every frame where both sides sit on the same template at the same place, each side's motion is
the grey difference between its frame and the template inside the mouth located by the template's
landmarks (the lip points 90..109 of the 110-point files, with a margin; the mask box of the face
rect when the source has no landmarks), resized to 24x24. Over the frames, each pixel's mean is
removed, leaving what the audio changes from frame to frame. Then:

* ``amplitude_ratio``: RMS of the candidate's motion over the reference's;
* ``correlation`` and ``lag``: the Pearson correlation of the two motions with the candidate shifted
  by ``lag`` frames (its frame i against the reference's frame i + lag), at the best lag in -4..4.

Read as: weak drive (amplitude under `WEAK`: features too small, or an encoder without its weights),
strong drive (over `STRONG`), unrelated (correlation under `UNRELATED` at every lag: another audio,
or features that mean something else), a lag (an audio offset), or nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.diagnosis.evidence.pixels import grey_thumbnail
from harness.verdicts.metrics import pearson
from reference.data import read_landmarks
from reference.image import rect_mouth_box

THUMB = 24
LIPS = slice(90, 110)
MARGIN = 0.3  # of the lips' width and height
MAX_LAG = 4
WEAK, STRONG = 0.5, 2.0
UNRELATED = 0.2
LAG_GAIN = 0.2  # correlation a lag must gain over lag 0
MIN_MOTION = 1.0  # grey levels RMS: below this the reference's mouth does not move
MIN_FRAMES = 8


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


def audio_drive(ref: dict[int, np.ndarray], cand: dict[int, np.ndarray]) -> dict | None:
    """The measures and reading of the module docstring from each side's motion per frame index;
    None with too few frames or a reference mouth that does not move."""
    frames = sorted(ref.keys() & cand.keys())
    if len(frames) < MIN_FRAMES:
        return None
    r = np.stack([ref[i] for i in frames])
    c = np.stack([cand[i] for i in frames])
    r -= r.mean(axis=0)
    c -= c.mean(axis=0)
    rms_r, rms_c = float(np.sqrt(np.mean(r ** 2))), float(np.sqrt(np.mean(c ** 2)))
    if rms_r < MIN_MOTION:
        return None
    pos = {f: k for k, f in enumerate(frames)}
    corr = {}
    for lag in range(-MAX_LAG, MAX_LAG + 1):
        pairs = [(pos[i], pos[i + lag]) for i in frames if i + lag in pos]
        if len(pairs) >= MIN_FRAMES // 2:
            corr[lag] = pearson(c[[p for p, _ in pairs]], r[[q for _, q in pairs]])
    best = max(corr, key=lambda k: (corr[k], -abs(k)))
    ratio = rms_c / rms_r
    if ratio < WEAK:
        reading = "weak drive"
    elif ratio > STRONG:
        reading = "strong drive"
    elif corr[best] < UNRELATED:
        reading = "unrelated"
    elif best != 0 and corr[best] - corr.get(0, 0.0) >= LAG_GAIN:
        reading = "lag"
    else:
        reading = None
    return {"reading": reading, "amplitude_ratio": ratio, "correlation": corr[best], "lag": best,
            "correlation_at_0": corr.get(0), "correlation_by_lag": {str(k): v for k, v in corr.items()},
            "motion_rms": [rms_r, rms_c], "frames": [i for i in frames]}
