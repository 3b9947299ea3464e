"""The Core ML readers against independent writers: the weight file (coremltools' own blob writer and
reader), the MIL text of compiled models, and neural-network `.mlmodel` specs built with coremltools'
NeuralNetworkBuilder (its own weight layout), each audited against an ONNX twin."""
from __future__ import annotations

import struct

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from harness.convert.audit import audit
from harness.coreml.blobs import BlobFile
from harness.coreml.mil_text import parse_program
from harness.coreml.quiet import coremltools
from harness.coreml.read import read_model
from reference.errors import InputError


@pytest.fixture(scope="module")
def ct():
    return coremltools()


def test_blob_reader_agrees_with_coremltools_and_names_damage(ct, tmp_path):
    from coremltools.libmilstoragepython import _BlobStorageReader, _BlobStorageWriter
    rng = np.random.default_rng(0)
    arrays = {"fp32": rng.standard_normal(37).astype(np.float32), "fp16": rng.standard_normal(20).astype(np.float16),
              "int8": rng.integers(-128, 127, 9).astype(np.int8)}
    path = tmp_path / "weight.bin"
    writer = _BlobStorageWriter(str(path))
    offsets = {"fp32": writer.write_float_data(arrays["fp32"]),
               "fp16": writer.write_fp16_data(arrays["fp16"].view(np.uint16)),
               "int8": writer.write_int8_data(arrays["int8"])}
    del writer
    theirs = _BlobStorageReader(str(path))
    ours = BlobFile(path)
    assert ours.count == 3
    assert np.array_equal(ours.read(offsets["fp32"]), np.asarray(theirs.read_float_data(offsets["fp32"])))
    assert np.array_equal(ours.read(offsets["fp16"]).view(np.uint16), np.asarray(theirs.read_fp16_data(offsets["fp16"])))
    assert np.array_equal(ours.read(offsets["int8"]), arrays["int8"])
    assert ours.floats(offsets["fp16"], (4, 5)).dtype == np.float32
    with pytest.raises(InputError, match="holds 37 values; the program declares shape"):
        ours.floats(offsets["fp32"], (6, 6))
    with pytest.raises(InputError, match="no blob record at offset 72"):
        ours.read(offsets["fp32"] + 8)
    data = path.read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:offsets["int8"] + 70])
    with pytest.raises(InputError, match="truncated"):
        BlobFile(tmp_path / "cut.bin").read(offsets["int8"])
    (tmp_path / "v1.bin").write_bytes(struct.pack("<II", 3, 1) + data[8:])
    with pytest.raises(InputError, match="version 1"):
        BlobFile(tmp_path / "v1.bin")


PROGRAM = """program(1.0)
[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{"coremlc-version", "3500.32.1"}})]
{
    func main<ios16>(tensor<fp32, [1, 2, 4, 4]> x, tensor<fp32, [1, 2, 8, 8]> skip) {
            tensor<string, []> pt = const()[name = tensor<string, []>("pt"), val = tensor<string, []>("custom")];
            tensor<int32, [4]> pd = const()[name = tensor<string, []>("pd"), val = tensor<int32, [4]>([0, 1, 2, 3])];
            tensor<fp16, [2, 2, 1, 1]> w = const()[name = tensor<string, []>("w"), val = tensor<fp16, [2, 2, 1, 1]>([0x1p-1, -0x1.8p+1, 1, -2.5])];
            tensor<fp32, [1, 2, 4, 4]> c = conv(pad = pd, pad_type = pt, weight = w, x = x)[name = tensor<string, []>("conv_0")];
            tensor<bool, []> ac = const()[name = tensor<string, []>("ac"), val = tensor<bool, []>(false)];
            tensor<fp32, []> two = const()[name = tensor<string, []>("two"), val = tensor<fp32, []>(0x1p+1)];
            tensor<fp32, [1, 2, 8, 8]> u = upsample_bilinear(align_corners = ac, scale_factor_height = two, scale_factor_width = two, x = c)[name = tensor<string, []>("up \\"1\\"")];
            tensor<int32, []> axis = const()[name = tensor<string, []>("axis"), val = tensor<int32, []>(-1)];
            tensor<fp32, [1, 2, 8, 16]> y = concat(axis = axis, values = (u, skip))[name = tensor<string, []>("y")];
        } -> (y);
}
"""


def test_mil_text_literals_tuples_and_names(tmp_path):
    opset, inputs, ops, outputs = parse_program(PROGRAM)
    assert opset == "ios16" and [t.name for t in inputs] == ["x", "skip"] and outputs == ["y"]
    weights = next(op for op in ops if op.outputs[0][0] == "w").const
    assert weights.dtype == "float16" and weights.value.tolist() == [[[[0.5]], [[-3.0]]], [[[1.0]], [[-2.5]]]]
    concat = next(op for op in ops if op.type == "concat")
    assert concat.inputs["values"] == ["u", "skip"]
    assert next(op for op in ops if op.type == "upsample_bilinear").name == 'up "1"'
    folder = tmp_path / "Tiny.mlmodelc"
    folder.mkdir()
    (folder / "model.mil").write_text(PROGRAM)
    graph = read_model(folder)
    assert not graph.weights_absent  # its one weight is immediate
    assert graph.ops[0].params == {"strides": (1, 1), "pad": (0, 1, 2, 3), "dilations": (1, 1), "groups": 1}
    assert graph.resamples()[0].params == {"mode": "bilinear", "coordinates": "half_pixel", "scale": (2.0, 2.0)}
    assert graph.weights[0].values.ravel().tolist() == [0.5, -3.0, 1.0, -2.5]
    (folder / "model.mil").write_text(PROGRAM.replace("} -> (y);", "} -> (y)").replace("concat(", "concat(("))
    with pytest.raises(InputError, match="unreadable MIL text"):
        read_model(folder)
    (folder / "model.mil").unlink()
    (folder / "model.espresso.net").write_text("{}")
    with pytest.raises(InputError, match="compiled neural network"):
        read_model(folder)


def _onnx_twin(weight: np.ndarray, bias: np.ndarray, coords: str) -> onnx.ModelProto:
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Resize", ["r", "", "scales"], ["y"], name="up", mode="linear",
                              coordinate_transformation_mode=coords)]
    graph = helper.make_graph(nodes, "twin", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                              [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"), scales])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _network(ct, weight: np.ndarray, bias: np.ndarray, upsample_mode: str, path) -> None:
    """The same three layers with coremltools' NeuralNetworkBuilder, which takes conv weights as
    (height, width, in, out) and writes the spec's (out, in, height, width) itself."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    builder = NeuralNetworkBuilder([("x", datatypes.Array(1, 2, 4, 4))], [("y", datatypes.Array(1, 3, 8, 8))],
                                   disable_rank5_shape_mapping=True, use_float_arraytype=True)
    builder.add_convolution("conv", 2, 3, 3, 3, 1, 1, "valid", 1, weight.transpose(2, 3, 1, 0), bias, True,
                            input_name="x", output_name="c", padding_top=1, padding_bottom=1, padding_left=1,
                            padding_right=1)
    builder.add_activation("relu", "RELU", "c", "r")
    builder.add_upsample("up", 2, 2, "r", "y", mode="BILINEAR", linear_upsample_mode=upsample_mode)
    ct.models.MLModel(builder.spec, skip_model_load=True).save(str(path))


def test_neural_network_mlmodel_is_audited_against_its_onnx_twin(ct, tmp_path):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    onnx.save(_onnx_twin(weight, bias, "align_corners"), str(tmp_path / "twin.onnx"))
    source = read_model(tmp_path / "twin.onnx")
    _network(ct, weight, bias, "ALIGN_CORNERS_TRUE", tmp_path / "twin.mlmodel")
    good = audit(read_model(tmp_path / "twin.mlmodel"), source)
    assert good.faithful and good.candidate.format == "neural network (.mlmodel)"
    assert [p.status for p in good.weights] == ["match", "match"] and good.precision == "fp32"
    _network(ct, weight, bias, "ALIGN_CORNERS_FALSE", tmp_path / "half.mlmodel")
    bad = [d for d in audit(read_model(tmp_path / "half.mlmodel"), source).differences if d.fails]
    assert [f.text for f in bad] == ["resample 1 (up): bilinear half_pixel, x2x2 in the candidate, bilinear "
                                     "align_corners, x2x2 in the source (coordinates differ)"]


def _pair(source: np.ndarray, candidate: np.ndarray, dtype: str = "float32"):
    from harness.convert.weights import classify
    from harness.coreml.graph import Weight
    return classify(Weight("w", source.shape, "float32", "op", "weight", source),
                    Weight("w", candidate.shape, dtype, "op", "weight", candidate))


def test_each_weight_difference_gets_its_name():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    assert _pair(w, w.copy()).status == "match"
    assert _pair(w, w.astype(np.float16).astype(np.float32), "float16").status == "match"
    assert _pair(w, w.astype(np.float16).astype(np.float32)).status != "match"  # fp16 values stored as fp32
    scaled = _pair(w, w * np.float32(0.9))
    assert scaled.status == "scaled" and scaled.detail == "scaled by 0.9"
    assert _pair(w, np.ascontiguousarray(w.transpose(1, 0, 2, 3))).detail == "axes permuted (1, 0, 2, 3)"
    assert _pair(w, np.zeros_like(w)).status == "zero"
    bad = w.copy()
    bad[0, 0, 0, 0] = np.nan
    assert _pair(w, bad).detail == "1 values are NaN or Inf"
    other = rng.standard_normal(w.shape).astype(np.float32)
    assert _pair(w, other).status == "random"
    nudged = w + 0.5 * other  # related, but not by rounding, scale or transposition
    assert _pair(w, nudged).status == "differs" and _pair(w, nudged).detail.startswith("correlation 0.8")
    small = rng.standard_normal(8).astype(np.float32)
    assert _pair(small, rng.standard_normal(8).astype(np.float32)).status == "differs"  # too few values to call
