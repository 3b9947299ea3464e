"""Core ML specs (the protobuf inside `.mlpackage` and `.mlmodel` files): inputs and outputs, and an ML
program's main function as `MilOp`s."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.coreml.graph import Graph, TensorInfo
from harness.coreml.mil_program import Const, MilOp, mil_graph
from harness.coreml.quiet import coremltools
from reference.errors import InputError

ARRAY_DTYPES = {65568: "float32", 65600: "float64", 131104: "int32", 131080: "int8", 65552: "float16"}
"""ArrayFeatureType.ArrayDataType -> dtype name."""
COLOUR_SPACES = {10: "grayscale", 20: "RGB", 30: "BGR", 40: "grayscale float16"}


def load_spec(path: Path):
    """The Model protobuf of a `.mlmodel` file (InputError when it is not one)."""
    coremltools()
    from coremltools.proto import Model_pb2
    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # protobuf's DecodeError for anything that is not a spec
        raise InputError(path, f"not a Core ML model spec ({exc.__class__.__name__})",
                         "give a .mlpackage, .mlmodel or .mlmodelc") from exc
    if not spec.WhichOneof("Type"):
        raise InputError(path, "not a Core ML model spec (no model type)", "give a .mlpackage, .mlmodel or .mlmodelc")
    return spec


def feature(desc) -> TensorInfo:
    """One input or output of a spec's description."""
    which = desc.type.WhichOneof("Type")
    if which == "multiArrayType":
        array = desc.type.multiArrayType
        shape = list(array.shape)
        if array.WhichOneof("ShapeFlexibility") == "shapeRange":
            shape = [r.lowerBound if r.lowerBound == r.upperBound else None for r in array.shapeRange.sizeRanges]
        elif array.WhichOneof("ShapeFlexibility") == "enumeratedShapes":
            options = [tuple(s.shape) for s in array.enumeratedShapes.shapes]
            shape = [dims[0] if len(set(dims)) == 1 else None for dims in zip(*options)]
        return TensorInfo(desc.name, tuple(shape), ARRAY_DTYPES.get(array.dataType, "?"))
    if which == "imageType":
        image = desc.type.imageType
        space = COLOUR_SPACES.get(image.colorSpace, "?")
        return TensorInfo(desc.name, (image.height, image.width), "uint8", f"image ({space})")
    return TensorInfo(desc.name, (), which or "?")


def declared(spec) -> dict:
    """What a spec says of itself: its version and user-defined metadata."""
    return {"specification_version": spec.specificationVersion,
            "metadata": dict(spec.description.metadata.userDefined)}


def _dtype(value_type) -> str:
    from coremltools.proto import MIL_pb2
    return MIL_pb2.DataType.Name(value_type.tensorType.dataType).lower()


def _shape(value_type) -> tuple:
    return tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None
                 for d in value_type.tensorType.dimensions)


def _immediate(value, dtype: str, shape: tuple):
    tensor = value.immediateValue.tensor
    which = tensor.WhichOneof("value")
    if which is None:
        return None
    data = getattr(tensor, which)
    if which == "bytes":
        np_dtype = {"float16": np.float16, "int8": np.int8, "uint8": np.uint8}.get(dtype, np.uint8)
        array = np.frombuffer(data.values, np_dtype)
    elif which == "strings":
        return data.values[0] if len(data.values) == 1 and not shape else list(data.values)
    else:
        array = np.asarray(list(data.values))
    if not shape:
        item = array.reshape(-1)[0] if array.size else None
        return bool(item) if dtype == "bool" else item.item() if item is not None else None
    return array.reshape(shape)


def _const(value, dtype: str, shape: tuple) -> Const:
    if value.WhichOneof("value") == "blobFileValue":
        return Const(dtype, shape, blob_file=value.blobFileValue.fileName, offset=value.blobFileValue.offset)
    return Const(dtype, shape, _immediate(value, dtype, shape))


def mil_ops(spec) -> tuple[list[MilOp], str]:
    """The ops of an ML program's main function, and its opset name."""
    functions = spec.mlProgram.functions
    if "main" not in functions:
        raise ValueError(f"no main function (functions: {', '.join(functions)})")
    function = functions["main"]
    block = function.block_specializations[function.opset]
    ops = []
    for op in block.operations:
        name = op.attributes["name"].immediateValue.tensor.strings.values[0] if "name" in op.attributes else ""
        outputs = [(o.name, _dtype(o.type), _shape(o.type)) for o in op.outputs]
        if op.type == "const":
            val = op.attributes["val"]
            ops.append(MilOp("const", name or outputs[0][0], outputs=outputs,
                             const=_const(val, outputs[0][1], outputs[0][2])))
            continue
        inputs = {}
        for param, argument in op.inputs.items():
            inputs[param] = [b.name if b.WhichOneof("binding") == "name" else _const(b.value, _dtype(b.value.type),
                                                                                  _shape(b.value.type))
                             for b in argument.arguments]
        ops.append(MilOp(op.type, name or outputs[0][0], inputs, outputs))
    return ops, function.opset


def program_graph(spec, path: Path, fmt: str, model_dir: Path) -> Graph:
    """The `Graph` of an ML program spec whose weight paths are relative to `model_dir`."""
    try:
        ops, opset = mil_ops(spec)
    except ValueError as exc:
        raise InputError(path, f"unreadable ML program: {exc}", "convert again") from None
    info = declared(spec) | {"opset": opset}
    return mil_graph(path, fmt, ops, [feature(d) for d in spec.description.input],
                     [feature(d) for d in spec.description.output], model_dir, info)
