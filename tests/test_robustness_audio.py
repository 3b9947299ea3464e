"""Bad and unusual audio inputs: each gives the right 16 kHz mono signal or an InputError naming the file
and the problem (issue 8)."""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harness.cli import main
from reference import audio
from reference.errors import InputError
from expect import expect_error
from signals import tone, write_tone_wav

SECONDS = 0.5


def wav_bytes(n: int = 16000) -> bytes:
    """A complete 16-bit mono 16 kHz WAV of `n` samples (44-byte header, data from byte 44)."""
    data = (tone(16000, n / 16000) * 20000).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(data)) + data


def expect_load_error(path: Path, *fragments: str) -> InputError:
    """load_wav fails with an InputError naming `path` and every fragment of the problem."""
    return expect_error(lambda: audio.load_wav(path), path, *fragments)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- broken files

@pytest.mark.parametrize("name, make, fragments", [
    ("zero_bytes.wav", lambda: b"", ("not a readable audio file", "Format not recognised")),
    ("header_only.wav", lambda: wav_bytes(0), ("audio file has no samples",)),
    ("header_claims_data.wav", lambda: wav_bytes()[:44],
     ("truncated WAV", "declares 32000 bytes", "holds 0")),
    ("truncated_data.wav", lambda: wav_bytes()[:44 + 8001],
     ("truncated WAV", "declares 32000 bytes", "holds 8001")),
    ("truncated_header.wav", lambda: wav_bytes()[:30], ("not a readable audio file",)),
    ("text.wav", lambda: b"this is not audio\n" * 20, ("not a readable audio file",)),
    ("png.wav", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), ("not a readable audio file",)),
    ("riff_not_wave.wav", lambda: b"RIFF" + struct.pack("<I", 200) + b"AVI " + bytes(200),
     ("not a readable audio file",)),
])
def test_broken_audio_file_is_named(tmp_path, name, make, fragments):
    expect_load_error(write(tmp_path / name, make()), *fragments)


def test_missing_audio_and_a_folder_are_named(tmp_path):
    expect_load_error(tmp_path / "absent.wav", "audio file not found")
    (tmp_path / "folder.wav").mkdir()
    expect_load_error(tmp_path / "folder.wav", "not a file")


def test_nan_samples_are_refused(tmp_path):
    path = tmp_path / "nan.wav"
    data = tone(16000, SECONDS).astype(np.float32)
    data[10] = np.inf
    sf.write(path, data, 16000, subtype="FLOAT")
    expect_load_error(path, "NaN or Inf")


def test_streamed_wav_with_unset_data_size_is_read_whole(tmp_path):
    """ffmpeg writing to a pipe leaves the RIFF and data sizes at 0xFFFFFFFF: not truncated."""
    data = bytearray(wav_bytes())
    data[4:8] = data[40:44] = b"\xff\xff\xff\xff"
    path = write(tmp_path / "streamed.wav", bytes(data))
    np.testing.assert_array_equal(audio.load_wav(path), audio.load_wav(write(tmp_path / "ok.wav", wav_bytes())))


# --------------------------------------------------------------------------- formats, rates, channels

@pytest.mark.parametrize("sr, channels, subtype, tol", [
    (16000, 1, "PCM_U8", 2e-2),
    (16000, 1, "PCM_24", 1e-5),
    (16000, 1, "PCM_32", 1e-5),
    (16000, 1, "FLOAT", 1e-6),
    (16000, 1, "DOUBLE", 1e-6),
    (44100, 1, "PCM_16", 1e-3),
    (48000, 1, "PCM_16", 1e-3),
    (16000, 2, "PCM_16", 1e-4),
    (44100, 2, "FLOAT", 1e-3),
    (48000, 2, "PCM_24", 1e-3),
])
def test_formats_rates_and_stereo_give_the_16k_mono_signal(tmp_path, sr, channels, subtype, tol):
    path = tmp_path / f"tone_{sr}_{channels}_{subtype}.wav"
    clip = write_tone_wav(path, sr, channels, subtype, SECONDS)
    wav = audio.load_wav(path)
    assert wav.dtype == np.float32 and wav.shape == (math.ceil(clip.size * 16000 / sr),)
    assert np.abs(wav - tone(16000, wav.size / 16000))[400:-400].max() <= tol


# --------------------------------------------------------------------------- length limits

def test_shorter_than_one_mel_window_is_named(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, tone(16000, 0.1), 16000, subtype="PCM_16")
    expect_load_error(path, "0.1000 s long", "minimum is 0.1875 s (16 mel frames")


def test_longer_than_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, tone(16000, 2.0), 16000, subtype="PCM_16")
    monkeypatch.setenv(audio.MAX_SECONDS_ENV, "1.5")
    monkeypatch.setattr(sf, "read", lambda *a, **k: pytest.fail("a too-long file must not be read"))
    expect_load_error(path, "audio is 2.0 s long; the limit is 1.5 s", audio.MAX_SECONDS_ENV)


def test_default_limit_and_a_bad_limit_setting(tmp_path, monkeypatch):
    monkeypatch.delenv(audio.MAX_SECONDS_ENV, raising=False)
    assert audio.max_audio_seconds() == audio.MAX_SECONDS == 1800
    monkeypatch.setenv(audio.MAX_SECONDS_ENV, "ten")
    with pytest.raises(InputError, match=f"{audio.MAX_SECONDS_ENV}: not a number of seconds: 'ten'"):
        audio.max_audio_seconds()


# --------------------------------------------------------------------------- through the command line

def test_cli_names_a_truncated_audio_file_and_exits_2(tmp_path, tiny_models_dir, synthetic_pack, capsys):
    bad = write(tmp_path / "cut.wav", wav_bytes()[:1000])
    rc = main(["infer", "--pack", str(synthetic_pack), "--audio", str(bad), "--models", str(tiny_models_dir),
               "--output", str(tmp_path / "out"), "--frames", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"error: {bad}: truncated WAV" in err and "Traceback" not in err
