"""Bad models: missing, not ONNX, wrong input/output names, shapes or dtypes (the error says what was
expected), NaN/Inf outputs (an error naming the model, exit 2 from the CLI) (issue 8)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.cli import main
from reference.models import ENCODER_FILE, ENCODER_IO, GENERATOR_FILE, GENERATOR_IO, ModelFiles, Models, check_model
from expect import expect_error

FLOAT = TensorProto.FLOAT


def save(path: Path, nodes: list, inputs: list, outputs: list, inits: list) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def encoder(path: Path, name: str = "mel", shape: tuple = ("N", 1, 80, 16), dtype: int = FLOAT,
            out: str = "emb", scale: float = 1.0) -> Path:
    """mel (N,1,80,16) -> Flatten -> MatMul (1280x512) -> * scale -> emb (N,512)."""
    w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.01, (1280, 512)).astype(np.float32), "w")
    s = numpy_helper.from_array(np.array(scale, np.float32), "s")
    nodes = [helper.make_node("Flatten", [name], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"]),
             helper.make_node("Mul", ["y", "s"], [out])]
    return save(path, nodes, [helper.make_tensor_value_info(name, dtype, list(shape))],
                [helper.make_tensor_value_info(out, FLOAT, ["N", 512])], [w, s])


def generator(path: Path, shape: tuple = (1, 6, 320, 320), audio: str = "audio", scale: float = 1.0) -> Path:
    """output = sigmoid(input[:, :3] + mean(audio)) * scale."""
    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("st", [0]), ("en", [3]), ("ax", [1]))] + [numpy_helper.from_array(np.array(scale, np.float32), "s")]
    nodes = [helper.make_node("Slice", ["input", "st", "en", "ax"], ["x"]),
             helper.make_node("ReduceMean", [audio], ["m"], keepdims=1),
             helper.make_node("Add", ["x", "m"], ["xa"]), helper.make_node("Sigmoid", ["xa"], ["y"]),
             helper.make_node("Mul", ["y", "s"], ["output"])]
    inputs = [helper.make_tensor_value_info("input", FLOAT, list(shape)),
              helper.make_tensor_value_info(audio, FLOAT, [1, 32, 16, 16])]
    return save(path, nodes, inputs, [helper.make_tensor_value_info("output", FLOAT, [1, 3, 320, 320])], consts)


# --------------------------------------------------------------------------- missing models

def test_missing_models_folder(tmp_path):
    expect_error(lambda: ModelFiles.from_dir(tmp_path / "nowhere"), tmp_path / "nowhere",
                 "no audio_encoder.onnx + generator.onnx: the models folder does not exist")


def test_empty_models_folder(tmp_path):
    expect_error(lambda: ModelFiles.from_dir(tmp_path), tmp_path,
                 "no audio_encoder.onnx + generator.onnx here or in models/", "fixtures models")


@pytest.mark.parametrize("present, absent", [(ENCODER_FILE, GENERATOR_FILE), (GENERATOR_FILE, ENCODER_FILE)])
def test_one_model_missing_is_named(tmp_path, present, absent):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / present).write_bytes(b"x")
    expect_error(lambda: ModelFiles.from_dir(tmp_path), tmp_path / "models" / absent,
                 "model file not found", f"next to {present}")


# --------------------------------------------------------------------------- not ONNX, wrong I/O

NOT_ONNX = [
    (b"not a model at all" * 10, "not an ONNX model (DecodeError)"),
    (b"", "not an ONNX model (empty graph)"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "not an ONNX model"),
]


@pytest.mark.parametrize("content, fragment", NOT_ONNX)
def test_not_onnx_is_named(tmp_path, content, fragment):
    path = tmp_path / "audio_encoder.onnx"
    path.write_bytes(content)
    expect_error(lambda: check_model(path, ENCODER_IO), path, fragment)


WRONG_IO = [
    (lambda p: encoder(p, name="spectrogram"), ENCODER_IO,
     ("inputs are ['spectrogram'], expected ['mel']", "export with input names mel")),
    (lambda p: encoder(p, out="embedding"), ENCODER_IO, ("outputs are ['embedding'], expected ['emb']",)),
    (lambda p: encoder(p, shape=("N", 1, 80, 32)), ENCODER_IO,
     ("input 'mel' has shape (None, 1, 80, 32), expected ('N', 1, 80, 16)",)),
    (lambda p: encoder(p, shape=(1, 80, 16)), ENCODER_IO, ("input 'mel' has shape (1, 80, 16)",)),
    (lambda p: encoder(p, dtype=TensorProto.DOUBLE), ENCODER_IO, ("input 'mel' is double, expected float32",)),
    (lambda p: encoder(p, dtype=TensorProto.FLOAT16), ENCODER_IO, ("input 'mel' is float16, expected float32",)),
    (lambda p: generator(p, shape=(1, 6, 328, 328)), GENERATOR_IO,
     ("input 'input' has shape (1, 6, 328, 328), expected (1, 6, 320, 320)",)),
    (lambda p: generator(p, audio="aud"), GENERATOR_IO, ("inputs are ['aud', 'input'], expected ['audio', 'input']",)),
    (lambda p: encoder(p), GENERATOR_IO, ("inputs are ['mel'], expected ['audio', 'input']",)),
]


@pytest.mark.parametrize("build, io, fragments", WRONG_IO)
def test_wrong_io_says_what_was_expected(tmp_path, build, io, fragments):
    path = build(tmp_path / "model.onnx")
    expect_error(lambda: check_model(path, io), path, *fragments)


@pytest.mark.parametrize("case", [f"io-{k}" for k in range(len(WRONG_IO))]
                         + [f"file-{k}" for k in range(len(NOT_ONNX))])
def test_models_say_what_check_model_says(tmp_path, case):
    """Models checks ONNX Runtime's loaded sessions, and reads a file ONNX Runtime cannot load with
    onnx: the errors of check_model either way."""
    kind, k = case.split("-")
    if kind == "io":
        build, io, fragments = WRONG_IO[int(k)]
    else:
        content, fragment = NOT_ONNX[int(k)]
        build, io, fragments = (lambda p: p.write_bytes(content)), ENCODER_IO, (fragment,)
    enc, gen = encoder(tmp_path / ENCODER_FILE), generator(tmp_path / GENERATOR_FILE)
    bad = enc if io is ENCODER_IO else gen
    build(bad)
    expect_error(lambda: Models(ModelFiles(enc, gen), threads=1), bad, *fragments)


def test_handmade_models_with_the_right_io_load(tmp_path):
    models = Models(ModelFiles(encoder(tmp_path / ENCODER_FILE), generator(tmp_path / GENERATOR_FILE)), threads=1)
    assert models.encode(np.zeros((3, 1, 80, 16), np.float32)).shape == (3, 512)
    out = models.generate(np.zeros((1, 6, 320, 320), np.float32), np.zeros((1, 32, 16, 16), np.float32))
    assert out.shape == (1, 3, 320, 320) and np.allclose(out, 0.5)


# --------------------------------------------------------------------------- NaN / Inf outputs

@pytest.mark.parametrize("scale, count", [(float("nan"), 3 * 320 * 320), (float("inf"), 3 * 320 * 320)])
def test_non_finite_generator_output_names_the_model(tmp_path, scale, count):
    files = ModelFiles(encoder(tmp_path / ENCODER_FILE), generator(tmp_path / GENERATOR_FILE, scale=scale))
    models = Models(files, threads=1)
    expect_error(lambda: models.generate(np.zeros((1, 6, 320, 320), np.float32), np.zeros((1, 32, 16, 16), np.float32)),
                 files.generator, f"output 'output' holds {count} NaN/Inf values of {count}")


def test_non_finite_encoder_output_names_the_model(tmp_path):
    files = ModelFiles(encoder(tmp_path / ENCODER_FILE, scale=float("nan")), generator(tmp_path / GENERATOR_FILE))
    models = Models(files, threads=1)
    expect_error(lambda: models.encode(np.ones((2, 1, 80, 16), np.float32)), files.encoder,
                 "output 'emb' holds 1024 NaN/Inf values of 1024")


def test_cli_exits_2_naming_a_nan_generator(tmp_path, tiny_models_dir, synthetic_pack, capsys):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(tiny_models_dir / ENCODER_FILE, models / ENCODER_FILE)
    generator(models / GENERATOR_FILE, scale=float("nan"))
    rc = main(["infer", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
               "--models", str(models), "--output", str(tmp_path / "out"), "--frames", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{models / GENERATOR_FILE}: output 'output' holds" in err and "NaN/Inf" in err
    assert "Traceback" not in err


def test_cli_exits_2_naming_a_model_with_wrong_inputs(tmp_path, tiny_models_dir, synthetic_pack, capsys):
    models = tmp_path / "models"
    models.mkdir()
    encoder(models / ENCODER_FILE, name="spectrogram")
    shutil.copyfile(tiny_models_dir / GENERATOR_FILE, models / GENERATOR_FILE)
    rc = main(["infer", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
               "--models", str(models), "--output", str(tmp_path / "out"), "--frames", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{models / ENCODER_FILE}: inputs are ['spectrogram'], expected ['mel']" in err
