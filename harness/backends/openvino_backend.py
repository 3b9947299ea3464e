"""`openvino`: the pipeline on OpenVINO (CPU), with an inference precision hint f32 | bf16 | f16.

On CPUs with native bf16 OpenVINO's default precision is bf16: a second engine with real precision
drift. Elsewhere a bf16/f16 hint silently runs f32; `info` reports the precision actually used.
Options: `precision`, `threads`, `device` (default CPU).
"""
from __future__ import annotations

import numpy as np

from harness.backends.base import BackendUnavailable, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.options import check_options
from reference.models import ENCODER_BATCH, ENCODER_IO, GENERATOR_IO, ModelFiles, check_finite, check_model

PRECISIONS = ("f32", "bf16", "f16")


class OpenVINOModels:
    """Encoder and generator compiled by OpenVINO, with the runner interface of reference.models.Models."""

    def __init__(self, files: ModelFiles, device: str, config: dict) -> None:
        import openvino as ov
        check_model(files.encoder, ENCODER_IO)
        check_model(files.generator, GENERATOR_IO)
        self.files = files
        self.core = ov.Core()
        self.encoder = self.core.compile_model(str(files.encoder), device, config)
        self.generator = self.core.compile_model(str(files.generator), device, config)
        self._gen_request = self.generator.create_infer_request()
        batch = self.encoder.input(0).get_partial_shape()[0]  # a fixed batch (a dynamo export's 1) is kept
        self.encoder_batch = batch.get_length() if batch.is_static else ENCODER_BATCH

    def encode(self, windows: np.ndarray) -> np.ndarray:
        step = self.encoder_batch
        parts = [self.encoder({"mel": windows[i:i + step]})[self.encoder.output(0)] for i in range(0, len(windows), step)]
        return check_finite(np.concatenate(parts).astype(np.float32, copy=False), self.files.encoder, "emb")

    def generate(self, image: np.ndarray, audio: np.ndarray) -> np.ndarray:
        result = self._gen_request.infer({"input": image, "audio": audio})
        return check_finite(np.array(result[self.generator.output(0)], copy=True), self.files.generator, "output")


class OpenVINOBackend(PipelineBackend):
    """The pipeline on OpenVINO."""

    kind = "openvino"

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        check_options(name, self.options, {"kind": str, "precision": str, "threads": int, "device": str})
        precision = self.options.get("precision")
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"backend {name!r}: precision {precision!r}; choose one of {', '.join(PRECISIONS)}")

    def check_available(self) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailable(f"the openvino package is not installed ({exc}); pip install openvino") from None
        device = self.options.get("device", "CPU")
        if device not in ov.Core().available_devices:
            raise BackendUnavailable(f"OpenVINO device {device} not present (have {ov.Core().available_devices})")

    def open_models(self, inputs: RunInputs) -> OpenVINOModels:
        config = {}
        if "precision" in self.options:
            config["INFERENCE_PRECISION_HINT"] = self.options["precision"]
        if "threads" in self.options:
            config["INFERENCE_NUM_THREADS"] = int(self.options["threads"])
        return OpenVINOModels(ModelFiles.from_dir(inputs.models), self.options.get("device", "CPU"), config)

    def describe(self, models: OpenVINOModels) -> dict:
        import openvino as ov
        device = self.options.get("device", "CPU")
        return {"engine": "openvino", "openvino": ov.get_version(), "device": device,
                "precision_requested": self.options.get("precision", "default"),
                "precision_effective": models.generator.get_property("INFERENCE_PRECISION_HINT").to_string(),
                "device_capabilities": list(models.core.get_property(device, "OPTIMIZATION_CAPABILITIES"))}
