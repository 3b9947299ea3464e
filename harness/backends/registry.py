"""Backends by name: `kind` picks the class; a name like `reference[...]` implies its kind."""
from __future__ import annotations

from harness.backends.base import Backend
from harness.backends.coreml_backend import CoreMLBackend
from harness.backends.frames_dir import FramesBackend
from harness.backends.fp16_backend import Fp16Backend
from harness.backends.openvino_backend import OpenVINOBackend
from harness.backends.ort_backend import OrtBackend
from harness.backends.reference import ReferenceBackend
from harness.backends.subprocess_port import SubprocessBackend

KINDS: dict[str, type[Backend]] = {
    cls.kind: cls for cls in (ReferenceBackend, OrtBackend, OpenVINOBackend, Fp16Backend, CoreMLBackend,
                              SubprocessBackend, FramesBackend)
}


def make_backend(name: str, options: dict | None = None) -> Backend:
    """Build the backend `name` from its options table (ValueError names what is wrong)."""
    options = dict(options or {})
    kind = options.get("kind") or name.split("[", 1)[0]
    if not isinstance(kind, str):
        raise ValueError(f"backend {name!r}: kind must be a string, got {kind!r}")
    if kind not in KINDS:
        raise ValueError(f"backend {name!r}: unknown kind {kind!r}; choose one of {', '.join(KINDS)} "
                         f"(set kind = \"...\" in its table)")
    return KINDS[kind](name, options)
