"""``av_offset``: the video's sound against the run's input audio (or the reference video's track).

Both are brought to mono 16 kHz and cross-correlated (FFT) over the first `SPAN_S` seconds, at lags
up to `MAX_LAG_S` either way; the offset is counted from the picture's first frame, so a late
picture (an edit list) and a shifted track are told apart: ``offset_ms`` > 0 when the sound is
late. A peak correlation (normalised over the overlap) under `OTHER_AUDIO` means another audio
altogether. Read together with ``audio_drive``'s lag (the mouth against the reference's), it says
whether the sound or the picture is late.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.diagnosis.evidence.basis import Basis, maker
from harness.diagnosis.evidence.record import Finding
from harness.video.read import VideoInfo, read_audio
from reference.audio import SAMPLE_RATE, VIDEO_FPS

SPAN_S = 20.0
MAX_LAG_S = 1.0
OTHER_AUDIO = 0.3  # peak correlation below this: another audio (same audio through AAC: 0.97 and more)
NAMED_MS = 10.0  # an offset named from this size on


def _mono16k(samples: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly
    if rate != SAMPLE_RATE:
        from math import gcd
        g = gcd(rate, SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // g, rate // g)
    return np.asarray(samples, np.float64)[: int(SPAN_S * SAMPLE_RATE)]


def _track(info: VideoInfo) -> np.ndarray | None:
    """The video's sound at 16 kHz on the picture's clock: sample 0 at its first picture."""
    found = read_audio(info.path)
    if found is None:
        return None
    samples, rate, start = found
    shift = int(round((start - info.start_s) * rate))
    samples = np.concatenate([np.zeros(shift, np.float32), samples]) if shift > 0 else samples[-shift:]
    return _mono16k(samples, rate)


def _input(path: Path) -> np.ndarray:
    from reference.audio import load_wav
    return _mono16k(load_wav(path), SAMPLE_RATE)


def cross_offset(track: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(lag in s of `track` behind `truth`, peak correlation normalised over the overlap)."""
    from scipy.signal import correlate
    n = min(len(track), len(truth))
    a, b = track[:n] - track[:n].mean(), truth[:n] - truth[:n].mean()
    full = correlate(a, b, mode="full", method="fft")
    lags = np.arange(-n + 1, n)
    window = np.abs(lags) <= MAX_LAG_S * SAMPLE_RATE
    full, lags = full[window], lags[window]
    i = int(np.argmax(full))
    lag = int(lags[i])
    x, y = (a[lag:], b[:n - lag]) if lag >= 0 else (a[:n + lag], b[-lag:])
    norm = float(np.sqrt(np.sum(x * x) * np.sum(y * y)))
    return lag / SAMPLE_RATE, float(full[i] / norm) if norm > 0 else 0.0


def _picture_lag_ms(before: list[Finding]) -> float | None:
    drive = next((f for f in before if f.kind == "audio_drive"), None)
    if drive is None:
        return None
    return drive.details.get("lag", 0) * 1000.0 / VIDEO_FPS


@maker("av_offset")
def _av_offset(basis: Basis, before: list[Finding]) -> list[Finding]:
    video = basis.video
    if video is None or video.info_b is None or video.info_b.audio is None:
        return []
    if video.input_audio is not None:
        truth, against = _input(video.input_audio), "the input audio"
    elif video.info_a is not None and video.info_a.audio is not None:
        truth, against = _track(video.info_a), "the reference video's sound"
    else:
        return []
    track = _track(video.info_b)
    if track is None or truth is None or not len(track) or not len(truth):
        return []
    lag_s, corr = cross_offset(track, truth)
    audio = video.info_b.audio
    fields = {"offset_ms": round(lag_s * 1000.0, 2), "correlation": round(corr, 4), "against": against,
              "sample_rate": audio.sample_rate, "channels": audio.channels, "codec": audio.codec,
              "other_audio": corr < OTHER_AUDIO}
    if fields["other_audio"]:
        summary = (f"the video's sound is another audio than {against} (peak correlation {corr:.2f} within "
                   f"±{MAX_LAG_S:g} s)")
    elif abs(fields["offset_ms"]) >= NAMED_MS:
        off = fields["offset_ms"]
        summary = (f"the sound is {abs(off):.0f} ms {'late' if off > 0 else 'early'} against the picture's first "
                   f"frame ({against}, correlation {corr:.2f}; {audio.codec} {audio.sample_rate} Hz, "
                   f"{audio.channels} ch)")
        picture = _picture_lag_ms(before)
        fields["mouth_lag_ms"] = picture
        if not picture:
            summary += "; the mouth keeps time with the reference's, so the sound track is shifted, not the picture"
        else:
            summary += (f"; the mouth is also {abs(picture):.0f} ms off the reference's (audio_drive): the picture "
                        "is shifted too")
    else:
        return []
    return [Finding("av_offset", summary, [], None, fields)]
