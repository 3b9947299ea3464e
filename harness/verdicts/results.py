"""results.json: the versioned record of a parity run, written atomically and validated when read.

Reports render from these files only, so runs from several machines merge into one report.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import jsonschema

from reference.atomic import write_atomic
from reference.errors import InputError
from reference.provenance import cpu_name, library_versions, sha256

SCHEMA_ID = "synctalk-parity/results"
VERSION = 2  # 2: runs carry "findings" (image evidence) and "missing_frames"
LIBRARIES = ("numpy", "onnx", "onnxruntime", "openvino", "onnxconverter-common", "opencv-python-headless",
             "soundfile", "soxr", "scipy", "scikit-image")
STATUSES = ("passed", "failed", "skipped", "error")

_NUMBER = {"type": ["number", "string", "null"]}
SCHEMA = {
    "type": "object",
    "required": ["schema", "version", "created", "partial", "machine", "inputs", "profile", "runs"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "version": {"const": VERSION},
        "created": {"type": "string"},
        "partial": {"type": "boolean"},  # true until every run finished
        "interrupted": {"type": "string"},  # optional: the signal that stopped a partial run
        "machine": {"type": "object", "required": ["name", "os", "cpu", "python", "libraries"]},
        "config": {"type": "object"},
        "profile": {"type": "string"},
        "inputs": {
            "type": "object",
            "required": ["source", "models", "audio"],
            "properties": {
                "source": {"type": "object", "required": ["path", "kind", "sha256"]},
                "models": {"type": "object", "required": ["audio_encoder", "generator"]},
                "audio": {"type": "array", "items": {"type": "object", "required": ["name", "sha256"]}},
            },
        },
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["backend", "kind", "audio", "status", "failures", "frames"],
                "properties": {
                    "backend": {"type": "string"},
                    "kind": {"type": "string"},
                    "audio": {"type": "string"},
                    "status": {"enum": list(STATUSES)},
                    "reason": {"type": "string"},
                    "failures": {"type": "array", "items": {"type": "string"}},
                    "frames": {"type": "integer", "minimum": 0},
                    "thresholds": {"type": "object", "additionalProperties": _NUMBER},
                    "summary": {"type": "object"},
                    "per_frame": {"type": "array", "items": {"type": "object"}},
                    "features": {"type": "object"},
                    "timings": {"type": "object", "properties": {
                        "frame_ms": {"type": "array", "items": {"type": "number", "minimum": 0}}}},
                    "info": {"type": "object"},
                    "missing_frames": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                    "findings": {"type": "array", "items": {
                        "type": "object", "required": ["kind", "summary", "frames", "explains_db"],
                        "properties": {"kind": {"type": "string"}, "summary": {"type": "string"},
                                       "frames": {"type": "array", "items": {"type": "integer"}},
                                       "explains_db": _NUMBER}}},
                },
            },
        },
    },
}


def machine_info() -> dict:
    """This machine: name, OS, CPU, cores, Python and the versions of the libraries that decide numbers."""
    libs = library_versions(LIBRARIES)
    return {"name": os.environ.get("SYNCTALK_PARITY_MACHINE") or platform.node(), "os": platform.platform(),
            "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "libraries": libs}


def tree_sha256(root: Path) -> str:
    """One hash over every file below `root` (relative path and content)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + sha256(path).encode())
    return digest.hexdigest()


def distinct_names(names: list[str], reserved: tuple[str, ...] = ()) -> list[str]:
    """`names`, distinct from each other and from `reserved` even compared case-insensitively: a second
    ``talk`` becomes ``talk-2``."""
    taken = {name.lower() for name in reserved}
    out = []
    for base in names:
        candidate, k = base, 2
        while candidate.lower() in taken:
            candidate, k = f"{base}-{k}", k + 1
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def audio_labels(audios: list[Path]) -> list[str]:
    """The audio names of the run records (``runs[].audio``): file names, made unique (two ``talk.wav``:
    ``talk.wav-2``)."""
    return distinct_names([a.name for a in audios])


def new_results(machine: dict, inputs: dict, profile: str, config: dict) -> dict:
    """An empty results document; runs are appended as they finish."""
    return {"schema": SCHEMA_ID, "version": VERSION, "created": datetime.now(timezone.utc).isoformat(),
            "partial": True, "machine": machine, "config": config, "inputs": inputs, "profile": profile,
            "runs": []}


def to_json(value):
    """Strict JSON: infinite and NaN floats become the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def _from_json(value):
    if value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def write_results(results: dict, path: str | Path) -> Path:
    """Validate and write atomically (`reference.atomic.write_atomic`)."""
    doc = to_json(results)
    jsonschema.validate(doc, SCHEMA)
    return write_atomic(path, json.dumps(doc, indent=1, allow_nan=False))


def read_results(path: str | Path) -> dict:
    """Read and validate a results file; InputError says what is wrong with it."""
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "results file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable results.json: {exc}") from None
    version = results.get("version") if isinstance(results, dict) else None
    if isinstance(results, dict) and results.get("schema") == SCHEMA_ID and version != VERSION:
        raise InputError(path, f"is results.json version {version!r}; this synctalk-parity reads version {VERSION}",
                         "write it again with this version (`synctalk-parity run`), or read it with the version "
                         "that wrote it") from None
    try:
        jsonschema.validate(results, SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise InputError(path, f"invalid results.json at {where}: {exc.message}",
                         "it was not written by this version of synctalk-parity") from None
    return _from_json(results)
