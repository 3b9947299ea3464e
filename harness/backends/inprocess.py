"""Backends that run the pipeline code in this process with their own model engine and conventions."""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np

from harness.backends.base import Backend, BackendRun, RunInputs
from reference.conventions import Conventions
from reference.data import open_template_source
from reference.pipeline import ReferencePipeline, audio_features
from reference.stages import StageDump


class PipelineBackend(Backend):
    """Runs `ReferencePipeline`; subclasses provide the engine (`open_models`) and what it ran on (`describe`)."""

    dump_frames = 8

    @property
    def conventions(self) -> Conventions:
        return Conventions()

    def open_models(self, inputs: RunInputs):
        """A runner with `files`, `encode(windows)` and `generate(image, audio)`."""
        raise NotImplementedError

    def describe(self, models) -> dict:
        """What the engine runs on (providers, precision, versions)."""
        return {}

    def run(self, inputs: RunInputs) -> BackendRun:
        self.check_available()
        conv = self.conventions
        start = time.perf_counter()
        source = open_template_source(inputs.source, inputs.source_kind)
        models = self.open_models(inputs)
        loaded = time.perf_counter()
        feats = audio_features(inputs.audio, models, conv, inputs.frames)
        pipeline = ReferencePipeline(source, models, conv)
        n = pipeline.check_frames(feats, inputs.frames, inputs.audio)
        dump = StageDump(self.dump_frames)
        dump.add_audio(feats)
        timings: dict = {"load": loaded - start, "audio_features": time.perf_counter() - loaded}

        def frames() -> Iterator[np.ndarray]:
            latencies = []
            t0 = time.perf_counter()
            for result in pipeline.frames(feats, n):
                latencies.append(time.perf_counter() - t0)
                dump.add_frame(result)
                yield result.frame
                t0 = time.perf_counter()
            timings.update(frames=n, frame_latency=latencies, stages={**feats.seconds, **pipeline.seconds},
                           total=timings["load"] + timings["audio_features"] + sum(latencies))

        info = {"conventions": conv.label(), **self.describe(models)}
        return BackendRun(frames(), dump.stage_arrays, info, timings, pipeline.hold)
