"""The synthetic pre-cut pack (fixtures/pack.py): layout, rect rule, crops, determinism, audio."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from fixtures.pack import build_pack, build_speech_wav

FRAMES = 24
IMAGE_SHAPES = {"full_body_img": (720, 1280, 3), "crops_328": (328, 328, 3),
                "rois_320": (320, 320, 3), "model_inputs": (320, 320, 3)}
JSON_FILES = ("cache/crop_rectangles.json", "cache/frame_metadata.json", "package_info.json",
              "dataset_manifest.json", "onnx_dist_config.json")


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pack(tmp_path_factory.mktemp("pack") / "synthetic", frames=FRAMES)


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img


def _lms(path: Path) -> np.ndarray:
    return np.array([[int(v) for v in line.split()] for line in path.read_text().splitlines()])


def _rects(pack: Path) -> dict[str, list[int]]:
    return {k: v["rect"] for k, v in json.loads((pack / "cache/crop_rectangles.json").read_text()).items()}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def _structure(obj: object) -> object:
    """Keys and value types of a JSON document, ignoring list lengths and values."""
    if isinstance(obj, dict):
        return {k: _structure(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return ["list", sorted({json.dumps(_structure(v)) for v in obj})]
    return type(obj).__name__


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout(pack: Path) -> None:
    for d, shape in IMAGE_SHAPES.items():
        assert sorted(p.name for p in (pack / d).iterdir()) == sorted(f"{k}.jpg" for k in range(1, FRAMES + 1))
        assert _read(pack / d / "1.jpg").shape == shape
        assert _read(pack / d / f"{FRAMES}.jpg").shape == shape
    assert sorted(p.name for p in (pack / "landmarks").iterdir()) == sorted(f"{n}.lms" for n in range(FRAMES))
    for n in range(FRAMES):
        lines = (pack / "landmarks" / f"{n}.lms").read_text().splitlines()
        assert len(lines) == 110
        assert all(len(line.split()) == 2 and all(v.lstrip("-").isdigit() for v in line.split()) for line in lines)
    assert list(_rects(pack)) == [str(n) for n in range(FRAMES)]
    meta = json.loads((pack / "cache/frame_metadata.json").read_text())
    assert meta["processed_frames"] == FRAMES and meta["frame_indices"] == list(range(FRAMES))
    assert meta["original_shape"] == [1280, 720]
    assert (pack / "aud_ave.bin").stat().st_size == (FRAMES - 1) * 512 * 4
    assert not list(pack.glob("*.mp4"))
    info = sf.info(str(pack / "audio.wav"))
    assert info.frames == round((FRAMES / 25 + 0.5) * 16000)


def test_structure_matches_real_pack(pack: Path, shared_data: Path) -> None:
    real = shared_data / "sanders_pack"
    assert {p.name for p in pack.iterdir()} == {p.name for p in real.iterdir() if p.suffix != ".mp4"} | {"audio.wav"}
    assert {p.name for p in (pack / "cache").iterdir()} == {p.name for p in (real / "cache").iterdir()}
    for name in JSON_FILES:
        ours, theirs = json.loads((pack / name).read_text()), json.loads((real / name).read_text())
        if name.endswith("crop_rectangles.json"):
            ours, theirs = ours["0"], theirs["0"]
        assert _structure(ours) == _structure(theirs), name
        assert (b"\r\n" in (pack / name).read_bytes()) == (b"\r\n" in (real / name).read_bytes()), name
    ours_lms, real_lms = (pack / "landmarks/0.lms").read_bytes(), (real / "landmarks/0.lms").read_bytes()
    assert ours_lms.count(b"\r\n") == real_lms.count(b"\r\n") == 110
    assert _lms(pack / "landmarks/0.lms").shape == _lms(real / "landmarks/0.lms").shape
    real_feats = (real / "aud_ave.bin").stat().st_size // (512 * 4)
    assert real_feats == len(list((real / "landmarks").iterdir())) - 1  # the real pack's quirk we copy
    assert (pack / "aud_ave.bin").stat().st_size // (512 * 4) == FRAMES - 1


def test_rect_rule_matches_json(pack: Path) -> None:
    rects = _rects(pack)
    for n in range(FRAMES):
        lms = _lms(pack / "landmarks" / f"{n}.lms")
        xmin, xmax, ymin = lms[1, 0], lms[31, 0], lms[52, 1]
        assert rects[str(n)] == [xmin, ymin, xmax, ymin + (xmax - xmin)]
        x1, y1, x2, y2 = rects[str(n)]
        assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 720
        assert 170 <= x2 - x1 <= 200
        assert lms[:, 0].min() >= 0 and lms[:, 1].min() >= 0  # all landmarks in the frame
    assert len({tuple(r) for r in rects.values()}) > FRAMES // 2


def test_crops_pair_image_k_with_rect_k_minus_1(pack: Path) -> None:
    rects = _rects(pack)
    right, wrong = [], []
    for k in range(1, FRAMES + 1):
        full = _read(pack / "full_body_img" / f"{k}.jpg")
        crop = _read(pack / "crops_328" / f"{k}.jpg")
        for n, scores in ((k - 1, right), (k, wrong)):
            if str(n) in rects:
                x1, y1, x2, y2 = rects[str(n)]
                expected = cv2.resize(full[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
                scores.append(_psnr(crop, expected))
        assert _psnr(_read(pack / "rois_320" / f"{k}.jpg"), crop[4:324, 4:324]) >= 30
    assert min(right) >= 44  # JPEG q95 noise only: bilinear (~43 dB) or nearest (~33 dB) would fail
    assert np.mean(wrong) < np.mean(right) - 6


def test_head_moves_with_its_landmarks(pack: Path) -> None:
    """Phase correlation of the face area follows the mean shift of the mouth-independent landmarks."""
    def gray(k: int) -> np.ndarray:
        return cv2.cvtColor(_read(pack / "full_body_img" / f"{k}.jpg"), cv2.COLOR_BGR2GRAY).astype(np.float32)

    lms0 = _lms(pack / "landmarks/0.lms")[:90]
    (x0, y0), (x1, y1) = lms0.min(axis=0) - 30, lms0.max(axis=0) + 30
    window = cv2.createHanningWindow((x1 - x0, y1 - y0), cv2.CV_32F)
    first = gray(1)[y0:y1, x0:x1]
    moved = 0.0
    for k in range(2, FRAMES + 1, 3):
        expected = (_lms(pack / "landmarks" / f"{k - 1}.lms")[:90] - lms0).mean(axis=0)
        measured, _ = cv2.phaseCorrelate(first, gray(k)[y0:y1, x0:x1], window)
        assert np.abs(np.array(measured) - expected).max() < 1.0, k
        moved = max(moved, float(np.abs(expected).max()))
    assert moved >= 3


def test_model_inputs_zero_the_mouth_box(pack: Path) -> None:
    for k in (1, FRAMES // 2, FRAMES):
        masked = _read(pack / "model_inputs" / f"{k}.jpg")
        roi = _read(pack / "rois_320" / f"{k}.jpg")
        dark = masked.max(axis=2) < 30
        rows = np.flatnonzero(dark.mean(axis=1) > 0.9)
        cols = np.flatnonzero(dark.mean(axis=0) > 0.9)
        assert abs(rows[0] - 5) <= 1 and abs(rows[-1] - 309) <= 1
        assert abs(cols[0] - 5) <= 1 and abs(cols[-1] - 314) <= 1
        assert masked[8:307, 8:312].mean() < 2
        border = np.ones((320, 320), bool)
        border[3:312, 3:317] = False
        assert np.abs(masked[border].astype(int) - roi[border]).mean() < 6
        assert roi[border].mean() > 40


def test_same_seed_is_byte_identical_and_seed_matters(tmp_path: Path) -> None:
    a = _hashes(build_pack(tmp_path / "a", frames=4, seed=3))
    b = _hashes(build_pack(tmp_path / "b", frames=4, seed=3))
    c = _hashes(build_pack(tmp_path / "c", frames=4, seed=4))
    assert len(a) == 4 * (len(IMAGE_SHAPES) + 1) + len(JSON_FILES) + 2  # + aud_ave.bin, audio.wav
    assert a == b
    for name in ("full_body_img/1.jpg", "crops_328/4.jpg", "landmarks/2.lms", "aud_ave.bin", "audio.wav"):
        assert a[name] != c[name], name


def test_audio_seconds_argument(tmp_path: Path) -> None:
    pack = build_pack(tmp_path / "p", frames=2, audio_seconds=1.25)
    assert sf.info(str(pack / "audio.wav")).frames == 20000


def test_speech_wav_is_time_varying_speech(tmp_path: Path) -> None:
    path = build_speech_wav(tmp_path / "s.wav", 3.0, seed=0)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 48000)
    y, _ = sf.read(str(path), dtype="float64")
    assert np.sqrt(np.mean(y ** 2)) > 0.02
    frames = np.lib.stride_tricks.sliding_window_view(y, 800)[::200] * np.hanning(800)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    assert energy.std() / energy.mean() > 0.3
    assert energy.min() < 1e-3 * energy.max()  # pauses of near-silence
    freqs = np.fft.rfftfreq(800, 1 / 16000)
    loud = energy > 0.05 * energy.max()
    centroid = (power[loud] * freqs).sum(axis=1) / energy[loud]
    assert loud.mean() > 0.2 and centroid.std() > 150


def test_face_region_is_textured_and_colour_asymmetric(pack: Path) -> None:
    for k in (1, FRAMES):
        roi = _read(pack / "rois_320" / f"{k}.jpg").astype(np.float64)
        assert roi.std() > 20
        high = roi - cv2.GaussianBlur(roi, (0, 0), 2)
        assert high.std() > 3  # fine detail that a nearest/bilinear resize would change
        skin, skin_high = roi[175:215, 130:190], high[175:215, 130:190]  # chin
        assert skin.std(axis=(0, 1)).min() > 8 and skin_high.std() > 1.5
        blue, _, red = skin.reshape(-1, 3).mean(axis=0)
        assert abs(blue - red) > 10


def test_too_small_frame_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame 320x240 too small for a 184px face rect"):
        build_pack(tmp_path / "p", frames=2, width=320, height=240)
