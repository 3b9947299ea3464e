"""The conventions audio_source, paste, resize_kernel, output and precision: what each does, and that
the convention fit (tests/test_convention_fit.py) names each one when a candidate was made with it."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from reference import image
from reference.conventions import Conventions
from reference.data import Pack
from reference.errors import InputError
from reference.features import FEATURES_FILE, audio_window, read_features_file
from reference.models import Models
from reference.output import jpeg_roundtrip
from reference.pipeline import ReferencePipeline, audio_features
from reference.precision import fp16_files, round_bf16, with_precision

SEARCH_FRAMES = 2


def render(pack: Pack, models: Models, conv: Conventions, n: int, wav=None) -> list:
    """The first `n` FrameResults of the reference under `conv`."""
    wav = wav or pack.root / "audio.wav"
    feats = audio_features(wav, models, conv, n)
    return list(ReferencePipeline(pack, models, conv).frames(feats, n))


# ----------------------------------------------------------------------------- audio_source


def test_aud_ave_feeds_the_file_and_ignores_the_wav(tmp_path, pack, models):
    conv = Conventions.parse("audio_source=aud_ave")
    speech = pack.root / "audio.wav"
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(sf.info(speech).frames, np.int16), 16000, subtype="PCM_16")
    rows = read_features_file(pack.root / FEATURES_FILE)
    assert rows.shape == (pack.n_images - 1, 512)
    with_speech, with_silence = render(pack, models, conv, 3), render(pack, models, conv, 3, silence)
    for i, (a, b) in enumerate(zip(with_speech, with_silence)):
        assert np.array_equal(a.audio, audio_window(rows, i))
        assert np.array_equal(a.frame, b.frame)
    canonical_silence = render(pack, models, Conventions(), 3, silence)
    assert not np.array_equal(canonical_silence[1].frame, with_silence[1].frame)


def test_aud_ave_missing_names_the_file(tmp_path, pack, models):
    copy = tmp_path / "pack"
    copy.mkdir()
    for entry in pack.root.iterdir():
        if entry.name != FEATURES_FILE:
            (copy / entry.name).symlink_to(entry)
    with pytest.raises(InputError, match=f"{FEATURES_FILE}.*not found"):
        ReferencePipeline(Pack(copy), models, Conventions.parse("audio_source=aud_ave"))
    (copy / FEATURES_FILE).write_bytes(b"\0" * 12)
    with pytest.raises(InputError, match="not a whole number of 512-value rows"):
        read_features_file(copy / FEATURES_FILE)


def test_sanders_aud_ave_is_padded_features_one_row_per_frame_but_the_last(shared_data):
    rows = read_features_file(shared_data / "sanders_pack" / FEATURES_FILE)
    assert rows.shape == (522, 512) and rows.min() >= 0  # post-ReLU embeddings, 523 frames
    assert np.array_equal(rows[0], rows[1]) and np.array_equal(rows[-1], rows[-2])  # edge padding


# ----------------------------------------------------------------------------- paste, resize, output


def test_direct_paste_stretches_the_patch_over_the_whole_rect():
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (120, 160, 3), np.uint8)
    crop = rng.integers(0, 256, (328, 328, 3), np.uint8)
    patch = rng.integers(0, 256, (320, 320, 3), np.uint8)
    rect = (20, 10, 101, 91)
    out = image.paste(full, crop, patch, rect, "bilinear", mode="direct")
    assert np.array_equal(out[10:91, 20:101], cv2.resize(patch, (81, 81), interpolation=cv2.INTER_LINEAR))
    out[10:91, 20:101] = full[10:91, 20:101]
    assert np.array_equal(out, full)
    with pytest.raises(ValueError, match="paste mode"):
        image.paste(full, crop, patch, rect, mode="crop320")


def test_resize_kernels():
    img = np.random.default_rng(1).integers(0, 256, (90, 70, 3), np.uint8)
    pil = np.asarray(Image.fromarray(img).resize((328, 328), Image.Resampling.BICUBIC))
    assert np.array_equal(image.resize(img, (328, 328), "pil_cubic"), pil)
    for name, flag in (("cv2_cubic", cv2.INTER_CUBIC), ("bilinear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST)):
        assert np.array_equal(image.resize(img, (328, 328), name), cv2.resize(img, (328, 328), interpolation=flag))
    assert not np.array_equal(pil, image.resize(img, (328, 328), "cv2_cubic"))
    with pytest.raises(ValueError, match="resize kernel"):
        image.resize(img, (328, 328), "lanczos")


def test_resize_kernel_also_applies_to_computed_crops(pack, models):
    computed = ReferencePipeline(pack, models, Conventions.parse("crop_source=computed"))
    nearest = ReferencePipeline(pack, models, Conventions.parse("crop_source=computed,resize_kernel=nearest"))
    a, b = computed.load_template(0), nearest.load_template(0)
    assert np.array_equal(b.crop_328, image.crop_face(a.full, a.rect, cv2.INTER_NEAREST))
    assert np.array_equal(b.roi_320, b.crop_328[4:324, 4:324]) and not np.array_equal(a.roi_320, b.roi_320)
    # with the pack's own crops only the paste resizes
    assert np.array_equal(ReferencePipeline(pack, models, Conventions.parse("resize_kernel=nearest"))
                          .load_template(0).crop_328, pack.frame(1).crop_328)


def test_output_jpeg_takes_any_quality_and_round_trips_the_frame(pack, models):
    assert Conventions.parse("output=jpeg37").output == "jpeg37"
    canonical = render(pack, models, Conventions(), 2)
    lossy = render(pack, models, Conventions.parse("output=jpeg37"), 2)
    for a, b in zip(canonical, lossy):
        assert np.array_equal(b.frame, jpeg_roundtrip(a.frame, 37)) and not np.array_equal(a.frame, b.frame)
        assert np.array_equal(a.patch, b.patch)


# ----------------------------------------------------------------------------- precision


def test_round_bf16_rounds_to_nearest_even():
    ulp = 2.0 ** -7  # bfloat16 keeps 7 mantissa bits
    x = np.array([1.0, 1 + ulp / 2, 1 + 1.5 * ulp, 1 + 0.6 * ulp, -3.0, np.nan, np.inf], np.float32)
    out = round_bf16(x)
    assert out.dtype == np.float32
    assert out[:5].tolist() == [1.0, 1.0, 1 + 2 * ulp, 1 + ulp, -3.0]
    assert np.isnan(out[5]) and out[6] == np.inf


def test_precision_variants_run_other_models(models):
    fp16 = with_precision(models, "fp16")
    assert fp16.files == fp16_files(models.files) and fp16 is with_precision(models, "fp16")
    assert with_precision(models, "fp32") is models
    x = np.full((1, 6, 320, 320), 0.3, np.float32)
    aud = np.full((1, 32, 16, 16), 0.7, np.float32)
    bf16 = with_precision(models, "bf16").generate(x, aud)
    assert np.array_equal(bf16, round_bf16(models.generate(round_bf16(x), round_bf16(aud))))
