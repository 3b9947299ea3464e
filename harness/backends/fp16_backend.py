"""`fp16`: both models converted to float16 (onnxconverter-common, float32 I/O kept) on ONNX Runtime CPU.

The emulated mobile precision: what CoreML's fp16 or a half-precision port does to the numbers.
Options: `threads`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx

from fixtures.cache import cache_dir, cached
from harness.backends.base import BackendUnavailable, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.options import check_options
from reference.golden import sha256
from reference.models import ENCODER_FILE, GENERATOR_FILE, ModelFiles, Models


def convert_to_fp16(files: ModelFiles, out: Path) -> ModelFiles:
    """Write float16 copies of both models (float32 inputs and outputs kept) into `out`."""
    from onnxconverter_common import float16
    for src, name in ((files.encoder, ENCODER_FILE), (files.generator, GENERATOR_FILE)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "number truncated to 1e-07": expected in fp16
            model = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
        onnx.save(model, str(out / name))
    return ModelFiles(out / ENCODER_FILE, out / GENERATOR_FILE)


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
        files = ModelFiles.from_dir(inputs.models)
        key = f"fp16-{sha256(files.encoder)[:12]}-{sha256(files.generator)[:12]}"
        folder = cached(cache_dir() / key, lambda tmp: convert_to_fp16(files, tmp))
        return Models(ModelFiles.from_dir(folder), threads=int(self.options.get("threads", 0)))

    def describe(self, models: Models) -> dict:
        return {"engine": "onnxruntime", "precision": "float16 weights and activations, float32 I/O",
                "providers": models.generator.get_providers()}
