"""Reduced precision of both models (the `precision` convention): fp16 by conversion, bf16 by emulation.

* "fp16": both ONNX models converted to float16 by onnxconverter-common (float32 inputs and outputs
  kept), cached on disk per model pair; the same conversion as the `fp16` backend, so a candidate
  that runs fp16 models is reproduced exactly.
* "bf16": an emulation of bf16 compute on any CPU (ONNX Runtime's CPU kernels have no bfloat16
  arithmetic): a copy of each model whose weights are rounded to the nearest bfloat16 (ties to
  even) and whose every float activation, inputs and outputs included, passes through a Cast to
  bfloat16 and back (`bf16_model`), cached on disk like the fp16 conversion. Each layer then
  computes in float32 on bf16 values and its result is rounded, as a bf16 engine that accumulates
  in float32 does (OpenVINO's default on CPUs with AMX or avx512_bf16). Measured on the PyTorch
  export of the generator (torch_export/legacy), 3 frames of the Sanders pack: OpenVINO's bf16
  output is 22.0 dB from the float32 output, 30.7 dB from this emulation's, and 22.1 dB from the
  float32 output with only its inputs and outputs rounded; the engines' own accumulation orders
  make the rest.
"""
from __future__ import annotations

import hashlib
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference.atomic import cached
from reference.models import ENCODER_FILE, GENERATOR_FILE, ModelFiles, Models
from reference.provenance import cache_dir, model_sha256

if TYPE_CHECKING:  # onnx is imported where a conversion runs: 0.6 s that an fp32 run does not pay
    import onnx

PRECISIONS = ("fp32", "fp16", "bf16")
VARIANTS = "precision_variants"  # the attribute of a models object holding {precision: models-like}


def fp16_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` converted to float16 by onnxconverter-common, float32 inputs and outputs kept."""
    from onnxconverter_common import float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "number truncated to 1e-07": expected in fp16
        return float16.convert_float_to_float16(model, keep_io_types=True)


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), returned as float32; NaN stays NaN.
    The same values as ONNX Runtime's Cast from float to bfloat16 and back."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, out)


EXACT_IN_BF16 = frozenset({"Relu", "MaxPool", "Concat", "Reshape", "Transpose", "Slice", "Pad", "Squeeze",
                           "Unsqueeze", "Flatten", "Identity", "Cast", "Shape", "Gather", "Constant",
                           "ConstantOfShape"})
"""Ops whose float outputs are bf16 values when their inputs are: moving or picking values (or shapes)
rounds nothing, so `bf16_model` adds no rounding after them."""


def bf16_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` that computes as a bf16 engine does: float weights rounded to bfloat16, and a
    Cast to bfloat16 and back after every graph input and every float output of a node that can
    make a value bf16 cannot hold (not `EXACT_IN_BF16`); float32 inputs and outputs, same names."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    floats = {v.name for v in (*graph.value_info, *graph.input, *graph.output)
              if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(round_bf16(numpy_helper.to_array(init)), init.name))

    def rounding(source: str, target: str) -> list:
        return [helper.make_node("Cast", [source], [f"{target}/bf16"], to=TensorProto.BFLOAT16),
                helper.make_node("Cast", [f"{target}/bf16"], [target], to=TensorProto.FLOAT)]

    inputs = {i.name: f"{i.name}/rounded" for i in graph.input if i.name in floats}
    nodes = [n for name, rounded in inputs.items() for n in rounding(name, rounded)]
    for node in graph.node:
        node.input[:] = [inputs.get(x, x) for x in node.input]
        nodes.append(node)
        if node.op_type in EXACT_IN_BF16:
            continue
        for k, out in enumerate(node.output):
            if out in floats:  # the node writes the unrounded value; its consumers read the rounded one
                node.output[k] = f"{out}/fp32"
                nodes += rounding(f"{out}/fp32", out)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _convert(files: ModelFiles, out: Path, convert) -> ModelFiles:
    """Write `convert`ed copies of both models into `out`."""
    import onnx
    for src, name in ((files.encoder, ENCODER_FILE), (files.generator, GENERATOR_FILE)):
        onnx.save(convert(onnx.load(str(src))), str(out / name))
    return ModelFiles(out / ENCODER_FILE, out / GENERATOR_FILE)


CONVERSIONS = {"fp16": fp16_model, "bf16": bf16_model}


def _code_key() -> str:
    """Changes with this module and onnxconverter-common, so a copy made by other conversion code (a
    changed `bf16_model`) is never reused from the cache."""
    try:
        converter = metadata.version("onnxconverter-common")
    except metadata.PackageNotFoundError:
        converter = "none"
    return hashlib.sha256(Path(__file__).read_bytes() + converter.encode()).hexdigest()[:12]


def converted_files(files: ModelFiles, precision: str) -> ModelFiles:
    """The `precision` copies of both models (`CONVERSIONS`), each one file (the external data a model
    names is read in and written inside the graph), built once into the cache folder (keyed by both
    models' identity: graph and external data, `model_sha256`, and by the conversion's code,
    `_code_key`)."""
    key = f"{precision}-{model_sha256(files.encoder)[:12]}-{model_sha256(files.generator)[:12]}-{_code_key()}"
    convert = CONVERSIONS[precision]
    return ModelFiles.from_dir(cached(cache_dir() / key, lambda tmp: _convert(files, tmp, convert)))


def _build(models: Models, precision: str):
    """`models`' sessions again on the `precision` copies: the encoder's options, as many generator workers."""
    if precision not in CONVERSIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    session = models.encoder
    return Models(converted_files(models.files, precision), providers=session.get_providers(),
                  options=session.get_session_options(), workers=models.workers,
                  worker_threads=models.worker_threads)


def with_precision(models: Models, precision: str = "fp32"):
    """`models` run at `precision` ("fp32": `models` itself); the same object for the same models each time.
    The variants live on `models` (a variant refers back to it, so a table outside would keep it alive
    for ever) and go with it."""
    if precision == "fp32":
        return models
    built = models.__dict__.setdefault(VARIANTS, {})
    if precision not in built:
        built[precision] = _build(models, precision)
    return built[precision]
