"""The backend interface: every implementation of the pipeline produces the same artefacts.

A backend is built from its name and options (from parity.toml), checks that it can run here
(`check_available`, raising `BackendUnavailable` with the reason when this platform cannot have
it, `BackendFailed` when something configured is missing), and `run`s one
(source, audio, models, frames) job into a `BackendRun`: the composited frames as a lazy
iterator (so a comparison streams them and never holds them all), the stage arrays it can
provide, what it ran on (`info`) and how long each part took (`timings`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import numpy as np


class BackendUnavailable(Exception):
    """The backend cannot run on this machine (a provider or package this platform cannot have: CoreML off
    macOS, CUDA without a GPU): skipped, with the reason. A configured port binary that is missing is
    `BackendFailed`, an error."""


class BackendFailed(Exception):
    """The backend ran and failed (crash, timeout, missing or malformed output)."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


@dataclass(frozen=True)
class RunInputs:
    """One job: the template data, the audio, the models and how many frames."""

    source: Path  # a pre-cut pack or a raw dataset folder
    source_kind: str  # "pack" | "dataset"
    audio: Path
    models: Path  # folder with audio_encoder.onnx and generator.onnx
    frames: int
    workdir: Path  # an empty folder this backend may write into (frames, dumps, logs)
    audio_name: str = ""  # the audio's name in the run: its file name without extension, or "silence"


@dataclass
class BackendRun:
    """The result of `Backend.run`: frames are produced lazily; stages/timings are complete once they are consumed."""

    frames: Iterator[np.ndarray | None]  # BGR uint8 (H, W, 3), frame 0 first; None: that frame is missing
    stages: Callable[[], dict[str, np.ndarray]] = dict  # call after the frames are consumed
    info: dict = field(default_factory=dict)  # providers, node counts, command line, versions; "frame_files":
    # {"dir", "pattern", "index_base"} of a backend whose frames are files (their codec is evidence)
    timings: dict = field(default_factory=dict)  # seconds: "total", "stages": {...}, "frame_latency": [...]
    hold: Callable[[], ContextManager] = contextlib.nullcontext  # pauses a backend that makes frames ahead (a
    # measurement's pause: no frame is made within it); a backend that makes frames only when asked has nothing to hold


class Backend:
    """Base class: subclasses set `kind` and implement `run` (and `check_available` when needed)."""

    kind = ""
    follows_audio = True  # its frames are made from the run's audio (a folder made elsewhere may hold one audio's)
    runs_here = True  # it makes its frames on this machine, so it can be timed (not a folder made elsewhere)

    def __init__(self, name: str, options: dict | None = None) -> None:
        self.name = name
        self.options = dict(options or {})

    def check_available(self) -> None:
        """Raise BackendUnavailable with the reason when this backend cannot run here."""

    def run(self, inputs: RunInputs) -> BackendRun:
        raise NotImplementedError

    def stream(self, inputs: RunInputs) -> BackendRun:
        """Like `run`, for a caller that compares frames while the backend still works (a port's frames
        before it exits); by default `run`, whose frames are lazy already."""
        return self.run(inputs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
