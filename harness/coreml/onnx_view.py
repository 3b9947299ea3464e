"""An ONNX model as a `Graph`: the audit's source, or a candidate that is another ONNX file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from harness.coreml.fold import fold
from harness.coreml.graph import ONNX_KINDS, Graph, Op, TensorInfo, Weight, conv_params, resample_params
from reference.errors import InputError

RESAMPLE_PARAMS = {"Resize": (1, 2, 3), "Upsample": (1,)}
"""Inputs of resampling ops that are parameters (roi, scales, sizes), not weights."""
ROLES = {"Conv": ("x", "weight", "bias"), "ConvTranspose": ("x", "weight", "bias"), "Gemm": ("x", "weight", "bias"),
         "BatchNormalization": ("x", "gamma", "beta", "mean", "variance")}


def dtype_name(elem_type: int) -> str:
    return "float32" if elem_type == onnx.TensorProto.FLOAT else onnx.TensorProto.DataType.Name(elem_type).lower()


def _shape(value_info: onnx.ValueInfoProto) -> tuple:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def node_attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def as_text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def load_onnx(path: Path) -> onnx.ModelProto:
    """The model at `path` with its shapes inferred (InputError when it is not ONNX)."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # DecodeError and friends for a file that is not ONNX
        raise InputError(path, f"not an ONNX model ({exc.__class__.__name__})", "give a .onnx file") from exc
    if not model.graph.node:
        raise InputError(path, "not an ONNX model (empty graph)", "give a .onnx file")
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception:  # shapes are a help, not a requirement
        return model


def constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and Constant node outputs by name."""
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and "value" in node_attrs(node):
            out[node.output[0]] = numpy_helper.to_array(node_attrs(node)["value"])
    return out


def opset(model: onnx.ModelProto) -> int:
    """The model's version of the default ONNX domain."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def pad_pairs(pads, axes, rank: int) -> np.ndarray:
    """ONNX pads (every axis's before, then every after; for `axes` only where given) as (before, after)
    per axis, shape (rank, 2)."""
    pads = np.asarray(pads, np.int64).ravel()
    axes = range(rank) if axes is None else [int(a) % rank for a in np.ravel(axes)]
    pairs = np.zeros((rank, 2), np.int64)
    for k, axis in enumerate(axes):
        pairs[axis] = pads[k], pads[k + len(axes)]
    return pairs


def _pads_nothing(node: onnx.NodeProto, consts: dict) -> bool:
    """A Pad whose pads (attribute or constant input) are all zero."""
    attrs = node_attrs(node)
    pads = attrs.get("pads", consts.get(node.input[1]) if len(node.input) > 1 else None)
    return pads is not None and not np.any(pads)


def onnx_conv_params(attrs: dict, rank: int = 2) -> dict:
    """Conv geometry from ONNX attributes; pads [t, l, b, r] become (top, bottom, left, right)."""
    auto = as_text(attrs.get("auto_pad", "NOTSET"))
    pads = list(attrs.get("pads", [0] * 2 * rank))
    if auto == "NOTSET":
        pad = (pads[0], pads[2], pads[1], pads[3])
    else:  # VALID pads nothing; SAME_UPPER / SAME_LOWER depend on the input size
        pad = (0, 0, 0, 0) if auto == "VALID" else auto.lower()
    return conv_params(attrs.get("strides", [1] * rank), pad, attrs.get("dilations", [1] * rank), attrs.get("group", 1))


def onnx_resample_params(node: onnx.NodeProto, consts: dict, shapes: dict) -> dict:
    """Mode, coordinate transform and scale of a Resize or Upsample node."""
    attrs = node_attrs(node)
    mode = {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"}.get(as_text(attrs.get("mode", "nearest")))
    if node.op_type == "Upsample":
        coords, scales = "asymmetric", consts.get(node.input[1]) if len(node.input) > 1 else attrs.get("scales")
    else:
        coords = as_text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        scales = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if (scales is None or np.size(scales) == 0) and len(node.input) > 3 and node.input[3] in consts:
            size, before = consts[node.input[3]], shapes.get(node.input[0])
            scales = None if before is None or None in before else np.asarray(size, float) / np.asarray(before, float)
    if mode == "nearest":
        rounding = as_text(attrs.get("nearest_mode", "round_prefer_floor")) if node.op_type == "Resize" else "floor"
        coords += f", {rounding}"
    scale = None if scales is None or np.size(scales) < 2 else tuple(np.asarray(scales, float).ravel()[-2:])
    return resample_params(mode or "?", coords, scale)


def onnx_graph(path: Path) -> Graph:
    """Read an ONNX model (external data beside it included). Its shape arithmetic, folded at the
    pipeline's fixed shapes as the translator folds it (`fold`), is kept as ops of kind `folded` (not
    counted); the ops it feeds read its values as constants."""
    model = load_onnx(path)
    graph = model.graph
    folded = fold(model, path)
    consts = constants(model) | folded.values
    folded_outputs = set(folded.values)
    values = {v.name: v for v in list(graph.value_info) + list(graph.input) + list(graph.output)}
    shapes = {name: _shape(v) for name, v in values.items()}
    inits = {t.name for t in graph.initializer}
    inputs = [TensorInfo(v.name, _shape(v), dtype_name(v.type.tensor_type.elem_type))
              for v in graph.input if v.name not in inits]
    outputs = [TensorInfo(v.name, _shape(v), dtype_name(v.type.tensor_type.elem_type)) for v in graph.output]
    ops, weights, seen = [], [], set()
    for i, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{i}"
        out = values.get(node.output[0]) if node.output else None
        dtype = dtype_name(out.type.tensor_type.elem_type) if out is not None else "?"
        kind = ONNX_KINDS.get(node.op_type, node.op_type.lower())
        params = {}
        if node.output and node.output[0] in folded_outputs:
            ops.append(Op("folded", node.op_type, name, dtype))
            continue
        if node.op_type == "Pad" and _pads_nothing(node, consts):
            ops.append(Op("identity", "Pad (pads nothing)", name, dtype))  # as the translator reads it: no op
            continue
        if node.op_type == "Conv":
            params = onnx_conv_params(node_attrs(node))
        elif kind == "resample":
            params = onnx_resample_params(node, consts, shapes)
        ops.append(Op(kind, node.op_type, name, dtype, params))
        skip = RESAMPLE_PARAMS.get(node.op_type, ())
        roles = ROLES.get(node.op_type, ())
        for k, inp in enumerate(node.input):
            value = consts.get(inp)
            if k in skip or inp in seen or value is None or value.ndim == 0 or value.dtype.kind != "f":
                continue
            seen.add(inp)
            role = roles[k] if k < len(roles) else f"input{k}"
            weights.append(Weight(inp, tuple(value.shape), str(value.dtype), name, role, value.astype(np.float32)))
    return Graph(Path(path), "ONNX", inputs, outputs, ops, weights,
                 declared={"producer": f"{model.producer_name} {model.producer_version}".strip(),
                           "opset": opset(model)})
