"""Synthetic models: I/O contract, size, determinism, and non-degenerate behaviour on the Sanders pack."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from fixtures.models import build_models
from reference import audio, features, image
from reference.errors import InputError
from reference.models import ENCODER_IO, GENERATOR_IO, ModelFiles, Models, check_model

BOX = np.zeros((320, 320), bool)
BOX[5:310, 5:315] = True  # the canonical mask: x 5..314, y 5..309


def _params(path) -> int:
    model = onnx.load(str(path))
    return sum(numpy_helper.to_array(t).size for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    build_models(out, "full", seed=0)
    return out


@pytest.fixture(scope="module")
def full_models(full_dir):
    return Models(ModelFiles.from_dir(full_dir), threads=2)


@pytest.fixture(scope="module")
def talk(shared_data, full_models):
    mel = audio.melspectrogram(audio.load_wav(shared_data / "audio" / "talk_hb.wav"))
    emb = full_models.encode(audio.encoder_windows(mel))
    silence = full_models.encode(audio.encoder_windows(np.full((16, 80), -4.0, np.float32)))[:1]
    return emb, silence


def test_full_models_match_the_architecture(full_dir):
    gen, enc = full_dir / "generator.onnx", full_dir / "audio_encoder.onnx"
    assert abs(_params(gen) - 12.2e6) <= 0.05 * 12.2e6
    assert abs(_params(enc) - 2.8e6) <= 0.05 * 2.8e6
    check_model(gen, GENERATOR_IO)
    check_model(enc, ENCODER_IO)
    ops = {n.op_type for n in onnx.load(str(gen)).graph.node}
    assert {"Conv", "Relu", "Add", "Concat", "Resize", "Sigmoid"} <= ops
    resizes = [n for n in onnx.load(str(gen)).graph.node if n.op_type == "Resize"]
    assert len(resizes) == 5
    for node in resizes:
        attrs = {a.name: a.s for a in node.attribute}
        assert attrs == {"mode": b"linear", "coordinate_transformation_mode": b"align_corners"}
    depthwise = [n for n in onnx.load(str(gen)).graph.node if n.op_type == "Conv"
                 and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(depthwise) > 20


def test_encoder_has_a_dynamic_batch_axis_and_batching_is_exact(full_models, talk):
    emb, _ = talk
    windows = audio.encoder_windows(audio.melspectrogram(np.sin(np.arange(32000) * 0.05).astype(np.float32)))
    one_by_one = np.concatenate([full_models.encoder.run(None, {"mel": w[None]})[0] for w in windows])
    assert np.max(np.abs(full_models.encode(windows) - one_by_one)) <= 1e-5
    assert emb.shape == (1119, 512)


def test_tiny_models_are_small_fast_and_keep_the_io(tmp_path):
    paths = build_models(tmp_path, "tiny")
    for path in paths.values():
        assert path.stat().st_size < 1_000_000
    models = Models(ModelFiles.from_dir(tmp_path), threads=1)
    out = models.generate(np.zeros((1, 6, 320, 320), np.float32), np.zeros((1, 32, 16, 16), np.float32))
    assert out.shape == (1, 3, 320, 320) and out.dtype == np.float32
    assert models.encode(np.zeros((3, 1, 80, 16), np.float32)).shape == (3, 512)


def test_same_seed_gives_byte_identical_files(tmp_path, full_dir):
    build_models(tmp_path / "a", "tiny", seed=3)
    build_models(tmp_path / "b", "tiny", seed=3)
    build_models(tmp_path / "c", "tiny", seed=4)
    for name in ("generator.onnx", "audio_encoder.onnx"):
        assert _sha(tmp_path / "a" / name) == _sha(tmp_path / "b" / name)
        assert _sha(tmp_path / "a" / name) != _sha(tmp_path / "c" / name)
    build_models(tmp_path / "full", "full", seed=0)
    for name in ("generator.onnx", "audio_encoder.onnx"):
        assert _sha(tmp_path / "full" / name) == _sha(full_dir / name)


def test_embeddings_vary_across_windows_of_speech(talk):
    emb, silence = talk
    assert emb.std(axis=0).mean() >= 0.05 * emb.std()
    assert np.abs(emb - silence).mean() > 0.05 * emb.std()


def _inputs(shared_data, k):
    roi = cv2.imread(str(shared_data / "sanders_pack" / "rois_320" / f"{k}.jpg"))
    return roi, image.generator_input(roi, image.mask_roi(roi))


def test_generator_output_is_not_degenerate_and_follows_speech(shared_data, full_models, talk):
    emb, silence = talk
    padded = features.pad_features(emb)
    silent_window = np.repeat(silence, 16, axis=0).reshape(1, 32, 16, 16)
    mouth, outside = [], []
    for i in range(10, 500, 40):
        roi, x = _inputs(shared_data, i + 1)
        out = full_models.generate(x, features.audio_window(padded, i))[0]
        assert out.std() >= 0.1, f"frame {i}: output std {out.std():.3f}"
        ref = roi.transpose(2, 0, 1).astype(np.float32) / 255
        corr = np.corrcoef(out[:, ~BOX].ravel(), ref[:, ~BOX].ravel())[0, 1]
        assert corr >= 0.5, f"frame {i}: correlation with the ROI outside the mouth box {corr:.3f}"
        diff = np.abs(out - full_models.generate(x, silent_window)[0])
        mouth.append(diff[:, BOX].mean())
        outside.append(diff[:, ~BOX].mean())
    assert np.mean(mouth) >= 3 / 255
    assert np.mean(np.array(mouth) >= 3 / 255) >= 0.75  # speech pauses are close to silence
    assert all(o < m for o, m in zip(outside, mouth))


def test_a_random_init_generator_would_fail_the_degeneracy_check(full_dir, shared_data, tmp_path):
    """The check above can fail: the same graph with every weight drawn at random prints grey."""
    model = onnx.load(str(full_dir / "generator.onnx"))
    rng = np.random.default_rng(0)
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32 and arr.ndim == 4:
            fan_in = arr.shape[1] * arr.shape[2] * arr.shape[3]
            t.CopyFrom(numpy_helper.from_array(
                (rng.standard_normal(arr.shape) * np.sqrt(1 / fan_in) * 0.5).astype(np.float32), t.name))
    path = tmp_path / "generator.onnx"
    onnx.save(model, str(path))
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, x = _inputs(shared_data, 100)
    out = session.run(None, {"input": x, "audio": np.zeros((1, 32, 16, 16), np.float32)})[0]
    assert out.std() < 0.1


def test_check_model_names_what_was_expected(tmp_path, full_dir):
    model = onnx.load(str(full_dir / "audio_encoder.onnx"))
    model.graph.input[0].name = "spectrogram"
    for node in model.graph.node:
        node.input[:] = ["spectrogram" if i == "mel" else i for i in node.input]
    bad = tmp_path / "renamed.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(InputError, match="expected \\['mel'\\]"):
        check_model(bad, ENCODER_IO)
    with pytest.raises(InputError, match="expected \\(1, 6, 320, 320\\)|inputs are"):
        check_model(full_dir / "audio_encoder.onnx", GENERATOR_IO)
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    with pytest.raises(InputError, match="not an ONNX model"):
        check_model(junk, ENCODER_IO)
    with pytest.raises(InputError, match="no audio_encoder.onnx"):
        ModelFiles.from_dir(tmp_path)
