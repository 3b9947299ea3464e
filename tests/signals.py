"""Test audio: a two-tone clip that every sample rate resamples to the same 16 kHz signal."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(sr: int, seconds: float) -> np.ndarray:
    """Two sines well inside the 8 kHz band, so every rate resamples to the same 16 kHz signal."""
    t = np.arange(int(round(sr * seconds))) / sr
    return 0.4 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t + 0.5)


def write_tone_wav(path: Path, sr: int, channels: int, subtype: str, seconds: float) -> np.ndarray:
    """Write `tone(sr, seconds)` as a WAV of 1 or 2 channels (stereo adds a side signal that cancels in
    the downmix); return the mono tone."""
    clip = tone(sr, seconds)
    side = 0.2 * np.sin(2 * np.pi * 1234 * np.arange(clip.size) / sr)
    sf.write(path, clip if channels == 1 else np.stack([clip + side, clip - side], axis=1), sr, subtype=subtype)
    return clip
