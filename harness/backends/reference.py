"""`reference` and `reference[knob=value,...]`: the Python reference, canonical or in a convention variant."""
from __future__ import annotations

import re

from harness.backends.base import RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.options import check_options
from reference.conventions import Conventions
from reference.models import ModelFiles, Models, reference_models

_NAME = re.compile(r"^[^\[\]]*(?:\[(?P<knobs>[^\[\]]*)\])?$")


def conventions_of(name: str, options: dict) -> Conventions:
    """Conventions from the `reference[...]` name and/or the `conventions` option."""
    match = _NAME.match(name)
    knobs = [match.group("knobs") or ""] if match else []
    knobs.append(str(options.get("conventions", "")))
    return Conventions.parse(",".join(k for k in knobs if k))


class ReferenceBackend(PipelineBackend):
    """The reference pipeline on ONNX Runtime CPU. Options: `conventions` (text), `threads` (int: cores,
    default 0 = all; one single-threaded generator session per core, frames in parallel)."""

    kind = "reference"

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        check_options(name, self.options, {"kind": str, "conventions": str, "threads": int})
        self._conventions = conventions_of(name, self.options)

    @property
    def conventions(self) -> Conventions:
        return self._conventions

    def open_models(self, inputs: RunInputs) -> Models:
        return reference_models(ModelFiles.from_dir(inputs.models), int(self.options.get("threads", 0)))

    def describe(self, models: Models) -> dict:
        return {"engine": "onnxruntime", "providers": models.generator.get_providers()}
