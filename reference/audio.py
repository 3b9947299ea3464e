"""Canonical SyncTalk_2D audio front end: WAV -> 16 kHz mono -> normalised log-mel -> encoder windows.

Numerically this is Wav2Lip/SyncTalk's ``audio.melspectrogram`` (librosa >= 0.10) followed by the
``AudDataset`` windowing of ``inference_328.py``, written with numpy/soundfile/soxr only. The
``framing``, ``window`` and ``mel_scale`` arguments select the convention variants seen in ports
(see docs/conventions.md); the defaults are canonical.
"""
from __future__ import annotations

import hashlib
import math
import os
import struct
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from reference.errors import InputError

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55
FMAX = 7600
MEL_WINDOW = 16
MEL_FPS = 80
VIDEO_FPS = 25

PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS_VALUE = 4.0

FRAMINGS = ("center_zero", "center_reflect", "none")
WINDOWS = ("periodic", "symmetric")
MEL_SCALES = ("slaney", "htk")

# Shortest input giving MEL_WINDOW mel frames with centred framing (1 + n // HOP frames).
MIN_SAMPLES = (MEL_WINDOW - 1) * HOP
# Longest input read (it is read whole); $SYNCTALK_PARITY_MAX_AUDIO_SECONDS raises the limit.
MAX_SECONDS = 1800.0
MAX_SECONDS_ENV = "SYNCTALK_PARITY_MAX_AUDIO_SECONDS"
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # streamed WAVs leave the data size unset


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, allowed))}")


def max_audio_seconds() -> float:
    """The longest audio `load_wav` accepts: $SYNCTALK_PARITY_MAX_AUDIO_SECONDS or MAX_SECONDS."""
    text = os.environ.get(MAX_SECONDS_ENV, "")
    try:
        return float(text) if text else MAX_SECONDS
    except ValueError:
        raise InputError(MAX_SECONDS_ENV, f"not a number of seconds: {text!r}") from None


def _wav_truncation(path: Path) -> str | None:
    """Why a RIFF/WAVE file's data chunk is shorter than its header declares, or None when it is not."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = path.stat().st_size
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                available = size - fh.tell()
                if length in _UNKNOWN_SIZES or length <= available:
                    return None
                return f"truncated WAV: the header declares {length} bytes of samples, the file holds {available}"
            fh.seek(length + (length & 1), os.SEEK_CUR)


def _check_readable(path: Path) -> None:
    """InputError unless `path` is a complete audio file no longer than `max_audio_seconds()`."""
    if not path.exists():
        raise InputError(path, "audio file not found", "check the path")
    if not path.is_file():
        raise InputError(path, "not a file", "give the path of a WAV file")
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError) as exc:
        raise InputError(path, f"not a readable audio file: {exc}", "give a WAV/FLAC/OGG file") from exc
    truncated = _wav_truncation(path)
    if truncated:
        raise InputError(path, truncated, "re-export or re-download the audio")
    limit = max_audio_seconds()
    if info.samplerate > 0 and info.frames / info.samplerate > limit:
        raise InputError(path, f"audio is {info.frames / info.samplerate:.1f} s long; the limit is {limit:g} s",
                         f"cut the clip, or raise ${MAX_SECONDS_ENV}")


def load_wav(path: str | Path) -> np.ndarray:
    """Read any soundfile-readable audio as float32 mono at 16 kHz, as ``librosa.load(path, sr=16000)`` does.

    Channels are averaged; other rates are resampled with soxr "HQ" and the length fixed to
    ``ceil(n * 16000 / sr)`` samples (librosa's ``fix=True``). Raises ``InputError`` for a missing,
    unreadable or truncated file, no samples, non-finite samples, audio shorter than one encoder
    window or longer than `max_audio_seconds()`.
    """
    path = Path(path)
    _check_readable(path)
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise InputError(path, f"not a readable audio file: {exc}", "give a WAV/FLAC/OGG file") from exc
    if data.shape[0] == 0:
        raise InputError(path, "audio file has no samples", "give a non-empty recording")
    if not np.isfinite(data).all():
        raise InputError(path, "audio contains NaN or Inf samples", "re-export the audio")
    wav = data.mean(axis=1, dtype=np.float32)
    if sr != SAMPLE_RATE:
        n_out = math.ceil(wav.shape[0] * SAMPLE_RATE / sr)
        wav = soxr.resample(wav, sr, SAMPLE_RATE, quality="HQ")
        wav = np.pad(wav, (0, max(0, n_out - wav.shape[0])))[:n_out]
    if wav.shape[0] < MIN_SAMPLES:
        raise InputError(
            path,
            f"audio is {wav.shape[0] / SAMPLE_RATE:.4f} s long ({1 + wav.shape[0] // HOP} mel frames); "
            f"the minimum is {MIN_SAMPLES / SAMPLE_RATE:.4f} s ({MEL_WINDOW} mel frames, one encoder window)",
            "give a longer clip",
        )
    return np.ascontiguousarray(wav, dtype=np.float32)


def preemphasis(x: np.ndarray, k: float = PREEMPHASIS) -> np.ndarray:
    """Pre-emphasis filter y[n] = x[n] - k x[n-1], y[0] = x[0], in float64 (= lfilter([1, -k], [1], x))."""
    x = np.asarray(x, dtype=np.float64)
    y = np.empty_like(x)
    y[:1] = x[:1]
    y[1:] = x[1:] - k * x[:-1]
    return y


def hann_window(n: int, periodic: bool = True) -> np.ndarray:
    """Hann window of `n` float64 points, bit for bit ``scipy.signal.get_window("hann", n, fftbins=periodic)``
    (scipy's ``general_cosine``: 0.5 + 0.5 cos over linspace(-pi, pi) of n + 1 points, the last
    dropped, when periodic; ones for n <= 1) without importing scipy.signal, which takes 0.6 s of every
    start-up."""
    if n <= 1:
        return np.ones(n)
    points = n + 1 if periodic else n
    return (0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, points)))[:n]


def stft_magnitude(y: np.ndarray, framing: str = "center_zero", window: str = "periodic") -> np.ndarray:
    """Magnitude STFT (n_fft 800, hop 200, Hann 800) as a (401, T) float64 array.

    framing: "center_zero" (librosa >= 0.10: n_fft//2 zeros each side), "center_reflect"
    (librosa < 0.10: reflect padding) or "none" (frames start at sample 0).
    window: "periodic" Hann (librosa's) or "symmetric" Hann.
    """
    _check_choice("framing", framing, FRAMINGS)
    _check_choice("window", window, WINDOWS)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {y.shape}")
    if framing == "center_zero":
        y = np.pad(y, N_FFT // 2, mode="constant")
    elif framing == "center_reflect":
        y = np.pad(y, N_FFT // 2, mode="reflect")
    if y.shape[0] < N_FFT:
        raise ValueError(f"signal of {y.shape[0]} samples is shorter than n_fft={N_FFT} with framing {framing!r}")
    hann = hann_window(WIN, periodic=(window == "periodic"))
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    return np.abs(np.fft.rfft(frames * hann, axis=-1)).T


def _hz_to_mel(freqs: np.ndarray, htk: bool) -> np.ndarray:
    freqs = np.atleast_1d(np.asarray(freqs, dtype=np.float64))
    if htk:
        return 2595.0 * np.log10(1.0 + freqs / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = freqs / f_sp
    log_t = freqs >= min_log_hz
    mels[log_t] = min_log_mel + np.log(freqs[log_t] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray, htk: bool) -> np.ndarray:
    mels = np.atleast_1d(np.asarray(mels, dtype=np.float64))
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    freqs = f_sp * mels
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


def mel_filterbank(scale: str = "slaney") -> np.ndarray:
    """(80, 401) float64 mel basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55,
    fmax=7600, htk=(scale == "htk"), norm="slaney", dtype=float64)."""
    _check_choice("mel scale", scale, MEL_SCALES)
    htk = scale == "htk"
    fftfreqs = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    min_mel, max_mel = _hz_to_mel(FMIN, htk)[0], _hz_to_mel(FMAX, htk)[0]
    mel_f = _mel_to_hz(np.linspace(min_mel, max_mel, N_MELS + 2), htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return weights


MEL_MEMO = 16
"""Mels kept (`melspectrogram`): a diagnosis computes the same clip's mel under each front end once per
backend, and for the audio fit again (153 mels of 2 clips in one `explain` of 6 backends, 8 s of its
57 s); 16 mels of a 45 s clip hold 90 MB."""
_mels: OrderedDict = OrderedDict()
_mels_lock = threading.Lock()


def melspectrogram(
    wav: np.ndarray, framing: str = "center_zero", window: str = "periodic", mel_scale: str = "slaney"
) -> np.ndarray:
    """Normalised log-mel (T, 80) float32 in [-4, 4]: SyncTalk/Wav2Lip ``audio.melspectrogram(wav).T``.
    The last MEL_MEMO are kept, by the samples' digest and the options, and returned read-only."""
    wav = np.asarray(wav)
    if wav.ndim != 1 or wav.shape[0] == 0:
        raise ValueError(f"expected a non-empty 1-D waveform, got shape {wav.shape}")
    key = (hashlib.blake2b(np.ascontiguousarray(wav).view(np.uint8), digest_size=16).digest(), wav.dtype.str,
           framing, window, mel_scale)
    with _mels_lock:
        if key in _mels:
            _mels.move_to_end(key)
            return _mels[key]
    mel = _melspectrogram(wav, framing, window, mel_scale)
    mel.flags.writeable = False
    with _mels_lock:
        _mels[key] = mel
        while len(_mels) > MEL_MEMO:
            _mels.popitem(last=False)
    return mel


def _melspectrogram(wav: np.ndarray, framing: str, window: str, mel_scale: str) -> np.ndarray:
    magnitude = stft_magnitude(preemphasis(wav), framing=framing, window=window)
    mel = mel_filterbank(mel_scale) @ magnitude
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - REF_LEVEL_DB
    norm = 2 * MAX_ABS_VALUE * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    return np.clip(norm, -MAX_ABS_VALUE, MAX_ABS_VALUE).T.astype(np.float32)


def _check_frames(n_mel_frames: int) -> int:
    n = int(n_mel_frames)
    if n < MEL_WINDOW:
        raise ValueError(f"{n} mel frames is fewer than one encoder window ({MEL_WINDOW} frames)")
    return n


def encoder_window_count(n_mel_frames: int) -> int:
    """Number of encoder windows for T mel frames: SyncTalk's ``int((T - 16) / 80 * 25) + 2``."""
    n = _check_frames(n_mel_frames)
    return int((n - MEL_WINDOW) / MEL_FPS * VIDEO_FPS) + 2


def encoder_window_starts(n_mel_frames: int) -> np.ndarray:
    """Start mel frame of each encoder window: 80*k//25, shifted back to T-16 where it would end past T."""
    n = _check_frames(n_mel_frames)
    k = np.arange(encoder_window_count(n), dtype=np.int64)
    return np.minimum(MEL_FPS * k // VIDEO_FPS, n - MEL_WINDOW)


def encoder_windows(mel: np.ndarray) -> np.ndarray:
    """Audio-encoder inputs (data_len, 1, 80, 16) float32 from a (T, 80) mel: window k = mel[s_k:s_k+16].T."""
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[1] != N_MELS:
        raise ValueError(f"expected a (T, {N_MELS}) mel, got shape {mel.shape}")
    starts = encoder_window_starts(mel.shape[0])
    windows = mel[starts[:, None] + np.arange(MEL_WINDOW)]
    return np.ascontiguousarray(windows.transpose(0, 2, 1)[:, None])
