"""Folders of frames "made elsewhere": the reference with a planted defect, written to disk as a port
on a Mac or a phone would bring them back.

Defects the conventions name run through `reference.conventions` knobs; the others are made here from
the reference's own parts: a paste at the wrong place (`paste`), audio features transformed before
the generator (`features`), frames left out (`keep`), the output written by another JPEG encoder or
quality (`fmt`, `quality`). The same arguments give the same files.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from reference.conventions import POST_GENERATOR, Conventions
from reference.data import TemplateFrame, open_source, read_image
from reference.image import ROI_SIZE, resize
from reference.models import ModelFiles, Models
from reference.output import jpeg_bytes, write_frame
from reference.pipeline import FrameResult, ReferencePipeline, audio_features

PasteFn = Callable[[FrameResult, TemplateFrame], np.ndarray]  # the frame as the port composites it


def y_flipped(result: FrameResult, tpl: TemplateFrame) -> np.ndarray:
    """The face rect's content pasted with a bottom-left origin: at y = H - y2 instead of y1."""
    x1, y1, x2, y2 = result.rect
    out = tpl.full.copy()
    h = out.shape[0]
    out[h - y2:h - y1, x1:x2] = result.frame[y1:y2, x1:x2]
    return out


def shifted(dx: int, dy: int) -> PasteFn:
    """The face rect's content pasted `dx`, `dy` pixels away from its rect."""
    def paste(result: FrameResult, tpl: TemplateFrame) -> np.ndarray:
        x1, y1, x2, y2 = result.rect
        out = tpl.full.copy()
        out[y1 + dy:y2 + dy, x1 + dx:x2 + dx] = result.frame[y1:y2, x1:x2]
        return out
    return paste


def crop_border(offset: int) -> PasteFn:
    """The 320 patch placed at (`offset`, `offset`) inside its 328 crop instead of (4, 4)."""
    def paste(result: FrameResult, tpl: TemplateFrame) -> np.ndarray:
        x1, y1, x2, y2 = result.rect
        work = tpl.crop_328.copy()
        work[offset:offset + ROI_SIZE, offset:offset + ROI_SIZE] = result.patch
        out = tpl.full.copy()
        out[y1:y2, x1:x2] = resize(work, (x2 - x1, y2 - y1))
        return out
    return paste


class SameInputs(Models):
    """Models that keep each generator output by the bytes of its inputs (the engine is deterministic):
    folders that differ from the reference only after the generator (paste, channel order, codec)
    reuse its outputs instead of running the generator again."""

    def __init__(self, models: Path) -> None:
        super().__init__(ModelFiles.from_dir(models), threads=1)
        self.outputs: dict[bytes, np.ndarray] = {}

    def generate(self, image: np.ndarray, audio: np.ndarray, worker: int = 0) -> np.ndarray:
        key = hashlib.blake2b(image.tobytes() + audio.tobytes(), digest_size=16).digest()
        if key not in self.outputs:
            self.outputs[key] = super().generate(image, audio, worker)
        return self.outputs[key]


def after_generator(conv: Conventions = Conventions(), *, features=None, **_) -> bool:
    """Whether `make_folder` with these arguments feeds the generator what the reference feeds it."""
    return features is None and all(knob in POST_GENERATOR for knob in conv.variants())


def make_folder(pack: Path, audio: Path, models: Path | Models, out: Path, frames: int,
                conv: Conventions = Conventions(), *, fmt: str = "png", quality: int = 95,
                encoder: str = "cv2", subsampling: str = "420", paste: PasteFn | None = None,
                features: Callable[[np.ndarray], np.ndarray] | None = None,
                keep: Callable[[int], bool] | None = None, dumps: bool = False) -> Path:
    """Frames 1..`frames` of the reference (under `conv`, with the defects given) as
    ``out/frame_00001.<fmt>``; with `dumps` also the generator's audio inputs as the seed ports write
    them, ``out/../debug_audio_travelled_frame<k>.bin`` (k = 1..5)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = open_source(pack)
    mdl = models if isinstance(models, Models) else Models(ModelFiles.from_dir(models), threads=1)
    feats = audio_features(audio, mdl, conv, frames)
    if features is not None:
        feats = replace(feats, padded=features(feats.padded).astype(np.float32))
    pipe = ReferencePipeline(source, mdl, conv)
    n = pipe.check_frames(feats, frames, audio)
    for result in pipe.frames(feats, n):
        frame = result.frame
        if paste is not None:
            frame = paste(result, source.frame(result.t))
        if dumps and result.index < 5:
            result.audio.astype("<f4").tofile(out.parent / f"debug_audio_travelled_frame{result.index + 1}.bin")
        if keep is not None and not keep(result.index):
            continue
        write(out / f"frame_{result.index + 1:05d}.{fmt}", frame, fmt, quality, encoder, subsampling)
    return out


def write(path: Path, frame: np.ndarray, fmt: str, quality: int = 95, encoder: str = "cv2",
          subsampling: str = "420") -> None:
    """One frame as PNG (the reference's own default PNG), or JPEG by OpenCV or Pillow at `quality` and
    `subsampling` (420 or 444)."""
    if fmt == "png":
        write_frame(path, frame, "png")
    else:
        path.write_bytes(jpeg_bytes(frame, quality, encoder, subsampling))


def reencode(src: Path, out: Path, quality: int, encoder: str = "cv2", subsampling: str = "420") -> Path:
    """Every frame of `src` decoded and written again as JPEG (``frame_00001.jpg``...)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("frame_*")):
        write(out / (path.stem + ".jpg"), read_image(path), "jpg", quality, encoder, subsampling)
    return out
