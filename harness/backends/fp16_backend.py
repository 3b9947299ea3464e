"""`fp16`: both models converted to float16 (onnxconverter-common, float32 I/O kept) on ONNX Runtime CPU.

The emulated mobile precision: what CoreML's fp16 or a half-precision port does to the numbers.
Options: `threads`.
"""
from __future__ import annotations

from harness.backends.base import BackendUnavailable, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.options import check_options
from reference.models import ModelFiles, Models, reference_models
from reference.precision import converted_files


class Fp16Backend(PipelineBackend):
    """The pipeline with float16 models on ONNX Runtime CPU."""

    kind = "fp16"

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        check_options(name, self.options, {"kind": str, "threads": int})

    def check_available(self) -> None:
        try:
            import onnxconverter_common  # noqa: F401
        except ImportError:
            raise BackendUnavailable("onnxconverter-common is not installed; pip install onnxconverter-common") from None

    def open_models(self, inputs: RunInputs) -> Models:
        files = converted_files(ModelFiles.from_dir(inputs.models), "fp16")
        return reference_models(files, int(self.options.get("threads", 0)))  # the reference's engine, on fp16 copies

    def describe(self, models: Models) -> dict:
        return {"engine": "onnxruntime", "precision": "float16 weights and activations, float32 I/O",
                "providers": models.generator.get_providers()}
