"""reference.audio against librosa (as SyncTalk_2D calls it) and SyncTalk's encoder windowing."""
from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from reference import audio
from reference.errors import InputError
from signals import tone, write_tone_wav


@pytest.fixture(scope="module")
def talk_path(shared_data: Path) -> Path:
    return shared_data / "audio" / "talk_hb.wav"


@pytest.fixture(scope="module")
def talk_wav(talk_path: Path) -> np.ndarray:
    return audio.load_wav(talk_path)


@pytest.fixture(scope="module")
def talk_mel(talk_wav: np.ndarray) -> np.ndarray:
    return audio.melspectrogram(talk_wav)


def synctalk_librosa_mel(path: Path) -> np.ndarray:
    """SyncTalk_2D/Wav2Lip audio.load_wav + audio.melspectrogram(...).T, written out with librosa."""
    wav = librosa.load(path, sr=16000)[0]
    d = librosa.stft(y=scipy.signal.lfilter([1, -0.97], [1], wav), n_fft=800, hop_length=200, win_length=800)
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    s = 20 * np.log10(np.maximum(1e-5, np.dot(basis, np.abs(d)))) - 20
    return np.clip(8 * ((s + 100) / 100) - 4, -4, 4).T


def synctalk_windows(mel: np.ndarray) -> list[np.ndarray]:
    """SyncTalk_2D AudDataset: data_len and crop_audio_window, float arithmetic as in inference_328.py."""
    data_len = int((mel.shape[0] - 16) / 80.0 * float(25)) + 2
    out = []
    for idx in range(data_len):
        start_idx = int(80.0 * (idx / float(25)))
        end_idx = start_idx + 16
        if end_idx > mel.shape[0]:
            end_idx = mel.shape[0]
            start_idx = end_idx - 16
        out.append(mel[start_idx:end_idx, :].T)
    return out


# 1. mel against librosa -------------------------------------------------------------------------


def test_melspectrogram_matches_librosa_synctalk(talk_path: Path, talk_mel: np.ndarray) -> None:
    expected = synctalk_librosa_mel(talk_path)
    assert talk_mel.shape == expected.shape == (1 + 718147 // 200, 80)
    assert talk_mel.dtype == np.float32
    assert np.abs(talk_mel - expected).max() <= 1e-4
    # real speech spans the range: not clipped flat, not all floor
    assert talk_mel.min() == -4.0 and talk_mel.max() > 0.0 and talk_mel.std() > 0.5


def test_load_wav_matches_librosa_on_real_audio(talk_path: Path, talk_wav: np.ndarray) -> None:
    expected = librosa.load(talk_path, sr=16000)[0]
    assert talk_wav.dtype == np.float32 and talk_wav.shape == expected.shape == (718147,)
    np.testing.assert_array_equal(talk_wav, expected)


# 2. mel filterbank -------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_mel_filterbank_matches_librosa(scale: str) -> None:
    ours = audio.mel_filterbank(scale)
    kwargs = dict(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600, htk=scale == "htk", norm="slaney")
    assert ours.shape == (80, 401) and ours.dtype == np.float64
    assert np.abs(ours - librosa.filters.mel(**kwargs, dtype=np.float64)).max() <= 1e-10
    # librosa's default basis (what SyncTalk uses) is float32: equal to ours rounded to float32
    assert np.abs(ours - librosa.filters.mel(**kwargs)).max() <= 1e-7 * ours.max()


def test_mel_scales_differ() -> None:
    assert np.abs(audio.mel_filterbank("slaney") - audio.mel_filterbank("htk")).max() > 1e-3


# 3. STFT framing and window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "kwargs"),
    [
        ("center_zero", dict(center=True, pad_mode="constant")),
        ("center_reflect", dict(center=True, pad_mode="reflect")),
        ("none", dict(center=False)),
    ],
)
def test_stft_magnitude_matches_librosa(talk_wav: np.ndarray, framing: str, kwargs: dict) -> None:
    y = audio.preemphasis(talk_wav[10 * 16000 : 13 * 16000 + 123])
    expected = np.abs(librosa.stft(y, n_fft=800, hop_length=200, win_length=800, **kwargs))
    ours = audio.stft_magnitude(y, framing=framing)
    assert ours.shape == expected.shape and ours.dtype == np.float64
    assert np.abs(ours - expected).max() <= 1e-9


def test_stft_framings_differ_where_expected(talk_wav: np.ndarray) -> None:
    y = audio.preemphasis(talk_wav[10 * 16000 : 12 * 16000])  # inside speech: the clip opens silent
    zero = audio.stft_magnitude(y, "center_zero")
    reflect = audio.stft_magnitude(y, "center_reflect")
    none = audio.stft_magnitude(y, "none")
    assert zero.shape[1] == reflect.shape[1] == 1 + y.size // 200
    assert none.shape[1] == 1 + (y.size - 800) // 200
    # padding only touches the two edge frames on each side; uncentred frame j is centred frame j + 2
    assert np.abs(zero[:, 0] - reflect[:, 0]).max() > 1e-3
    np.testing.assert_array_equal(zero[:, 2:-2], reflect[:, 2:-2])
    np.testing.assert_allclose(none, zero[:, 2 : 2 + none.shape[1]], rtol=0, atol=1e-12)


def test_symmetric_window_changes_mel(talk_wav: np.ndarray) -> None:
    wav = talk_wav[10 * 16000 : 12 * 16000]
    periodic = audio.melspectrogram(wav, window="periodic")
    symmetric = audio.melspectrogram(wav, window="symmetric")
    assert periodic.shape == symmetric.shape
    assert np.abs(periodic - symmetric).max() > 1e-3


@pytest.mark.parametrize("periodic", [True, False])
def test_hann_window_is_scipys_bit_for_bit(periodic: bool) -> None:
    for n in [*range(8), 15, 16, 399, 400, 799, audio.WIN, 801, 1024]:
        ours = audio.hann_window(n, periodic)
        theirs = scipy.signal.get_window("hann", n, fftbins=periodic) if n else np.ones(0)
        assert ours.dtype == theirs.dtype == np.float64 and ours.tobytes() == theirs.tobytes(), n
    assert not np.array_equal(audio.hann_window(audio.WIN, True), audio.hann_window(audio.WIN, False))


def test_preemphasis_matches_lfilter(talk_wav: np.ndarray) -> None:
    ours = audio.preemphasis(talk_wav)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, scipy.signal.lfilter([1, -0.97], [1], talk_wav), rtol=0, atol=1e-15)
    assert ours[0] == talk_wav[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(framing="center"), "center_zero"),
        (dict(window="hamming"), "periodic"),
        (dict(mel_scale="mel"), "slaney"),
    ],
)
def test_unknown_variant_names_the_allowed_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        audio.melspectrogram(np.zeros(4000, dtype=np.float32), **kwargs)


def test_uncentred_stft_rejects_signal_shorter_than_n_fft() -> None:
    with pytest.raises(ValueError, match="n_fft"):
        audio.stft_magnitude(np.zeros(799), framing="none")


# 4. load_wav -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sr", "channels", "subtype", "tol"),
    [
        (16000, 1, "PCM_16", 1e-4),
        (16000, 2, "FLOAT", 1e-6),
        (44100, 2, "PCM_16", 1e-4),
        (44100, 2, "PCM_24", 1e-5),
        (48000, 2, "FLOAT", 1e-5),
        (48000, 2, "PCM_U8", 2e-2),
        (22050, 1, "PCM_16", 1e-4),
    ],
)
def test_load_wav_converts_rate_and_channels(
    tmp_path: Path, sr: int, channels: int, subtype: str, tol: float
) -> None:
    path = tmp_path / f"tone_{sr}_{channels}_{subtype}.wav"
    clip = write_tone_wav(path, sr, channels, subtype, 0.7003)

    ours = audio.load_wav(path)
    expected = librosa.load(path, sr=16000, mono=True)[0]
    assert ours.dtype == np.float32
    assert ours.shape == expected.shape == (math.ceil(clip.size * 16000 / sr),)
    assert np.abs(ours - expected).max() <= 1e-4

    # content: the analytic 16 kHz tone, away from the resampler's edge transients
    analytic = tone(16000, ours.size / 16000)
    assert np.abs(ours - analytic)[800:-800].max() <= tol


def _expect_input_error(path: Path, match: str) -> InputError:
    with pytest.raises(InputError, match=match) as info:
        audio.load_wav(path)
    assert str(path) in str(info.value)
    assert info.value.path == path
    return info.value


def test_load_wav_missing_file(tmp_path: Path) -> None:
    _expect_input_error(tmp_path / "nope.wav", "not found")


def test_load_wav_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    _expect_input_error(path, "not a readable audio file")


def test_load_wav_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    assert sf.info(path).frames == 0
    _expect_input_error(path, "no samples")


def test_load_wav_non_finite(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    data = np.zeros(8000, dtype=np.float32)
    data[100] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")
    _expect_input_error(path, "NaN or Inf")


def test_load_wav_too_short(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, tone(16000, 0.05), 16000, subtype="PCM_16")
    error = _expect_input_error(path, "too short|minimum")
    assert "0.0500 s" in error.problem and "0.1875 s" in error.problem


def test_load_wav_minimum_length_boundary(tmp_path: Path) -> None:
    ok, short = tmp_path / "ok.wav", tmp_path / "short.wav"
    sf.write(ok, np.full(3000, 0.1), 16000, subtype="PCM_16")
    sf.write(short, np.full(2999, 0.1), 16000, subtype="PCM_16")
    assert audio.melspectrogram(audio.load_wav(ok)).shape == (16, 80)
    _expect_input_error(short, "minimum")


# 5. encoder windows ------------------------------------------------------------------------------


def test_encoder_windows_match_synctalk_on_real_audio(talk_mel: np.ndarray) -> None:
    windows = audio.encoder_windows(talk_mel)
    expected = synctalk_windows(talk_mel)
    assert audio.encoder_window_count(talk_mel.shape[0]) == len(expected) == 1119
    assert windows.shape == (1119, 1, 80, 16) and windows.dtype == np.float32
    assert windows.flags.c_contiguous
    np.testing.assert_array_equal(windows[:, 0], np.stack(expected))
    # the last window is the shifted one and ends exactly at T
    np.testing.assert_array_equal(windows[-1, 0], talk_mel[-16:].T)


def test_encoder_window_starts_match_float_formula_for_all_lengths() -> None:
    k_all = np.arange(audio.encoder_window_count(5000))
    float_starts = (80.0 * (k_all / 25.0)).astype(np.int64)  # SyncTalk's int(80. * (k / 25.))
    np.testing.assert_array_equal(float_starts, 80 * k_all // 25)
    for t in range(16, 5001):
        starts = audio.encoder_window_starts(t)
        data_len = int((t - 16) / 80.0 * float(25)) + 2
        assert starts.size == audio.encoder_window_count(t) == data_len
        expected = float_starts[:data_len].copy()
        expected[expected + 16 > t] = t - 16
        np.testing.assert_array_equal(starts, expected)
        assert starts[-1] + 16 == t
        assert np.all(np.diff(starts) >= 0)


def test_encoder_window_count_keeps_synctalk_float_rounding() -> None:
    # (384 - 16) / 80 * 25 is 114.99999999999999 in float64: SyncTalk gives 116 windows, exact
    # integer arithmetic ((T - 16) * 25 // 80 + 2) would give 117.
    assert audio.encoder_window_count(384) == 116
    assert audio.encoder_window_count(385) == 117
    assert audio.encoder_window_count(16) == 2


def test_encoder_windows_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="encoder window"):
        audio.encoder_window_starts(15)
    with pytest.raises(ValueError, match="80"):
        audio.encoder_windows(np.zeros((100, 16), dtype=np.float32))


# 6. digital silence ------------------------------------------------------------------------------


def test_silence_is_floor_everywhere(shared_data: Path) -> None:
    path = shared_data / "audio" / "silence_20s.wav"
    wav = audio.load_wav(path)
    assert wav.size == 20 * 16000 and not wav.any()  # digital silence
    mel = audio.melspectrogram(wav)
    assert mel.shape == (1601, 80)
    assert np.all(mel == -4.0)
    assert np.all(audio.encoder_windows(mel) == -4.0)


def test_melspectrogram_keeps_its_last_mels_by_samples_and_options():
    """A kept mel is the one computed afresh, read-only; other samples or options are other mels; at
    most MEL_MEMO are kept."""
    wav = np.random.default_rng(8).normal(0, 0.1, 16000).astype(np.float32)
    first = audio.melspectrogram(wav)
    assert audio.melspectrogram(wav.copy()) is first and not first.flags.writeable
    assert np.array_equal(first, audio._melspectrogram(wav, "center_zero", "periodic", "slaney"))
    with pytest.raises(ValueError):
        first[0, 0] = 0.0
    changed = wav.copy()
    changed[100] += 0.01
    assert audio.melspectrogram(changed) is not first
    assert not np.array_equal(audio.melspectrogram(wav, mel_scale="htk"), first)
    for k in range(audio.MEL_MEMO + 2):
        audio.melspectrogram(wav * (1.0 + k / 100))
    assert len(audio._mels) == audio.MEL_MEMO
