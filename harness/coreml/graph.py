"""One neutral view of a model, whatever its format: inputs and outputs, ops in graph order, weights.

Every reader (ONNX, ML program spec, neural-network spec, compiled MIL text) fills a `Graph`, so the
audit compares two graphs without knowing their formats. Op kinds are Core ML's MIL names (`conv`,
`relu`, ...); ONNX and neural-network layer names map onto them here. Resampling ops of every format
are one kind, `resample`, whose mode and coordinate transform are in `Op.params`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ONNX_KINDS = {
    "Conv": "conv", "Relu": "relu", "Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div",
    "Concat": "concat", "Sigmoid": "sigmoid", "Tanh": "tanh", "LeakyRelu": "leaky_relu", "Clip": "clip",
    "Squeeze": "squeeze", "Unsqueeze": "expand_dims", "Reshape": "reshape", "Flatten": "reshape",
    "Transpose": "transpose", "MaxPool": "max_pool", "AveragePool": "avg_pool", "BatchNormalization": "batch_norm",
    "Resize": "resample", "Upsample": "resample", "Gemm": "linear", "MatMul": "matmul", "Softmax": "softmax",
    "Identity": "identity", "Cast": "cast", "Pad": "pad", "ConvTranspose": "conv_transpose",
    "GlobalAveragePool": "reduce_mean", "Constant": "const",
}
"""ONNX op type -> MIL op kind."""

MIL_KINDS = {name: "resample" for name in ("upsample_bilinear", "resize_bilinear", "upsample_nearest_neighbor",
                                           "resize_nearest_neighbor", "resize")}
"""MIL op types that are one kind under another name (every other MIL op is its own kind)."""

NOT_COUNTED = {"const", "cast", "folded"}
"""Kinds left out of the op histogram: constants, casts (they belong to the precision), and an ONNX model's
shape arithmetic folded at the pipeline's fixed shapes (`fold`)."""

SHAPE_ONLY = {"squeeze", "expand_dims", "reshape", "identity"}
"""Kinds that move no value: a different count of them is a note, not a difference."""


@dataclass(frozen=True)
class TensorInfo:
    """One input or output: name, shape (None for a flexible dimension), dtype and kind."""

    name: str
    shape: tuple
    dtype: str  # float32, float16, int32, ... ("image" inputs: see kind)
    kind: str = "tensor"  # "tensor", or "image (RGB)" / "image (BGR)" / "image (grayscale)"

    def shape_text(self) -> str:
        """The shape as 1x6x320x320, N for a flexible dimension."""
        return "x".join("N" if d is None else str(d) for d in self.shape)

    def describe(self) -> str:
        kind = "" if self.kind == "tensor" else f" {self.kind}"
        return f"{self.name} {self.dtype}{kind} ({self.shape_text()})"


@dataclass(frozen=True)
class Op:
    """One computing op: its kind (MIL name), its own type name, its name and output dtype, and the
    parameters the audit compares (conv geometry, resampling mode)."""

    kind: str
    type: str
    name: str
    dtype: str
    params: dict = field(default_factory=dict)


@dataclass
class Weight:
    """One weight tensor, in graph order (first use by an op), with its values when they can be read."""

    name: str
    shape: tuple
    dtype: str  # storage dtype: float32, float16, ...
    op: str  # the op that uses it first
    role: str  # its input name there: weight, bias, ...
    values: np.ndarray | None = None  # float32 values; None when the weights are absent


@dataclass
class Graph:
    """A model as the audit sees it."""

    path: Path
    format: str  # e.g. "ONNX", "ML program (.mlpackage)"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    ops: list[Op]
    weights: list[Weight]
    weights_absent: str = ""  # why the weight values cannot be read ("" when they were)
    declared: dict = field(default_factory=dict)  # what the file says of itself (precision, versions)

    def histogram(self) -> Counter:
        """Op kinds and their counts, constants and casts left out."""
        return Counter(op.kind for op in self.ops if op.kind not in NOT_COUNTED)

    def dtype_counts(self) -> dict[str, Counter]:
        """Per output dtype, the op kinds computing in it (casts included, constants and folded ops not)."""
        out: dict[str, Counter] = {}
        for op in self.ops:
            if op.kind not in ("const", "folded"):
                out.setdefault(op.dtype, Counter())[op.kind] += 1
        return out

    def storage(self) -> Counter:
        """Weight tensors per storage dtype."""
        return Counter(w.dtype for w in self.weights)

    def resamples(self) -> list[Op]:
        return [op for op in self.ops if op.kind == "resample"]


def conv_params(strides, pad: tuple, dilations, groups: int) -> dict:
    """The conv geometry the audit compares; `pad` as (top, bottom, left, right) or a pad type string."""
    return {"strides": tuple(int(s) for s in strides), "pad": pad if isinstance(pad, str) else tuple(int(p) for p in pad),
            "dilations": tuple(int(d) for d in dilations), "groups": int(groups)}


def resample_params(mode: str, coordinates: str, scale: tuple | None) -> dict:
    """A resampling op: kernel (bilinear, nearest), coordinate transform (align_corners, half_pixel,
    asymmetric, ...) and (height, width) scale when known."""
    return {"mode": mode, "coordinates": coordinates,
            "scale": None if scale is None else tuple(round(float(s), 6) for s in scale)}


def describe_resample(params: dict) -> str:
    scale = params.get("scale")
    shown = "" if scale is None else f", x{scale[0]:g}x{scale[1]:g}"
    return f"{params['mode']} {params['coordinates']}{shown}"
