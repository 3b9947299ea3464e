"""Audio dependence: does a backend's mouth region move with its input audio?

A port that ignores its input audio (the "ghost audio" bug: it replays the training clip's
features) gives the same mouth for speech and for silence. Each run keeps a 32x32 grey thumbnail
of the mouth box of every frame; across the audio matrix, a backend whose mouth changes by less
than a tenth of what the reference's does is flagged.
"""
from __future__ import annotations

import numpy as np

from harness.diagnosis.evidence.pixels import grey_thumbnail
from reference.image import rect_mouth_box

THUMB = 32
IGNORES_BELOW = 0.1  # candidate change / reference change
MIN_REFERENCE_CHANGE = 0.5  # grey levels: below this the audios do not move the reference's mouth either


def mouth_thumbnail(frame: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
    """32x32 grey thumbnail (uint8) of the frame's mouth box."""
    return grey_thumbnail(frame, rect_mouth_box(rect), THUMB)


def mouth_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (grey levels) between two runs' mouth thumbnails, over their common frames."""
    n = min(len(a), len(b))
    return float(np.mean(np.abs(a[:n].astype(np.float32) - b[:n].astype(np.float32)))) if n else 0.0


def audio_dependence(candidate: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict | None:
    """Compare how much the candidate's and the reference's mouths change between the first audio and
    each other one; None with fewer than two audios. "ignores_input_audio" is set when the candidate
    changes by less than IGNORES_BELOW of the reference (and the reference itself moves)."""
    audios = [a for a in candidate if a in reference]
    if len(audios) < 2:
        return None
    first = audios[0]
    pairs = []
    for other in audios[1:]:
        cand = mouth_change(candidate[first], candidate[other])
        ref = mouth_change(reference[first], reference[other])
        pairs.append({"audios": [first, other], "mouth_change": cand, "reference_mouth_change": ref,
                      "ratio": cand / ref if ref > 0 else None})
    ignores = all(p["reference_mouth_change"] >= MIN_REFERENCE_CHANGE and p["ratio"] is not None
                  and p["ratio"] < IGNORES_BELOW for p in pairs)
    out = {"pairs": pairs, "ignores_input_audio": ignores}
    if ignores:
        p = pairs[0]
        out["text"] = (f"output ignores the input audio: its mouth region changes by {p['mouth_change']:.2f} grey "
                       f"levels between {p['audios'][0]} and {p['audios'][1]}, the reference's by "
                       f"{p['reference_mouth_change']:.2f}")
    return out
