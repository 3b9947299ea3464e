"""A MIL program's main function, as its two serialisations give it, turned into a `Graph`.

`mil_proto` (the protobuf of `.mlpackage` / `.mlmodel`) and `mil_text` (the text `model.mil` of a
compiled `.mlmodelc`) both produce `MilOp`s; `mil_graph` reads the conv geometry, resampling modes
and weights from them the same way for both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.coreml.blobs import BlobFile
from harness.coreml.graph import MIL_KINDS, Graph, Op, TensorInfo, Weight, conv_params, resample_params
from reference.errors import InputError

DTYPES = {"fp32": "float32", "fp16": "float16", "fp64": "float64", "bf16": "bfloat16", "int32": "int32",
          "int64": "int64", "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16",
          "uint32": "uint32", "uint64": "uint64", "bool": "bool", "string": "string"}
"""MIL text type names -> the dtype names of `Graph` (the protobuf's FLOAT32 etc. map through these)."""
FLOATS = {"float32", "float16", "float64", "bfloat16"}
PARAM_ORDER = {"conv": ("weight", "bias"), "conv_transpose": ("weight", "bias"), "linear": ("weight", "bias"),
               "batch_norm": ("gamma", "beta", "mean", "variance")}
"""Weight inputs in the order of the matching ONNX op's inputs (others: by name)."""
WEIGHTS_FILE_PREFIX = "@model_path/"


@dataclass
class Const:
    """A const op's value: immediate (`value`) or in the weight file (`blob_file`, `offset`)."""

    dtype: str
    shape: tuple
    value: object = None  # numpy array, or a Python scalar / string
    blob_file: str = ""
    offset: int = -1


@dataclass
class MilOp:
    """One op of the main block: type, name, inputs (param -> bound names or literal Consts), outputs
    as (name, dtype, shape), and for a const op its value."""

    type: str
    name: str
    inputs: dict[str, list] = field(default_factory=dict)
    outputs: list[tuple[str, str, tuple]] = field(default_factory=list)
    const: Const | None = None


class _Resolver:
    """Values of const ops by output name, with the weight file opened on first use."""

    def __init__(self, ops: list[MilOp], model_dir: Path) -> None:
        self.consts = {op.outputs[0][0]: op.const for op in ops if op.type == "const" and op.const is not None}
        self.model_dir = model_dir
        self.files: dict[str, BlobFile] = {}
        self.absent = ""

    def const(self, binding) -> Const | None:
        return binding if isinstance(binding, Const) else self.consts.get(binding)

    def scalar(self, op: MilOp, param: str, default=None):
        """The literal value of a const input (a list for a tensor), or `default`."""
        bound = op.inputs.get(param)
        const = self.const(bound[0]) if bound else None
        if const is None or const.value is None:
            return default
        value = const.value
        return value.tolist() if isinstance(value, np.ndarray) else value

    def values(self, const: Const) -> np.ndarray | None:
        """Float32 values of a weight const; None (and `absent` says why) when its file is missing."""
        if const.value is not None:
            return np.asarray(const.value, np.float32).reshape(const.shape)
        if not const.blob_file.startswith(WEIGHTS_FILE_PREFIX):
            raise InputError(self.model_dir, f"weight file {const.blob_file!r} is not inside the model",
                             "a Core ML weight path starts with @model_path/")
        path = self.model_dir / const.blob_file[len(WEIGHTS_FILE_PREFIX):]
        if not path.is_file():
            self.absent = (f"{path.relative_to(self.model_dir.parent)} not found: the model was copied without "
                           "its weights")
            return None
        if const.blob_file not in self.files:
            self.files[const.blob_file] = BlobFile(path)
        return self.files[const.blob_file].floats(const.offset, const.shape)


def _conv(op: MilOp, r: _Resolver) -> dict:
    pad_type = r.scalar(op, "pad_type", "valid")
    pad = {"valid": (0, 0, 0, 0), "same": "same_upper", "same_lower": "same_lower"}.get(pad_type, str(pad_type))
    if pad_type == "custom":
        pad = tuple(r.scalar(op, "pad", [0, 0, 0, 0]))
    return conv_params(r.scalar(op, "strides", [1, 1]), pad, r.scalar(op, "dilations", [1, 1]), r.scalar(op, "groups", 1))


BILINEAR_MODES = {"STRICT_ALIGN_CORNERS": "align_corners", "ALIGN_CORNERS": "align_corners",
                  "UNALIGN_CORNERS": "half_pixel", "DEFAULT": "asymmetric", "OFFSET_CORNERS": "offset_corners"}
"""resize_bilinear's sampling_mode -> coordinate transform."""


def _resample(op: MilOp, r: _Resolver, shapes: dict) -> dict:
    if op.type == "upsample_bilinear":  # iOS16 adds half_pixel_centers, default: not align_corners
        align = bool(r.scalar(op, "align_corners", True))
        half = bool(r.scalar(op, "half_pixel_centers", not align))
        coords = "align_corners" if align and not half else "half_pixel" if half and not align else (
            "asymmetric" if not align else "align_corners+half_pixel")
        scale = (r.scalar(op, "scale_factor_height", 1.0), r.scalar(op, "scale_factor_width", 1.0))
        return resample_params("bilinear", coords, scale)
    if op.type == "upsample_nearest_neighbor":
        scale = (r.scalar(op, "scale_factor_height", 1), r.scalar(op, "scale_factor_width", 1))
        return resample_params("nearest", "asymmetric, floor", scale)
    before = shapes.get(op.inputs.get("x", [""])[0])
    after = op.outputs[0][2]
    scale = None
    if before and after and len(before) == len(after) >= 2 and None not in before[-2:] + after[-2:]:
        scale = (after[-2] / before[-2], after[-1] / before[-1])
    if op.type == "resize_bilinear":
        return resample_params("bilinear", BILINEAR_MODES.get(r.scalar(op, "sampling_mode", "DEFAULT"), "?"), scale)
    if op.type == "resize_nearest_neighbor":
        return resample_params("nearest", "asymmetric, floor", scale)
    mode = str(r.scalar(op, "resample_mode", "?")).lower()  # iOS17 `resize`
    return resample_params("bilinear" if mode == "linear" else mode, str(r.scalar(op, "sampling_mode", "?")).lower(),
                           scale)


def _weights(op: MilOp, r: _Resolver, out: list[Weight]) -> None:
    """Append the float tensor consts `op` uses (every use: a const shared by two ops counts twice)."""
    if MIL_KINDS.get(op.type) == "resample":
        return
    order = PARAM_ORDER.get(op.type)
    params = [p for p in order if p in op.inputs] if order else sorted(op.inputs)
    for param in params:
        for binding in op.inputs[param]:
            const = r.const(binding)
            if const is None or const.dtype not in FLOATS or not const.shape:
                continue
            name = binding if isinstance(binding, str) else f"{op.name}.{param}"
            out.append(Weight(name, tuple(const.shape), const.dtype, op.name, param, r.values(const)))


def mil_graph(path: Path, fmt: str, ops: list[MilOp], inputs: list[TensorInfo], outputs: list[TensorInfo],
              model_dir: Path, declared: dict) -> Graph:
    """The `Graph` of a main block's ops; weight files are looked up in `model_dir`."""
    r = _Resolver(ops, model_dir)
    shapes = {name: shape for op in ops for name, _, shape in op.outputs}
    shapes.update({t.name: t.shape for t in inputs})
    graph_ops, weights = [], []
    for op in ops:
        if op.type == "const":
            continue
        kind = MIL_KINDS.get(op.type, op.type)
        params = _conv(op, r) if op.type == "conv" else _resample(op, r, shapes) if kind == "resample" else {}
        dtype = op.outputs[0][1] if op.outputs else "?"
        graph_ops.append(Op(kind, op.type, op.name, dtype, params))
        _weights(op, r, weights)
    if r.absent:
        for w in weights:
            w.values = None
    return Graph(path, fmt, inputs, outputs, graph_ops, weights, r.absent, declared)
