"""One reference run: audio features, frames generated and written, optional stage dump, timings."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reference.conventions import Conventions
from reference.data import TemplateSource
from reference.models import Models
from reference.ordered_worker import OrderedWorker
from reference.output import PNG_LEVEL, PngLevel, frame_path, prepare_output, write_frame
from reference.pipeline import ReferencePipeline, audio_features, background_priority
from reference.stages import StageDump

MAX_PENDING_WRITES = 8


class FrameWriter:
    """Encodes and writes frames in one background thread (an `OrderedWorker`), at most
    MAX_PENDING_WRITES queued; `seconds` sums their encode and write times. Leaving the `with` block
    waits for every write."""

    def __init__(self, folder: Path, fmt: str = "png", png_level: PngLevel = PNG_LEVEL) -> None:
        self.folder, self.fmt, self.png_level = folder, fmt, png_level
        self.seconds = 0.0
        self._worker = OrderedWorker(self._write, MAX_PENDING_WRITES, background_priority, "write")

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        with self._worker:  # joins the thread
            if exc_type is None:
                self.wait()

    def _write(self, i: int, frame: np.ndarray) -> None:
        start = time.perf_counter()
        write_frame(frame_path(self.folder, i, self.fmt), frame, self.fmt, self.png_level)
        self.seconds += time.perf_counter() - start

    def write(self, i: int, frame: np.ndarray) -> None:
        """Queue 0-based frame `i`; waits while more than MAX_PENDING_WRITES are queued (raising a
        finished write's error)."""
        self._worker.submit(i, i, frame)

    def wait(self) -> None:
        """Return once every queued frame is written (raising a write's error)."""
        self._worker.drain()


@dataclass
class InferResult:
    """What a run produced and how long it took."""

    frames: int
    output: Path
    seconds: float  # end to end, audio load included
    audio_seconds: float  # audio load + mel + encoder
    stages: dict  # seconds per stage: audio_load, mel, encoder, frame_decode, ..., encode_write
    stage_dump: Path | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def infer(source: TemplateSource, audio_path: str | Path, models: Models, output: str | Path,
          frames: int | None = None, fmt: str = "png", conv: Conventions = Conventions(),
          dump_stages: str | Path | None = None, dump_frames: int = 8, png_level: PngLevel = PNG_LEVEL,
          progress: bool = True) -> InferResult:
    """Run the reference pipeline and write `frame_00001.<fmt>` ... into `output`."""
    start = time.perf_counter()
    out_dir = prepare_output(output)
    feats = audio_features(audio_path, models, conv, frames)
    audio_done = time.perf_counter()
    pipeline = ReferencePipeline(source, models, conv)
    n = pipeline.check_frames(feats, frames, audio_path)
    dump = StageDump(dump_frames) if dump_stages else None
    if dump:
        dump.add_audio(feats)
    with FrameWriter(out_dir, fmt, png_level) as writer:
        for result in tqdm(pipeline.frames(feats, n), total=n, unit="frame", disable=not progress,
                           desc="reference"):
            if dump:
                dump.add_frame(result)
            writer.write(result.index, result.frame)
    index = dump.write(dump_stages, conv, {"audio": str(audio_path), "frames": n}) if dump else None
    end = time.perf_counter()
    stages = {**feats.seconds, **pipeline.seconds, "encode_write": writer.seconds}
    return InferResult(n, out_dir, end - start, audio_done - start, stages, index.parent if index else None)
