"""Defects planted into a copy of a converted ML program package, as a faulty converter would leave them.

Each function edits the package's spec (the protobuf) or its weight file in place; `copy_package`
makes the copy. The audit must name each defect, and only it.
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np

from harness.coreml.quiet import coremltools
from harness.coreml.read import package_spec_path


def copy_package(package: Path, dest: Path) -> Path:
    shutil.copytree(package, dest)
    return dest


def _load(package: Path):
    coremltools()
    from coremltools.proto import Model_pb2
    spec = Model_pb2.Model()
    spec.ParseFromString(package_spec_path(package).read_bytes())
    return spec


def _save(package: Path, spec) -> None:
    package_spec_path(package).write_bytes(spec.SerializeToString())


def _block(spec):
    function = spec.mlProgram.functions["main"]
    return function.block_specializations[function.opset]


def _producer(block, name: str):
    return next(op for op in block.operations if op.outputs and op.outputs[0].name == name)


def _float_consts(block):
    """(op, numpy dtype) of every float tensor const."""
    from coremltools.proto import MIL_pb2
    kinds = {MIL_pb2.FLOAT16: np.float16, MIL_pb2.FLOAT32: np.float32}
    for op in block.operations:
        if op.type == "const" and op.outputs[0].type.tensorType.dataType in kinds and op.outputs[0].type.tensorType.rank:
            yield op, kinds[op.outputs[0].type.tensorType.dataType]


def _rewrite(package: Path, op, dtype, change) -> None:
    """Replace a const's values by change(values) (float32 in, float32 out), in the blob or the spec."""
    value = op.attributes["val"]
    if value.WhichOneof("value") == "blobFileValue":
        path = package_spec_path(package).parent / "weights" / "weight.bin"
        data = bytearray(path.read_bytes())
        _, _, size, start = struct.unpack_from("<IIQQ", data, value.blobFileValue.offset)
        old = np.frombuffer(bytes(data[start:start + size]), dtype).astype(np.float32)
        data[start:start + size] = change(old).astype(dtype).tobytes()
        path.write_bytes(bytes(data))
        return
    tensor = value.immediateValue.tensor
    if tensor.WhichOneof("value") == "bytes":
        old = np.frombuffer(tensor.bytes.values, dtype).astype(np.float32)
        tensor.bytes.values = change(old).astype(dtype).tobytes()
    else:
        old = np.asarray(tensor.floats.values, np.float32)
        del tensor.floats.values[:]
        tensor.floats.values.extend(change(old).astype(np.float32).tolist())


def randomise_weights(package: Path, seed: int = 7) -> None:
    """Every float tensor replaced by random values of the same spread: an untrained model."""
    rng = np.random.default_rng(seed)
    spec = _load(package)
    for op, dtype in _float_consts(_block(spec)):
        _rewrite(package, op, dtype, lambda v: rng.standard_normal(v.shape) * max(float(v.std()), 1e-3))
    _save(package, spec)


def scale_conv_weight(package: Path, index: int, factor: float) -> str:
    """The weight of the `index`-th conv (0-based) multiplied by `factor`; returns that conv's name."""
    spec = _load(package)
    block = _block(spec)
    conv = [op for op in block.operations if op.type == "conv"][index]
    weight = _producer(block, conv.inputs["weight"].arguments[0].name)
    dtype = dict((id(op), d) for op, d in _float_consts(block))[id(weight)]
    _rewrite(package, weight, dtype, lambda v: v * factor)
    _save(package, spec)
    return conv.outputs[0].name


def _rebind(block, old: str, new: str) -> None:
    for op in block.operations:
        for argument in op.inputs.values():
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "name" and binding.name == old:
                    binding.name = new
    outputs = list(block.outputs)
    del block.outputs[:]
    block.outputs.extend(new if o == old else o for o in outputs)


def rename_input(package: Path, old: str, new: str) -> None:
    """Input `old` renamed to `new` in the description, the function signature and every use."""
    spec = _load(package)
    for desc in spec.description.input:
        if desc.name == old:
            desc.name = new
    function = spec.mlProgram.functions["main"]
    for value in function.inputs:
        if value.name == old:
            value.name = new
    _rebind(_block(spec), old, new)
    _save(package, spec)


def flip_align_corners(package: Path, index: int) -> str:
    """The `index`-th upsample_bilinear switched from align_corners to half-pixel centres (what
    PyTorch's align_corners=False means), through consts of its own; returns the op's name."""
    spec = _load(package)
    block = _block(spec)
    ups = [op for op in block.operations if op.type == "upsample_bilinear"]
    target = ups[index]
    added = []
    for param in ("align_corners", "half_pixel_centers"):
        source = _producer(block, target.inputs[param].arguments[0].name)
        flipped = type(source)()
        flipped.CopyFrom(source)
        flipped.outputs[0].name = f"{source.outputs[0].name}_flipped_{index}"
        flipped.attributes["name"].immediateValue.tensor.strings.values[0] = flipped.outputs[0].name
        values = flipped.attributes["val"].immediateValue.tensor.bools.values
        values[0] = not values[0]
        added.append(flipped)
        target.inputs[param].arguments[0].name = flipped.outputs[0].name
    name = target.outputs[0].name
    ops = []
    for op in block.operations:  # the new consts go right before the op (a repeated field has no insert)
        if op.outputs and op.outputs[0].name == name:
            ops += added
        ops.append(op)
    _replace_operations(block, ops)
    _save(package, spec)
    return name


def _replace_operations(block, ops: list) -> None:
    copies = []
    for op in ops:
        copy = type(op)()
        copy.CopyFrom(op)
        copies.append(copy)
    del block.operations[:]
    block.operations.extend(copies)


def drop_relu(package: Path, index: int) -> str:
    """The `index`-th relu removed, its consumers fed its input; returns the dropped op's name."""
    spec = _load(package)
    block = _block(spec)
    relu = [op for op in block.operations if op.type == "relu"][index]
    name = relu.outputs[0].name
    _rebind(block, name, relu.inputs["x"].arguments[0].name)
    _replace_operations(block, [op for op in block.operations if not (op.outputs and op.outputs[0].name == name)])
    _save(package, spec)
    return name
