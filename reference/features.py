"""Per-frame audio features: padding of the encoder embeddings and the generator's (32,16,16) windows."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from reference.errors import InputError

WINDOW_ROWS = 16  # rows i-8 .. i+7 of the padded features
EMB_DIM = 512
FEATURES_FILE = "aud_ave.bin"


def read_features_file(path: str | Path) -> np.ndarray:
    """A pack's fixed audio features `aud_ave.bin`: little-endian float32 rows of 512 -> (N, 512).

    SyncTalk_2D's training clip features, already padded like `pad_features` (Sanders: 522 rows,
    rows 0 = 1 and 520 = 521, for 523 frames). A port reading it instead of its input audio is
    the "ghost audio" bug.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "fixed audio features file not found",
                         f"audio_source=aud_ave needs the pack's {FEATURES_FILE}; use audio_source=wav")
    data = np.fromfile(path, dtype="<f4")
    if data.size == 0 or data.size % EMB_DIM:
        raise InputError(path, f"holds {data.size} float32 values, not a whole number of {EMB_DIM}-value rows")
    return data.reshape(-1, EMB_DIM).astype(np.float32)


def pad_features(emb: np.ndarray, padding: str = "edge") -> np.ndarray:
    """`[e0, e0..e(n-1), e(n-1)]` (canonical "edge", as inference_328.py) or the embeddings as they are ("none")."""
    if emb.ndim != 2 or emb.shape[1] != EMB_DIM:
        raise ValueError(f"expected embeddings of shape (N, {EMB_DIM}), got {emb.shape}")
    if padding == "none":
        return emb.copy()
    if padding != "edge":
        raise ValueError(f"unknown feature padding {padding!r}; choose edge or none")
    return np.concatenate([emb[:1], emb, emb[-1:]])


def audio_window(feats: np.ndarray, i: int, mode: str = "window", offset: int = 0) -> np.ndarray:
    """Generator audio input (1, 32, 16, 16) of frame `i`.

    "window" (canonical): rows i-8 .. i+7 of `feats`, zero rows outside. "tile": row i repeated
    16 times. `offset` shifts the row the frame reads (frame i uses row i + offset).
    """
    centre = i + offset
    if mode == "tile":
        row = feats[centre] if 0 <= centre < len(feats) else np.zeros(EMB_DIM, feats.dtype)
        rows = np.broadcast_to(row, (WINDOW_ROWS, EMB_DIM))
    elif mode == "window":
        rows = np.zeros((WINDOW_ROWS, EMB_DIM), np.float32)
        lo, hi = centre - WINDOW_ROWS // 2, centre + WINDOW_ROWS // 2
        a, b = max(lo, 0), min(hi, len(feats))
        if a < b:
            rows[a - lo:b - lo] = feats[a:b]
    else:
        raise ValueError(f"unknown audio window {mode!r}; choose window or tile")
    return np.ascontiguousarray(rows, dtype=np.float32).reshape(1, 32, 16, 16)
