"""Folding a TorchScript export's shape arithmetic (harness/coreml/fold.py) on tiny hand-built graphs,
checked against ONNX Runtime on the unfolded graph; the ops `torch.onnx.export` leaves for the translator
(Pad, Reshape, Transpose, BatchNormalization, Mul, Sub, Div) translated and audited faithful; the
audit naming a node whose folded value is wrong."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from harness.convert.audit import audit
from harness.coreml.fold import fold
from harness.coreml.read import read_model
from reference.errors import InputError


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name + "_v"))


def size_matching_model() -> onnx.ModelProto:
    """x (N, 2, 5, 6) padded to 8 x 8 the way the TorchScript exporter writes U-Net's F.pad by a shape
    difference: Shape -> Gather -> Sub -> Div -> Cast -> Unsqueeze -> Concat -> ConstantOfShape -> Concat
    -> Reshape -> Slice -> Transpose -> Reshape -> Pad, then a Relu."""
    nodes = [_const("eight", np.array(8, np.int64)), _const("two", np.array(2, np.int64)),
             _const("i2", np.array(2, np.int64)), _const("i3", np.array(3, np.int64)),
             _const("zero_axis", np.array([0], np.int64)), _const("eight_pads", np.array(8, np.int64))]
    for axis, idx in (("h", "i2"), ("w", "i3")):
        nodes += [helper.make_node("Shape", ["x"], [f"shape_{axis}"]),
                  helper.make_node("Gather", [f"shape_{axis}", idx], [f"size_{axis}"], axis=0),
                  helper.make_node("Sub", ["eight", f"size_{axis}"], [f"diff_{axis}"]),
                  helper.make_node("Div", [f"diff_{axis}", "two"], [f"half_{axis}"]),
                  helper.make_node("Cast", [f"half_{axis}"], [f"before_{axis}"], to=TensorProto.INT64),
                  helper.make_node("Sub", [f"diff_{axis}", f"before_{axis}"], [f"after_{axis}"])]
    parts = ["before_w", "after_w", "before_h", "after_h"]
    nodes += [helper.make_node("Unsqueeze", [p, "zero_axis"], [f"{p}_1"]) for p in parts]
    nodes += [helper.make_node("Concat", [f"{p}_1" for p in parts], ["torch_pads"], axis=0),
              helper.make_node("Shape", ["torch_pads"], ["n_given"]),
              helper.make_node("Sub", ["eight_pads", "n_given"], ["n_rest"]),
              helper.make_node("ConstantOfShape", ["n_rest"], ["rest"],
                               value=numpy_helper.from_array(np.array([0], np.int64))),
              helper.make_node("Concat", ["torch_pads", "rest"], ["all_pads"], axis=0),
              _const("pairs_shape", np.array([-1, 2], np.int64)),
              helper.make_node("Reshape", ["all_pads", "pairs_shape"], ["pairs"]),
              _const("s_start", np.array([-1], np.int64)), _const("s_end", np.array([-(2 ** 63) + 1], np.int64)),
              _const("s_axis", np.array([0], np.int64)), _const("s_step", np.array([-1], np.int64)),
              helper.make_node("Slice", ["pairs", "s_start", "s_end", "s_axis", "s_step"], ["reversed"]),
              helper.make_node("Transpose", ["reversed"], ["onnx_order"], perm=[1, 0]),
              _const("flat", np.array([-1], np.int64)),
              helper.make_node("Reshape", ["onnx_order", "flat"], ["pads"]),
              helper.make_node("Pad", ["x", "pads"], ["padded"], mode="constant", name="pad"),
              helper.make_node("Relu", ["padded"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "size_matching",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2, 5, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, 8, 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_folding_replaces_the_shape_arithmetic_by_what_onnx_runtime_computes():
    model = size_matching_model()
    folded = fold(model, Path("tiny.onnx"))
    assert [n.op_type for n in folded.model.graph.node] == ["Pad", "Relu"]
    assert folded.fixed == {"x": ((None, 2, 5, 6), (1, 2, 5, 6))}
    assert folded.values["pads"].tolist() == [0, 0, 1, 1, 0, 0, 2, 1]  # h 5 -> 8: 1 + 2, w 6 -> 8: 1 + 1
    assert {n.op_type for n in folded.nodes} >= {"Shape", "Gather", "Sub", "Div", "Cast", "Unsqueeze", "Concat",
                                                 "ConstantOfShape", "Reshape", "Slice", "Transpose"}
    assert len(model.graph.node) == 39  # the source is left as it was
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6)).astype(np.float32)
    want = _ort(model, x)
    assert want.shape == (1, 2, 8, 8)
    np.testing.assert_array_equal(_ort(folded.model, x), want)
    y_shape = [d.dim_value for d in folded.model.graph.output[0].type.tensor_type.shape.dim]
    assert y_shape == [1, 2, 8, 8]


def test_an_axis_other_than_the_batch_left_dynamic_is_refused():
    model = size_matching_model()
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    with pytest.raises(InputError, match="input 'x' has shape"):
        fold(model, Path("tiny.onnx"))


def test_the_audit_names_a_node_whose_folded_value_differs(tmp_path, monkeypatch):
    import harness.convert.folding as folding
    path = tmp_path / "tiny.onnx"
    onnx.save(size_matching_model(), str(path))
    lines = folding.check_folding(path)
    assert len(lines) == 1 and not lines[0][1]
    assert lines[0][0].startswith("25 nodes of shape arithmetic folded at x 1x2x5x6 (")
    assert "the same outputs (max abs diff 0)" in lines[0][0]

    def wrong_fold(model, where):
        result = fold(model, where)
        result.values["before_h"] = result.values["before_h"] + 1
        result.values["pads"] = np.array([0, 0, 2, 1, 0, 0, 2, 1], np.int64)  # a pixel more above
        pads = next(t for t in result.model.graph.initializer if t.name == "pads")
        pads.CopyFrom(numpy_helper.from_array(result.values["pads"], "pads"))
        return result
    monkeypatch.setattr(folding, "fold", wrong_fold)
    texts = [text for text, fails in folding.check_folding(path) if fails]
    assert any(t.startswith("folding changed Cast before_h: before_h is 2 folded, 1 under ONNX Runtime") for t in texts)
    assert any(t.startswith("folding changed Reshape pads: pads is [0, 0, 2, 1, 0, 0, 2, 1] folded") for t in texts)
    assert "output 'y' of the folded copy has shape (1, 2, 9, 8), the source's (1, 2, 8, 8) under ONNX Runtime" \
        in texts


def _ops_model(opset: int) -> onnx.ModelProto:
    """Conv -> BatchNormalization -> Mul, Sub, Div by constants -> Transpose -> Reshape -> Pad (reflect),
    Pad constant in the attribute form before opset 11."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in (
        ("w", (4, 2, 3, 3)), ("b", (4,)), ("gamma", (4,)), ("beta", (4,)), ("mean", (4,)), ("scale", (1, 4, 1, 1)),
        ("shift", (1, 4, 1, 1)), ("divisor", (1, 4, 1, 1)))]
    inits += [numpy_helper.from_array(np.abs(rng.standard_normal(4)).astype(np.float32) + 0.5, "var"),
              numpy_helper.from_array(np.array([0, 8, 6, 3], np.int64), "shape")]
    pad = [0, 0, 1, 2, 0, 0, 3, 1]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["n"], epsilon=1e-3),
             helper.make_node("Mul", ["n", "scale"], ["m"]), helper.make_node("Sub", ["m", "shift"], ["s"]),
             helper.make_node("Div", ["s", "divisor"], ["d"]),
             helper.make_node("Transpose", ["d"], ["t"], perm=[0, 1, 3, 2]),
             helper.make_node("Reshape", ["t", "shape"], ["r"])]
    if opset >= 11:
        inits.append(numpy_helper.from_array(np.array(pad, np.int64), "pads"))
        nodes.append(helper.make_node("Pad", ["r", "pads"], ["y"], mode="reflect"))
    else:
        nodes.append(helper.make_node("Pad", ["r"], ["y"], mode="constant", pads=pad, value=0.5))
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 12, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [10, 13, 20])
def test_the_ops_a_torch_export_leaves_translate_and_audit_faithful(tmp_path, opset):
    from harness.coreml.translate import convert_onnx, translate
    source = tmp_path / "ops.onnx"
    onnx.save(_ops_model(opset), str(source))
    model, folded = convert_onnx(source, "fp32")
    assert folded.nodes == [] and folded.fixed == {}
    model.save(str(tmp_path / "ops.mlpackage"))
    candidate = read_model(tmp_path / "ops.mlpackage")
    result = audit(candidate, read_model(source))
    assert result.faithful, [d.text for d in result.differences if d.fails]
    kinds = [op.kind for op in candidate.ops if op.kind not in ("const", "cast")]
    assert kinds == ["conv", "batch_norm", "mul", "sub", "real_div", "transpose", "reshape", "pad"]
    pad = next(op for op in translate(source).functions["main"].operations if op.op_type == "pad")
    assert pad.pad.val.tolist() == [1, 3, 2, 1]  # ONNX (h, w) befores then afters -> MIL (h, w) pairs
    assert pad.mode.val == ("reflect" if opset >= 11 else "constant")
    assert pad.constant_val.val == (0.0 if opset >= 11 else 0.5)


def test_an_opset_past_20_is_refused_by_name(tmp_path):
    from harness.coreml.translate import translate
    model = _ops_model(13)
    model.opset_import[0].version = 21
    onnx.save(model, str(tmp_path / "new.onnx"))
    with pytest.raises(InputError, match="opset 21: the translator knows the ops of opsets up to 20"):
        translate(tmp_path / "new.onnx")
