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
from reference.precision import converted_files, round_bf16, with_precision

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
    assert fp16.files == converted_files(models.files, "fp16") and fp16 is with_precision(models, "fp16")
    assert with_precision(models, "fp32") is models
    x = np.full((1, 6, 320, 320), 0.3, np.float32)
    aud = np.full((1, 32, 16, 16), 0.7, np.float32)
    emulated = with_precision(models, "bf16")
    assert emulated.files == converted_files(models.files, "bf16") and emulated is with_precision(models, "bf16")
    bf16 = emulated.generate(x, aud)
    assert np.array_equal(bf16, round_bf16(bf16))  # every output value is a bfloat16
    # rounding inside the network, not only at its boundary
    assert not np.array_equal(bf16, round_bf16(models.generate(round_bf16(x), round_bf16(aud))))


def _elementwise_graph():
    """x (1, 2, 3, 4) -> Mul(w) -> Add(b) -> Relu -> Concat with x -> Reshape to a shape computed from
    Shape(x) (int64 arithmetic that must stay untouched) -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(3)
    w = rng.normal(size=(1, 2, 3, 4)).astype(np.float32)
    b = rng.normal(size=(1, 2, 3, 4)).astype(np.float32)
    nodes = [helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Concat", ["r", "x"], ["c"], axis=1),
             helper.make_node("Shape", ["c"], ["s"]), helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Concat", ["n", "minus_one"], ["shape"], axis=0),
             helper.make_node("Reshape", ["c", "shape"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 48])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
         numpy_helper.from_array(np.array([0], np.int64), "zero"),
         numpy_helper.from_array(np.array([-1], np.int64), "minus_one")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, w, b


def test_bf16_model_rounds_the_weights_and_every_computed_value():
    """The emulated graph against numpy: float32 multiply and add are exactly rounded in both, so
    rounding the weights, the input and each computed value to bfloat16 gives the same bits."""
    import onnxruntime as ort
    from reference.precision import bf16_model
    model, w, b = _elementwise_graph()
    x = (np.random.default_rng(4).normal(size=(1, 2, 3, 4)) * 3).astype(np.float32)
    x[0, 0, 0, :2] = [1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8]  # ties: to even, down and up
    xr = round_bf16(x)
    relu = np.maximum(round_bf16(round_bf16(xr * round_bf16(w)) + round_bf16(b)), 0)
    expected = np.concatenate([relu, xr], axis=1).reshape(1, 48)
    emulated = ort.InferenceSession(bf16_model(model).SerializeToString(), providers=["CPUExecutionProvider"])
    assert np.array_equal(emulated.run(["y"], {"x": x})[0], expected)
    plain = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert not np.array_equal(plain.run(["y"], {"x": x})[0], expected)  # the known-bad input: float32 throughout


def test_round_bf16_is_onnx_runtimes_cast():
    """An independent computation of the rounding: ONNX Runtime's Cast to bfloat16 and back."""
    import onnxruntime as ort
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.BFLOAT16),
             helper.make_node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    rng = np.random.default_rng(5)
    x = (rng.normal(size=100_000) * 10.0 ** rng.integers(-6, 6, 100_000)).astype(np.float32)
    ties = ((np.arange(2000, dtype=np.uint32) << 16) | 0x8000).view(np.float32)
    x = np.concatenate([x, ties, np.array([np.inf, -np.inf, 0.0, -0.0], np.float32)])
    cast = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], {"x": x})[0]
    assert np.array_equal(cast, round_bf16(x))


def test_a_conversion_made_by_other_code_is_not_reused(models, monkeypatch):
    """The cache key of a precision copy follows the conversion's code (a changed `bf16_model`)."""
    from reference import precision
    first = converted_files(models.files, "bf16")
    assert converted_files(models.files, "bf16") == first
    monkeypatch.setattr(precision, "_code_key", lambda: "other-code")
    assert converted_files(models.files, "bf16").generator.parent != first.generator.parent
