"""One reference run: audio features, frames generated and written, optional stage dump, timings."""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from reference.conventions import Conventions
from reference.data import TemplateSource
from reference.models import Models
from reference.output import frame_path, prepare_output, write_frame
from reference.pipeline import ReferencePipeline, audio_features, background_priority
from reference.stages import StageDump

MAX_PENDING_WRITES = 8


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
          dump_stages: str | Path | None = None, dump_frames: int = 8, png_level: int = 1,
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
    pending: deque[Future] = deque()
    writing = [0.0]

    def write(i: int, frame) -> None:
        t0 = time.perf_counter()
        write_frame(frame_path(out_dir, i, fmt), frame, fmt, png_level)
        writing[0] += time.perf_counter() - t0

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="write", initializer=background_priority) as writer:
        for result in tqdm(pipeline.frames(feats, n), total=n, unit="frame", disable=not progress,
                           desc="reference"):
            if dump:
                dump.add_frame(result)
            pending.append(writer.submit(write, result.index, result.frame))
            while len(pending) > MAX_PENDING_WRITES:
                pending.popleft().result()
        for fut in pending:
            fut.result()
    index = dump.write(dump_stages, conv, {"audio": str(audio_path), "frames": n}) if dump else None
    end = time.perf_counter()
    stages = {**feats.seconds, **pipeline.seconds, "encode_write": writing[0]}
    return InferResult(n, out_dir, end - start, audio_done - start, stages, index.parent if index else None)
