"""A compiled Core ML model folder (`.mlmodelc`): `metadata.json` and the MIL text `model.mil`.

The text form of an ML program, as Core ML's compiler writes it:

    program(1.0)
    [buildInfo = dict<...>(...)]
    {
        func main<ios15>(tensor<fp32, [1, 1, 80, 16]> mel) {
                tensor<fp32, [32]> b = const()[name = tensor<string, []>("b"), val = tensor<fp32, [32]>(
                    BLOBFILE(path = tensor<string, []>("@model_path/weights/weight.bin"), offset = tensor<uint64, []>(64)))];
                tensor<fp32, [1, 32, 80, 16]> y = conv(bias = b, ..., x = mel)[name = tensor<string, []>("y")];
            } -> (y);
    }

This module tokenises it and reads the main function into `MilOp`s; the weights it names are read
from `weights/weight.bin` beside it when that file is there.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from harness.coreml.graph import Graph, TensorInfo
from harness.coreml.mil_program import DTYPES, Const, MilOp, mil_graph
from reference.errors import InputError

TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>[-+]?0x[0-9a-fA-F.]+(?:p[-+]?\d+)?|'
                   r'[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[-+]inf)|(?P<id>[A-Za-z_@][\w.@]*)|(?P<punct>->|[()\[\]{}<>,=;:]))')
NUMPY = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int32": np.int32, "int64": np.int64,
         "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32,
         "uint64": np.uint64, "bool": np.bool_}
METADATA_DTYPES = {"Float32": "float32", "Float16": "float16", "Double": "float64", "Int32": "int32"}


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: str, num, id, punct."""
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"unexpected character {text[pos:pos + 20].strip()!r} at offset {pos}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens of a MIL text program."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        k = self.pos + offset
        return self.tokens[k][1] if k < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        if self.pos >= len(self.tokens):
            raise ValueError(f"unexpected end of the program (expected {expected!r})")
        text = self.tokens[self.pos][1]
        if expected is not None and text != expected:
            raise ValueError(f"expected {expected!r}, found {text!r} (token {self.pos})")
        self.pos += 1
        return text

    def skip_balanced(self) -> None:
        """Skip one bracketed group starting at the current token."""
        pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
        depth = []
        while True:
            t = self.take()
            if t in pairs:
                depth.append(pairs[t])
            elif depth and t == depth[-1]:
                depth.pop()
            if not depth:
                return

    def items(self, close: str, read) -> list:
        """`item, item, ...` up to the `close` token (not taken), each read by `read()`."""
        out = []
        while self.peek() != close:
            out.append(read())
            if self.peek() == ",":
                self.take(",")
        return out

    def parameter(self) -> TensorInfo:
        dtype, shape = self.type_()
        return TensorInfo(self.take(), shape, dtype)

    def pairs(self, close: str, value) -> dict:
        """`key = value, ...` up to the `close` token (not taken), each value read by `value()`."""
        out = {}
        while self.peek() != close:
            key = self.take()
            self.take("=")
            out[key] = value()
            if self.peek() == ",":
                self.take(",")
        return out

    def type_(self) -> tuple[str, tuple]:
        """tensor<dtype, [dims]> -> (dtype, shape); other types (dict, list, state) -> (name, ())."""
        name = self.take()
        if name != "tensor":
            self.skip_balanced()
            return name, ()
        self.take("<")
        dtype = DTYPES.get(self.take(), "?")
        self.take(",")
        self.take("[")
        dims = [int(d) if d.isdigit() else None for d in self.items("]", self.take)]
        self.take("]")
        self.take(">")
        return dtype, tuple(dims)

    def content(self):
        """A literal's content: a number, string, bool, (nested) list or BLOBFILE(...)."""
        kind, text = self.tokens[self.pos]
        if text in ("[", "{"):
            close = "]" if text == "[" else "}"
            self.take()
            items = self.items(close, self.content)
            self.take(close)
            return items
        self.take()
        if text == "BLOBFILE":
            self.take("(")
            fields = self.pairs(")", lambda: self.literal().value)
            self.take(")")
            return ("BLOBFILE", fields)
        if kind == "str":
            return json.loads(text)
        if text in ("true", "false"):
            return text == "true"
        if text in ("inf", "nan"):
            return float(text)
        if kind == "num":
            return float.fromhex(text) if "0x" in text else float(text) if any(c in text for c in ".eEn") else int(text)
        return text

    def literal(self) -> Const:
        dtype, shape = self.type_()
        self.take("(")
        value = self.content() if self.peek() != ")" else None
        self.take(")")
        if isinstance(value, tuple) and value[0] == "BLOBFILE":
            return Const(dtype, shape, blob_file=value[1]["path"], offset=int(value[1]["offset"]))
        if isinstance(value, list) and dtype in NUMPY:
            value = np.asarray(value, NUMPY[dtype]).reshape(shape)
        return Const(dtype, shape, value)

    def argument(self):
        """An op argument: a bound name, a literal, or a tuple of them (concat's values)."""
        if self.peek() == "(":
            self.take("(")
            items = [name for group in self.items(")", self.argument) for name in group]
            self.take(")")
            return items
        if self.peek() == "tensor" and self.peek(1) == "<":
            return [self.literal()]
        return [self.take()]

    def statement(self) -> MilOp:
        outputs = []
        wrapped = self.peek() == "("
        if wrapped:
            self.take("(")
        while True:
            dtype, shape = self.type_()
            outputs.append((self.take(), dtype, shape))
            if self.peek() != ",":
                break
            self.take(",")
        if wrapped:
            self.take(")")
        self.take("=")
        op_type = self.take()
        self.take("(")
        inputs = self.pairs(")", self.argument)
        self.take(")")
        attrs = {}
        if self.peek() == "[":
            self.take("[")
            attrs = self.pairs("]", self.literal)
            self.take("]")
        if self.peek() == "{":
            raise ValueError(f"op {outputs[0][0]} ({op_type}) holds nested blocks (control flow), not read here")
        self.take(";")
        name = attrs["name"].value if "name" in attrs else outputs[0][0]
        return MilOp(op_type, name, inputs, outputs, attrs.get("val") if op_type == "const" else None)

    def main(self) -> tuple[str, list[TensorInfo], list[MilOp], list[str]]:
        """(opset, inputs, ops, output names) of `func main`."""
        while not (self.peek() == "func" and self.peek(1) == "main"):
            self.take()
        self.take("func")
        self.take("main")
        opset = ""
        if self.peek() == "<":
            self.take("<")
            opset = self.take()
            self.take(">")
        self.take("(")
        inputs = self.items(")", self.parameter)
        self.take(")")
        self.take("{")
        ops = []
        while self.peek() != "}":
            ops.append(self.statement())
        self.take("}")
        self.take("->")
        self.take("(")
        return opset, inputs, ops, self.items(")", self.take)


def parse_program(text: str) -> tuple[str, list[TensorInfo], list[MilOp], list[str]]:
    """(opset, inputs, ops, output names) of the main function of a MIL text program."""
    return _Parser(text).main()


def _schema(entries: list[dict]) -> list[TensorInfo]:
    out = []
    for entry in entries:
        shape = tuple(int(d) for d in re.findall(r"\d+", entry.get("shape", "")))
        kind = "tensor" if entry.get("type", "MultiArray") == "MultiArray" else entry.get("type", "?").lower()
        out.append(TensorInfo(entry.get("name", "?"), shape, METADATA_DTYPES.get(entry.get("dataType"), "?"), kind))
    return out


def compiled_graph(folder: Path) -> Graph:
    """The `Graph` of a compiled ML program folder (InputError for anything else)."""
    folder = Path(folder)
    mil = folder / "model.mil"
    if not mil.is_file():
        if any(folder.glob("model.espresso.*")) or (folder / "model" / "model.espresso.net").exists():
            raise InputError(folder, "a compiled neural network (model.espresso.*) holds no readable program",
                             "audit the .mlmodel it was compiled from")
        raise InputError(folder, "no model.mil in this folder: not a compiled ML program",
                         "give a .mlmodelc folder as Xcode or coremlcompiler writes it")
    try:
        opset, inputs, ops, output_names = parse_program(mil.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(mil, f"unreadable MIL text: {exc}", "compile the model again") from None
    types = {name: (dtype, shape) for op in ops for name, dtype, shape in op.outputs}
    outputs = [TensorInfo(n, types.get(n, ("?", ()))[1], types.get(n, ("?", ()))[0]) for n in output_names]
    declared = {"opset": opset}
    meta_path = folder / "metadata.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise InputError(meta_path, f"not JSON ({exc})", "compile the model again") from None
        meta = meta[0] if isinstance(meta, list) and meta else meta
        if isinstance(meta, dict):
            declared |= {"storage_precision": meta.get("storagePrecision"),
                         "compute_precision": meta.get("computePrecision"),
                         "specification_version": meta.get("specificationVersion"),
                         "op_histogram": meta.get("mlProgramOperationTypeHistogram"),
                         "metadata": meta.get("userDefinedMetadata", {})}
            inputs = _schema(meta.get("inputSchema", [])) or inputs
            outputs = _schema(meta.get("outputSchema", [])) or outputs
    return mil_graph(folder, "compiled ML program (.mlmodelc)", ops, inputs, outputs, folder, declared)
