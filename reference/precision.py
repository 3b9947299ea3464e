"""Reduced precision of both models (the `precision` convention): fp16 by conversion, bf16 by emulation.

* "fp16": both ONNX models converted to float16 by onnxconverter-common (float32 inputs and outputs
  kept), cached on disk per model pair; the same conversion as the `fp16` backend, so a candidate
  that runs fp16 models is reproduced exactly.
* "bf16": an emulation, not a conversion (ONNX Runtime's CPU kernels have no bfloat16 path): the
  float32 inputs and outputs of both models are rounded to the nearest bfloat16 (ties to even),
  the arithmetic inside stays float32. It reproduces the rounding at the model boundary that a
  bf16 engine (OpenVINO's bf16 hint, a bf16 port) adds, not the rounding of its intermediates.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference.atomic import cached
from reference.models import ENCODER_FILE, GENERATOR_FILE, ModelFiles, Models
from reference.provenance import cache_dir, model_sha256

if TYPE_CHECKING:  # onnx is imported where a conversion runs: 0.6 s that an fp32 run does not pay
    import onnx

PRECISIONS = ("fp32", "fp16", "bf16")
VARIANTS = "precision_variants"  # the attribute of a models object holding {precision: models-like}


def fp16_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` converted to float16 by onnxconverter-common, float32 inputs and outputs kept."""
    from onnxconverter_common import float16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "number truncated to 1e-07": expected in fp16
        return float16.convert_float_to_float16(model, keep_io_types=True)


def convert_to_fp16(files: ModelFiles, out: Path) -> ModelFiles:
    """Write float16 copies of both models (float32 inputs and outputs kept) into `out`, each one file: the
    external data a model names is read in, and its fp16 weights are written inside the graph."""
    import onnx
    for src, name in ((files.encoder, ENCODER_FILE), (files.generator, GENERATOR_FILE)):
        onnx.save(fp16_model(onnx.load(str(src))), str(out / name))
    return ModelFiles(out / ENCODER_FILE, out / GENERATOR_FILE)


def fp16_files(files: ModelFiles) -> ModelFiles:
    """The float16 conversion of `files`, built once into the cache folder (keyed by both models' identity:
    graph and external data, `model_sha256`)."""
    key = f"fp16-{model_sha256(files.encoder)[:12]}-{model_sha256(files.generator)[:12]}"
    return ModelFiles.from_dir(cached(cache_dir() / key, lambda tmp: convert_to_fp16(files, tmp)))


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), returned as float32; NaN stays NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), x, out)


class Bf16Models:
    """`models` with every float32 input and output of both models rounded to bfloat16 (an emulation)."""

    def __init__(self, models: Models) -> None:
        self.inner = models
        self.files, self.workers = models.files, models.workers
        self.encoder, self.generator = models.encoder, models.generator

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of bf16-rounded windows, rounded to bf16."""
        return round_bf16(self.inner.encode(round_bf16(windows)))

    def generate(self, image: np.ndarray, audio: np.ndarray, worker: int = 0) -> np.ndarray:
        """Generator output of bf16-rounded inputs (on `worker`'s session), rounded to bf16."""
        return round_bf16(self.inner.generate(round_bf16(image), round_bf16(audio), worker))


def _build(models: Models, precision: str):
    if precision == "bf16":
        return Bf16Models(models)
    if precision == "fp16":  # the same sessions: the encoder's options, as many generator workers
        session = models.encoder
        return Models(fp16_files(models.files), providers=session.get_providers(),
                      options=session.get_session_options(), workers=models.workers,
                      worker_threads=models.worker_threads)
    raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


def with_precision(models: Models, precision: str = "fp32"):
    """`models` run at `precision` ("fp32": `models` itself); the same object for the same models each time.
    The variants live on `models` (a variant refers back to it, so a table outside would keep it alive
    for ever) and go with it."""
    if precision == "fp32":
        return models
    built = models.__dict__.setdefault(VARIANTS, {})
    if precision not in built:
        built[precision] = _build(models, precision)
    return built[precision]
