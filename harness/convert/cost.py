"""The parity cost a faithful reduced-precision conversion predicts, from the fp16 emulation.

A conversion whose weights are the source's up to fp16 rounding still computes in fp16 on the Mac.
What that costs is measured here without a Mac: the reference runs a few frames of the demo data
(the real Sanders pack and talk_hb.wav when present) once in fp32 and once with the converted
model(s) replaced by their fp16 emulation (onnxconverter-common's float16 conversion on ONNX Runtime,
the `fp16` precision of reference/precision.py), and the frames and embeddings are compared.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fixtures.locate import DemoData, demo_data
from harness.verdicts.metrics import psnr
from reference.data import open_source
from reference.errors import InputError
from reference.models import ENCODER_FILE, GENERATOR_FILE, ModelFiles, Models
from reference.pipeline import ReferencePipeline, audio_features
from reference.precision import converted_files

FRAMES = 4


@dataclass(frozen=True)
class Cost:
    """Predicted cost of running `converted` in fp16: worst PSNR of the frames (full frame, as the
    tolerance profiles judge it, and the face rect the generator paints) and drift of the embeddings."""

    converted: str  # "audio encoder", "generator" or "both models"
    frames: int
    data: str  # "Sanders pack" or "synthetic pack"
    psnr_min: float
    face_psnr_min: float
    embeddings_max_abs: float

    def line(self) -> str:
        return (f"predicted parity cost of fp16 ({self.converted}): worst PSNR {self.psnr_min:.2f} dB full frame, "
                f"{self.face_psnr_min:.2f} dB face rect; embeddings max abs {self.embeddings_max_abs:.2g} (from the "
                f"fp16 emulation on {self.frames} frames of the {self.data})")

    def to_json(self) -> dict:
        return dict(vars(self))


def _frames(models, pack: Path, audio: Path, n: int) -> tuple[list, np.ndarray]:
    feats = audio_features(audio, models, frames=n)
    pipeline = ReferencePipeline(open_source(pack), models)
    return list(pipeline.frames(feats, pipeline.check_frames(feats, n, audio))), feats.embeddings


def model_role(source: Path) -> str:
    """"audio encoder" or "generator", from the source model's file name."""
    name = Path(source).name
    if name == ENCODER_FILE:
        return "audio encoder"
    if name == GENERATOR_FILE:
        return "generator"
    raise InputError(source, f"the parity cost needs the pipeline's {ENCODER_FILE} or {GENERATOR_FILE}",
                     "give the source under its pipeline name, beside the other model")


def predict_cost(files: ModelFiles, converted: str = "both models", frames: int = FRAMES,
                 data: DemoData | None = None) -> Cost:
    """Run the reference on `frames` frames in fp32 and with `converted` ("audio encoder", "generator" or
    "both models") emulated in fp16, on `data` (the demo data by default)."""
    data = data if data is not None else demo_data(frames)
    half = converted_files(files, "fp16")
    mixed = ModelFiles(half.encoder if converted != "generator" else files.encoder,
                       half.generator if converted != "audio encoder" else files.generator)
    ref, ref_emb = _frames(Models(files), data.pack, data.audio, frames)
    cand, cand_emb = _frames(Models(mixed), data.pack, data.audio, frames)
    full = [psnr(a.frame, b.frame) for a, b in zip(ref, cand)]
    face = [psnr(a.frame[y1:y2, x1:x2], b.frame[y1:y2, x1:x2]) for a, b in zip(ref, cand)
            for x1, y1, x2, y2 in [a.rect]]
    return Cost(converted, len(full), data.name, min(full), min(face),
                float(np.abs(ref_emb - cand_emb).max()))
