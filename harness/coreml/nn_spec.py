"""A neural-network Core ML spec (the older `.mlmodel` format) as a `Graph`.

Layers map to MIL op kinds (`convolution` -> conv, `activation` ReLU -> relu, `upsample` and
`resizeBilinear` -> resample, ...); weights live in the spec itself (`floatValue`, or `float16Value`
bytes), so they are never absent. Upsampling modes, per coremltools' builder: `linearUpsampleMode`
ALIGN_CORNERS_TRUE is align_corners, ALIGN_CORNERS_FALSE half_pixel, DEFAULT samples x_out / scale
for an integer scale (asymmetric); resizeBilinear's (STRICT_)ALIGN_ENDPOINTS_MODE is align_corners
and UPSAMPLE_MODE asymmetric.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.coreml.graph import Graph, Op, Weight, conv_params, resample_params
from harness.coreml.mil_proto import declared, feature

ACTIVATIONS = {"ReLU": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "leakyReLU": "leaky_relu",
               "linear": "linear_activation"}
LAYER_KINDS = {"convolution": "conv", "add": "add", "concat": "concat", "concatND": "concat", "squeeze": "squeeze",
               "upsample": "resample", "resizeBilinear": "resample", "batchnorm": "batch_norm", "innerProduct": "linear",
               "reshape": "reshape", "reshapeStatic": "reshape", "expandDims": "expand_dims", "flatten": "reshape",
               "multiply": "mul", "pooling": "pool", "permute": "transpose", "transpose": "transpose"}
UPSAMPLE_MODES = {0: "asymmetric", 1: "align_corners", 2: "half_pixel"}  # DEFAULT, ALIGN_CORNERS_TRUE, _FALSE
RESIZE_MODES = {0: "align_corners", 1: "align_corners", 2: "asymmetric", 3: "roi_align"}
"""SamplingMode.Method: STRICT_ALIGN_ENDPOINTS_MODE, ALIGN_ENDPOINTS_MODE, UPSAMPLE_MODE, ROI_ALIGN_MODE."""


def _values(params, shape: tuple) -> tuple[np.ndarray, str]:
    """(float32 values, storage dtype) of a WeightParams."""
    if len(params.floatValue):
        return np.asarray(params.floatValue, np.float32).reshape(shape), "float32"
    if len(params.float16Value):
        return np.frombuffer(params.float16Value, np.float16).astype(np.float32).reshape(shape), "float16"
    return np.zeros(shape, np.float32), "quantized" if len(params.rawValue) else "empty"


def _conv(layer, weights: list[Weight]) -> dict:
    conv = layer.convolution
    shape = (conv.outputChannels, conv.kernelChannels, *conv.kernelSize)
    values, dtype = _values(conv.weights, shape)
    weights.append(Weight(f"{layer.name}.weights", shape, dtype, layer.name, "weight", values))
    if conv.hasBias:
        values, dtype = _values(conv.bias, (conv.outputChannels,))
        weights.append(Weight(f"{layer.name}.bias", (conv.outputChannels,), dtype, layer.name, "bias", values))
    if conv.WhichOneof("ConvolutionPaddingType") == "same":
        pad = "same_upper" if conv.same.asymmetryMode == 0 else "same_lower"
    else:
        amounts = conv.valid.paddingAmounts.borderAmounts
        pad = (0, 0, 0, 0) if len(amounts) < 2 else (amounts[0].startEdgeSize, amounts[0].endEdgeSize,
                                                     amounts[1].startEdgeSize, amounts[1].endEdgeSize)
    return conv_params(list(conv.stride) or [1, 1], pad, list(conv.dilationFactor) or [1, 1], conv.nGroups or 1)


def _resample(layer, which: str) -> dict:
    if which == "upsample":
        up = layer.upsample
        scale = tuple(up.scalingFactor) or tuple(up.fractionalScalingFactor) or None
        if up.mode == 0:
            return resample_params("nearest", "asymmetric, floor", scale)
        return resample_params("bilinear", UPSAMPLE_MODES.get(up.linearUpsampleMode, "?"), scale)
    return resample_params("bilinear", RESIZE_MODES.get(layer.resizeBilinear.mode.samplingMethod, "?"), None)


def network_graph(spec, path: Path, fmt: str) -> Graph:
    """The `Graph` of a neural-network spec (plain, classifier or regressor)."""
    network = getattr(spec, spec.WhichOneof("Type"))
    ops, weights = [], []
    for layer in network.layers:
        which = layer.WhichOneof("layer")
        params = {}
        if which == "activation":
            kind = ACTIVATIONS.get(layer.activation.WhichOneof("NonlinearityType"), "activation")
        else:
            kind = LAYER_KINDS.get(which, which)
        if which == "convolution":
            params = _conv(layer, weights)
        elif kind == "resample":
            params = _resample(layer, which)
        elif which == "batchnorm":
            bn = layer.batchnorm
            for role in ("gamma", "beta", "mean", "variance"):
                values, dtype = _values(getattr(bn, role), (bn.channels,))
                weights.append(Weight(f"{layer.name}.{role}", (bn.channels,), dtype, layer.name, role, values))
        ops.append(Op(kind, which, layer.name, "unspecified", params))
    return Graph(path, fmt, [feature(d) for d in spec.description.input], [feature(d) for d in spec.description.output],
                 ops, weights, declared=declared(spec) | {"compute_precision": "chosen by Core ML per device "
                                                           "(fp16 on the GPU and Neural Engine)"})
