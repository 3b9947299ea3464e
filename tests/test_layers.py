"""First divergent layer on the tiny synthetic generator (harness.diagnosis.layers)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from harness.diagnosis.layers import first_divergent_layer

TOL = 1e-4


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    from fixtures.models import build_models
    return build_models(tmp_path_factory.mktemp("layers-models"), "tiny", seed=0)["generator"]


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(7)
    coarse = rng.random((1, 6, 20, 20)).astype(np.float32)
    image = np.kron(coarse, np.ones((16, 16), np.float32))  # blocky 320x320 ...
    k = np.ones(9, np.float32) / 9  # ... smoothed along both axes
    for axis in (2, 3):
        image = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, image)
    audio = rng.standard_normal((1, 32, 16, 16)).astype(np.float32)
    return {"input": np.ascontiguousarray(image, np.float32), "audio": audio}


@pytest.fixture(scope="module")
def corrupted(generator, tmp_path_factory):
    """A copy with one mid-graph Conv's weight scaled by 1.01; returns (path, that Conv's name)."""
    model = onnx.load(str(generator))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    target = convs[len(convs) // 2]
    inits = {t.name: t for t in model.graph.initializer}
    weight = inits[target.input[1]]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float32(1.01), weight.name))
    path = tmp_path_factory.mktemp("corrupt") / "generator.onnx"
    onnx.save(model, str(path))
    return path, target.name


def test_fp16_names_the_first_node_over_tolerance(generator, inputs):
    result = first_divergent_layer(generator, inputs, "fp16", tolerance=TOL)
    assert result["node"] is not None
    assert result["max_abs"] > TOL
    assert result["op_type"] in {"Conv", "Relu", "Add", "Concat", "Resize", "Sigmoid"}
    assert result["final_max_abs"] > 0
    assert len(result["largest"]) == 5
    # fp16 rounds the weights and the input of the very first Conv: it is over 1e-4 already (from the
    # graph itself, not from the code under test)
    first = onnx.load(str(generator)).graph.node[0]
    assert (result["index"], result["node"], result["op_type"]) == (0, first.name, first.op_type)
    assert result["nodes_compared"] == len(onnx.load(str(generator)).graph.node) > 100


def test_same_model_on_ort_cpu_has_no_divergent_node(generator, inputs):
    result = first_divergent_layer(generator, inputs, "onnxruntime:CPUExecutionProvider", tolerance=1e-6)
    assert result["node"] is None
    assert result["largest"][0]["max_abs"] <= 1e-6
    assert result["final_max_abs"] <= 1e-6


def test_corrupted_conv_is_named(corrupted, generator, inputs):
    path, conv = corrupted
    result = first_divergent_layer(generator, inputs, path, tolerance=1e-6)
    assert result["node"] == conv
    assert result["op_type"] == "Conv"
    assert result["index"] == [n.name for n in onnx.load(str(path)).graph.node].index(conv)


def test_bisection_finds_the_same_node(corrupted, generator, inputs):
    candidate = corrupted[0]  # a mid-graph divergence: fp16 already differs at node 0
    full = first_divergent_layer(generator, inputs, candidate, tolerance=TOL)
    bisected = first_divergent_layer(generator, inputs, candidate, tolerance=TOL, max_outputs=10)
    assert bisected["node"] == full["node"] is not None
    assert bisected["rounds"] > 1
    assert bisected["nodes_compared"] < full["nodes_compared"]


def test_openvino_candidate_runs(generator, inputs):
    pytest.importorskip("openvino")
    result = first_divergent_layer(generator, inputs, "openvino", tolerance=TOL,
                                   candidate_options={"INFERENCE_PRECISION_HINT": "f32"})
    assert result["nodes_compared"] > 0
    assert result["final_max_abs"] is not None and result["final_max_abs"] < 1e-2


def test_unknown_candidate_is_refused(generator, inputs):
    with pytest.raises(ValueError, match="unknown candidate"):
        first_divergent_layer(generator, inputs, "tensorrt")
