"""ONNX -> Core ML ML program through coremltools' MIL builder, without torch.

A translator for the ops the pipeline's two models use as `torch.onnx.export` writes them (opsets 11
to 20), each op's translation registered with `translates` (`TRANSLATIONS`, in the order the refusal
names them); any other op is refused by name, never guessed. The shape arithmetic of a TorchScript
export is folded first, at the pipeline's fixed shapes (`fold`): a dynamic batch axis is fixed to 1,
so the models take one item per call, as the Swift ports call them. Each remaining ONNX node becomes
one MIL op named after its output (names sanitised to MIL identifiers), in graph order, so the audit
can pair them; a Pad that pads nothing becomes none. Graph inputs and outputs keep their names (`mel`
-> `emb`, `input` + `audio` -> `output`). coremltools' passes that rewrite weights or merge ops the
audit pairs one to one (`UNFUSED`) are left out.

MIL semantics used (coremltools' op definitions): `conv` pads are (top, bottom, left, right), ONNX's
(top, left, bottom, right); `upsample_bilinear` with `align_corners` True and `half_pixel_centers`
False is ONNX's `align_corners` transform, False/True its `half_pixel`, False/False `asymmetric`;
`upsample_nearest_neighbor` is ONNX's nearest with `asymmetric` coordinates and `floor`; `pad` takes
(before, after) pairs for its last axes, ONNX all the befores, then all the afters.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from harness.coreml.fold import Folded, fold
from harness.coreml.onnx_view import as_text, constants, load_onnx, node_attrs, opset, pad_pairs
from harness.coreml.quiet import coremltools, no_progress_bars
from harness.system.registry import Registry
from reference.errors import InputError

PRECISIONS = ("fp16", "fp32")
TARGET = "macOS13"  # MIL opset iOS16: upsample_bilinear has half_pixel_centers; macOS 13 / iOS 16 and later
BILINEAR = {"align_corners": (True, False), "half_pixel": (False, True), "pytorch_half_pixel": (False, True),
            "asymmetric": (False, False)}
"""ONNX coordinate transform -> (align_corners, half_pixel_centers) of upsample_bilinear.
pytorch_half_pixel differs from half_pixel only for an output of length 1, which a 2x upsampling never has."""
NEWEST_OPSET = 20
"""Opsets 11 to 20 are what the exporters write; an older model converts where its ops are translated (Pad's
attribute form; a Resize of opset 10 is refused), a newer one is refused: its ops may mean something else."""
UNFUSED = ("common::divide_to_multiply", "common::fuse_pad_conv", "common::merge_consecutive_paddings",
           "common::fuse_conv_scale", "common::fuse_conv_bias", "common::fuse_conv_batchnorm",
           "common::fuse_elementwise_to_batchnorm")
"""coremltools passes left out: each would change a weight or merge two ops that the audit pairs with the source's."""


Translation = Callable[["_Translator", onnx.NodeProto, dict, str], object]
# ONNX op type -> (translator, node, attributes, MIL name) -> the MIL value of the node's output, or None
# when the output needs none (a Constant, already among the constants)
TRANSLATIONS = Registry("ONNX op {name!r} is translated twice ({first} and {second}): keep one translation per op")
translates = TRANSLATIONS.registers


def mil_name(name: str) -> str:
    """An ONNX value name as a MIL identifier."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "v"
    return clean if not clean[0].isdigit() else f"v_{clean}"


class _Translator:
    """Walks one ONNX graph in order and emits MIL ops into the current function."""

    def __init__(self, model: onnx.ModelProto, path: Path) -> None:
        from coremltools.converters.mil import Builder as mb
        self.mb = mb
        self.path = path
        self.opset = opset(model)
        self.consts = constants(model)
        self.env: dict = {}
        self.outputs = {o.name for o in model.graph.output}

    def refuse(self, node: onnx.NodeProto, problem: str) -> InputError:
        return InputError(self.path, f"node {node.name or node.output[0]} ({node.op_type}): {problem}",
                          f"the translator supports {', '.join(TRANSLATIONS)} as the pipeline's models use them")

    def const(self, node: onnx.NodeProto, k: int, what: str) -> np.ndarray:
        if k >= len(node.input) or node.input[k] not in self.consts:
            raise self.refuse(node, f"its {what} must be a constant (an initializer or Constant node)")
        return self.consts[node.input[k]]

    def value(self, name: str):
        if name in self.env:
            return self.env[name]
        if name in self.consts:
            return self.consts[name].astype(np.float32) if self.consts[name].dtype.kind == "f" else self.consts[name]
        raise InputError(self.path, f"value {name!r} is used before it is computed", "is the graph sorted?")

    def node(self, node: onnx.NodeProto) -> None:
        if node.op_type not in TRANSLATIONS:
            raise self.refuse(node, "not an op the translator supports")
        out = node.output[0]
        value = TRANSLATIONS[node.op_type](self, node, node_attrs(node), out if out in self.outputs else mil_name(out))
        if value is not None:
            self.env[out] = value

    @translates("Conv")
    def _conv(self, node, attrs, name):
        weight = self.const(node, 1, "weight").astype(np.float32)
        if weight.ndim != 4:
            raise self.refuse(node, f"a {weight.ndim - 2}-D convolution (only 2-D ones are translated)")
        bias = self.const(node, 2, "bias").astype(np.float32) if len(node.input) > 2 and node.input[2] else None
        auto = as_text(attrs.get("auto_pad", "NOTSET"))
        kwargs = {"pad_type": {"VALID": "valid", "SAME_UPPER": "same", "SAME_LOWER": "same_lower"}.get(auto, "custom")}
        if auto == "NOTSET":
            t, l, b, r = attrs.get("pads", [0, 0, 0, 0])
            kwargs["pad"] = [t, b, l, r]
        if bias is not None:
            kwargs["bias"] = bias
        return self.mb.conv(x=self.value(node.input[0]), weight=weight, strides=list(attrs.get("strides", [1, 1])),
                            dilations=list(attrs.get("dilations", [1, 1])), groups=int(attrs.get("group", 1)),
                            name=name, **kwargs)

    @translates("Relu")
    def _relu(self, node, attrs, name):
        return self.mb.relu(x=self.value(node.input[0]), name=name)

    @translates("Sigmoid")
    def _sigmoid(self, node, attrs, name):
        return self.mb.sigmoid(x=self.value(node.input[0]), name=name)

    @translates("Add")
    def _add(self, node, attrs, name):
        return self.mb.add(x=self.value(node.input[0]), y=self.value(node.input[1]), name=name)

    @translates("Concat")
    def _concat(self, node, attrs, name):
        return self.mb.concat(values=[self.value(i) for i in node.input], axis=int(attrs["axis"]), name=name)

    @translates("Resize")
    def _resize(self, node, attrs, name):
        x = self.value(node.input[0])
        if x.rank != 4:
            raise self.refuse(node, f"resampling a rank-{x.rank} tensor (only NCHW images are translated)")
        if self.opset < 11:
            raise self.refuse(node, f"Resize of opset {self.opset} (export with opset 11 or later)")
        policy = as_text(attrs.get("keep_aspect_ratio_policy", "stretch"))
        if attrs.get("antialias", 0) or "axes" in attrs or policy != "stretch":
            raise self.refuse(node, "antialias, axes or a keep_aspect_ratio_policy other than stretch has no MIL "
                              "resampling op of the same arithmetic")
        scales = self.consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if scales is None or scales.size == 0:
            sizes = self.const(node, 3, "scales or sizes")
            scales = np.asarray(sizes, np.float64) / np.asarray(x.shape, np.float64)
        scales = np.asarray(scales, np.float64).ravel()
        if scales.size != 4 or scales[0] != 1 or scales[1] != 1:
            raise self.refuse(node, f"scales {scales.tolist()} resample more than height and width")
        mode = as_text(attrs.get("mode", "nearest"))
        coords = as_text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        if mode == "linear" and coords in BILINEAR:
            align, half = BILINEAR[coords]
            return self.mb.upsample_bilinear(x=x, scale_factor_height=float(scales[2]),
                                             scale_factor_width=float(scales[3]), align_corners=align,
                                             half_pixel_centers=half, name=name)
        nearest = as_text(attrs.get("nearest_mode", "round_prefer_floor"))
        if mode == "nearest" and coords == "asymmetric" and nearest == "floor":
            return self.mb.upsample_nearest_neighbor(x=x, scale_factor_height=float(scales[2]),
                                                     scale_factor_width=float(scales[3]), name=name)
        raise self.refuse(node, f"mode {mode} with coordinate_transformation_mode {coords}"
                          + (f" and nearest_mode {nearest}" if mode == "nearest" else "")
                          + " has no MIL resampling op of the same arithmetic")

    @translates("Mul")
    def _mul(self, node, attrs, name):
        return self.mb.mul(x=self.value(node.input[0]), y=self.value(node.input[1]), name=name)

    @translates("Sub")
    def _sub(self, node, attrs, name):
        return self.mb.sub(x=self.value(node.input[0]), y=self.value(node.input[1]), name=name)

    @translates("Div")
    def _div(self, node, attrs, name):
        return self.mb.real_div(x=self.value(node.input[0]), y=self.value(node.input[1]), name=name)

    @translates("Pad")
    def _pad(self, node, attrs, name):
        x = self.value(node.input[0])
        mode = as_text(attrs.get("mode", "constant"))
        if mode not in ("constant", "reflect"):
            raise self.refuse(node, f"mode {mode} (constant and reflect are translated)")
        if "pads" in attrs:  # the attribute form, before opset 11
            pads, axes = attrs["pads"], None
        else:
            pads = self.const(node, 1, "pads")
            axes = self.const(node, 3, "axes") if len(node.input) > 3 and node.input[3] else None
        pairs = pad_pairs(pads, axes, x.rank)
        if (pairs < 0).any():
            raise self.refuse(node, f"negative pads {pairs.T.ravel().tolist()} crop (not translated)")
        if not pairs.any():
            return x  # pads nothing: no op, as the audit reads it
        first = int(np.flatnonzero(pairs.any(axis=1))[0])
        if mode == "reflect" and (first < x.rank - 2 or (pairs[first:] >= np.array(x.shape[first:])[:, None]).any()):
            raise self.refuse(node, "reflect padding beyond the last two axes or by a whole axis has no MIL op")
        value = attrs.get("value", 0.0)
        if len(node.input) > 2 and node.input[2]:
            value = float(np.ravel(self.const(node, 2, "constant value"))[0])
        return self.mb.pad(x=x, pad=pairs[first:].ravel().astype(np.int32), mode=mode, constant_val=float(value),
                           name=name)

    @translates("Reshape")
    def _reshape(self, node, attrs, name):
        x = self.value(node.input[0])
        shape = [int(s) for s in self.const(node, 1, "shape")]
        if not attrs.get("allowzero", 0):
            shape = [x.shape[k] if s == 0 else s for k, s in enumerate(shape)]
        return self.mb.reshape(x=x, shape=np.array(shape, np.int32), name=name)

    @translates("Transpose")
    def _transpose(self, node, attrs, name):
        x = self.value(node.input[0])
        perm = attrs.get("perm", list(range(x.rank))[::-1])
        return self.mb.transpose(x=x, perm=[int(p) for p in perm], name=name)

    @translates("BatchNormalization")
    def _batch_norm(self, node, attrs, name):
        if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise self.refuse(node, "batch norm in training mode (export the model in eval mode)")
        gamma, beta, mean, variance = (self.const(node, k, what).astype(np.float32)
                                       for k, what in enumerate(("scale", "bias", "mean", "variance"), 1))
        return self.mb.batch_norm(x=self.value(node.input[0]), mean=mean, variance=variance, gamma=gamma, beta=beta,
                                  epsilon=float(attrs.get("epsilon", 1e-5)), name=name)

    @translates("Squeeze")
    def _squeeze(self, node, attrs, name):
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.const(node, 1, "axes")
        x = self.value(node.input[0])
        kwargs = {} if axes is None else {"axes": [int(a) for a in np.ravel(axes)]}
        return self.mb.squeeze(x=x, name=name, **kwargs)

    @translates("Constant")
    def _constant(self, node, attrs, name):
        return None  # already among self.consts

    @translates("Identity")
    def _identity(self, node, attrs, name):
        return self.value(node.input[0])


def translate(path: Path):
    """The MIL program (coremltools' `Program`) of the ONNX model at `path`, its shape arithmetic folded."""
    return translate_folded(fold(load_onnx(path), path), path)


def translate_folded(folded: Folded, path: Path):
    """The MIL program of a folded model (`fold`) read from `path`."""
    ct = coremltools()
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program, types
    model = folded.model
    version = opset(model)
    if version > NEWEST_OPSET:
        raise InputError(path, f"opset {version}: the translator knows the ops of opsets up to {NEWEST_OPSET}",
                         f"export with opset_version {NEWEST_OPSET} or lower (torch.onnx.export writes 17 or 18 "
                         "by default)")
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    placeholders = {}
    for value in graph.input:
        if value.name in inits:
            continue
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise InputError(path, f"input {value.name!r} is not float32", "export the model in float32")
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]
        placeholders[value.name] = mb.placeholder(shape=shape, dtype=types.fp32)
    translator = _Translator(model, path)
    with Function(placeholders, opset_version=getattr(ct.target, TARGET)) as function:
        translator.env.update(function.inputs)
        for node in graph.node:
            translator.node(node)
        function.set_outputs([translator.env[o.name] for o in graph.output])
    program = Program()
    program.add_function("main", function)
    return program


def convert_onnx(path: Path, precision: str = "fp16") -> tuple[object, Folded]:
    """The ONNX model at `path` as a Core ML ML program (coremltools `MLModel`, not yet saved), with fp16
    or fp32 weights and compute (inputs and outputs stay float32), and its folding (`fold`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    ct = coremltools()
    folded = fold(load_onnx(path), path)
    program = translate_folded(folded, path)
    compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    passes = ct.PassPipeline.DEFAULT
    passes.remove_passes(UNFUSED)
    with no_progress_bars():
        model = ct.convert(program, convert_to="mlprogram", compute_precision=compute, pass_pipeline=passes,
                           minimum_deployment_target=getattr(ct.target, TARGET), skip_model_load=True)
    return model, folded
