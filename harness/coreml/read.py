"""Any model the audit takes, read into a `Graph`: `.mlpackage`, `.mlmodel`, `.mlmodelc` or `.onnx`."""
from __future__ import annotations

import json
from pathlib import Path

from harness.coreml.graph import Graph
from reference.errors import InputError

FORMATS = (".mlpackage", ".mlmodel", ".mlmodelc", ".onnx")
FIX = "give a .mlpackage, .mlmodel, .mlmodelc folder or .onnx file"


def package_spec_path(package: Path) -> Path:
    """The spec file inside an `.mlpackage`, found through its Manifest.json."""
    manifest = package / "Manifest.json"
    if not manifest.is_file():
        raise InputError(package, "no Manifest.json: not an ML package", FIX)
    try:
        info = json.loads(manifest.read_text())
        item = info["itemInfoEntries"][info["rootModelIdentifier"]]
        path = package / "Data" / item["path"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(manifest, f"unreadable manifest ({exc.__class__.__name__}: {exc})",
                         "save the package again") from None
    if not path.is_file():
        raise InputError(path, "the model spec the manifest names is missing", "copy the whole package")
    return path


def _spec_graph(spec_path: Path, shown: Path, fmt: str) -> Graph:
    from harness.coreml.mil_proto import load_spec, program_graph
    from harness.coreml.nn_spec import network_graph
    spec = load_spec(spec_path)
    which = spec.WhichOneof("Type")
    if which == "mlProgram":
        return program_graph(spec, shown, f"ML program ({fmt})", spec_path.parent)
    if which in ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor"):
        return network_graph(spec, shown, f"neural network ({fmt})")
    raise InputError(shown, f"a Core ML {which} model, not a neural network or ML program", FIX)


def read_model(path: str | Path) -> Graph:
    """The `Graph` of the model at `path`, by its suffix (InputError for anything else)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "not found", FIX)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from harness.coreml.onnx_view import onnx_graph
        if not path.is_file():
            raise InputError(path, "a folder, not an ONNX file", FIX)
        return onnx_graph(path)
    if suffix == ".mlpackage":
        if not path.is_dir():
            raise InputError(path, "an .mlpackage is a folder; this is a file", FIX)
        return _spec_graph(package_spec_path(path), path, ".mlpackage")
    if suffix == ".mlmodel":
        if not path.is_file():
            raise InputError(path, "a folder, not an .mlmodel file", FIX)
        return _spec_graph(path, path, ".mlmodel")
    if suffix == ".mlmodelc":
        from harness.coreml.mil_text import compiled_graph
        if not path.is_dir():
            raise InputError(path, "an .mlmodelc is a folder; this is a file", FIX)
        return compiled_graph(path)
    raise InputError(path, f"unknown model format {suffix or '(no suffix)'!r}", FIX)
