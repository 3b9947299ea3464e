"""Shape arithmetic folded at the pipeline's fixed shapes, before translation.

`torch.onnx.export` (the TorchScript exporter) writes a U-Net's size matching (`F.pad` by the
difference of two shapes) as a few hundred nodes of shape arithmetic: Shape, Gather, Sub, Div, Cast,
Unsqueeze, Concat, ConstantOfShape, Reshape, Slice, Transpose feeding a Pad. At the pipeline's fixed
shapes (batch 1) every one of them is a constant. `fold` fixes the inputs' shapes, infers the shapes
with ONNX's shape inference, and evaluates every node whose inputs are constants, or which reads
only the shape of a tensor whose shape is now static, with ONNX's reference evaluator
(`onnx.reference.ReferenceEvaluator`); their outputs become initializers and the nodes left without
a use are dropped. Repeated until nothing more folds (a folded Pad makes the next Shape static).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from reference.errors import InputError
from reference.models import ENCODER_IO, GENERATOR_IO

PIPELINE_SHAPES = {name: tuple(1 if d is None else d for d in shape)
                   for io in (ENCODER_IO, GENERATOR_IO) for name, shape in io["inputs"].items()}
"""The shapes the pipeline feeds, batch 1: mel (1, 1, 80, 16), input (1, 6, 320, 320), audio (1, 32, 16, 16)."""
SHAPE_READERS = ("Shape", "Size")
"""Ops that read only the shape of their input: constant once that shape is static."""
NEVER_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass
class Folded:
    """A model with its shape arithmetic folded: `model` (inputs fixed, shapes inferred), the original
    nodes evaluated (`nodes`, graph order), the value of each of their outputs (`values`), and the inputs
    whose dynamic axes were fixed (name -> (shape as declared, None where dynamic; the fixed shape))."""

    model: onnx.ModelProto
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    fixed: dict[str, tuple[tuple, tuple]] = field(default_factory=dict)


def _dims(value: onnx.ValueInfoProto) -> tuple | None:
    if not value.type.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim)


def fixed_shapes(model: onnx.ModelProto, path: Path) -> dict[str, tuple[tuple, tuple]]:
    """Each graph input's declared and fixed shape: the pipeline's shape for its inputs, otherwise the
    declared one with a dynamic batch axis (axis 0) set to 1; any other dynamic axis is an InputError."""
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        declared = _dims(value) or ()
        shape = PIPELINE_SHAPES.get(value.name) or tuple(1 if d is None and k == 0 else d for k, d in enumerate(declared))
        if None in shape or len(shape) != len(declared) or any(d not in (None, s) for d, s in zip(declared, shape)):
            raise InputError(path, f"input {value.name!r} has shape {declared} (None: dynamic), which the conversion "
                             "cannot fix", "export it with static shapes, or a dynamic batch axis only")
        out[value.name] = (declared, shape)
    return out


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[tuple, int]]:
    """Every value whose shape inference finds a static shape: name -> (shape, element type)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    out = {}
    for v in values:
        dims = _dims(v)
        if dims is not None and None not in dims:
            out[v.name] = (dims, v.type.tensor_type.elem_type)
    return out


def _foldable(model: onnx.ModelProto, shapes: dict) -> tuple[list[int], dict[str, np.ndarray]]:
    """The positions of the nodes that are constants now, and the zero tensors standing in for the inputs
    that Shape reads."""
    known = {t.name for t in model.graph.initializer}
    picked, stand_ins = [], {}
    for k, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            known.update(node.output)
            continue
        plain = node.domain in ("", "ai.onnx") and node.op_type not in NEVER_FOLDED and not any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
        if not plain:
            continue
        if node.op_type in SHAPE_READERS and node.input[0] not in known and node.input[0] in shapes:
            dims, elem = shapes[node.input[0]]
            stand_ins[node.input[0]] = np.zeros(dims, helper.tensor_dtype_to_np_dtype(elem))
        elif not node.input or not all(i == "" or i in known for i in node.input):
            continue
        picked.append(k)
        known.update(o for o in node.output if o)
    return picked, stand_ins


def _evaluate(model: onnx.ModelProto, nodes: list[onnx.NodeProto], stand_ins: dict) -> dict[str, np.ndarray]:
    """The outputs of `nodes` (and the Constants they read), by ONNX's reference evaluator."""
    from onnx.reference import ReferenceEvaluator
    wanted = {i for n in nodes for i in n.input}
    constants = [n for n in model.graph.node if n.op_type == "Constant" and n.output[0] in wanted]
    inits = [t for t in model.graph.initializer if t.name in wanted]
    outputs = [o for n in nodes for o in n.output if o]
    graph = helper.make_graph(constants + nodes, "folded", [helper.make_empty_tensor_value_info(n) for n in stand_ins],
                              [helper.make_empty_tensor_value_info(o) for o in outputs], inits)
    sub = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    results = ReferenceEvaluator(sub).run(None, stand_ins)
    return {name: np.asarray(value) for name, value in zip(outputs, results)}


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    out = onnx.NodeProto()
    out.CopyFrom(node)
    return out


def _drop_dead(graph: onnx.GraphProto) -> None:
    """Remove the nodes and initializers nothing uses any more."""
    used = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in used for o in node.output):
            keep.append(_copy(node))
            used.update(node.input)
    graph.ClearField("node")
    graph.node.extend(reversed(keep))
    inits = [t for t in graph.initializer if t.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(inits)


def fold(model: onnx.ModelProto, path: Path) -> Folded:
    """`model` (left as it is) with its inputs fixed at the pipeline's shapes and its constant subgraphs
    evaluated and replaced by initializers (see the module's docstring)."""
    fixed = fixed_shapes(model, path)
    work = onnx.ModelProto()
    work.CopyFrom(model)
    work.graph.ClearField("value_info")
    for value in work.graph.input:
        if value.name in fixed:
            for dim, size in zip(value.type.tensor_type.shape.dim, fixed[value.name][1]):
                dim.Clear()
                dim.dim_value = size
    result = Folded(work, fixed={k: v for k, v in fixed.items() if v[0] != v[1]})
    while True:
        picked, stand_ins = _foldable(work, _static_shapes(work))
        if not picked:
            break
        nodes = [_copy(work.graph.node[k]) for k in picked]
        values = _evaluate(work, nodes, stand_ins)
        result.nodes += nodes
        result.values.update(values)
        remaining = [_copy(n) for k, n in enumerate(work.graph.node) if k not in set(picked)]
        used = {i for n in remaining for i in n.input} | {o.name for o in work.graph.output}
        work.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in values.items() if k in used)
        work.graph.ClearField("node")
        work.graph.node.extend(remaining)
        _drop_dead(work.graph)
    for value in work.graph.output:  # the outputs' dynamic axes follow the fixed inputs
        value.type.tensor_type.ClearField("shape")
    result.model = onnx.shape_inference.infer_shapes(work)
    return result
