"""The pipeline's stages: their names, the order they come in, and their dumps (`--dump-stages DIR`:
every intermediate of a run as .npy files plus index.json)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reference.conventions import Conventions

if TYPE_CHECKING:  # the stage names are read where the pipeline is not loaded
    from reference.pipeline import AudioFeatures, FrameResult

INDEX_VERSION = 1

# Stage names shared by every backend and the comparison (shapes as the reference dumps them).
STAGES = {
    "mel": "(T, 80) normalised log-mel",
    "embeddings": "(data_len, 512) audio encoder outputs",
    "padded_features": "(frames, 512) padded features",
    "audio_windows": "(frames, 32, 16, 16) generator audio inputs",
    "generator_outputs": "(K, 3, 320, 320) generator outputs before quantisation, first frames",
}
STAGE_ORDER = ("mel", "encoder_windows", "embeddings", "padded_features", "audio_windows", "generator_outputs")
"""Every compared stage in pipeline order: STAGES plus ``encoder_windows``, which only in-process backends give."""


def in_stage_order(stages) -> list[str]:
    """Stage names in pipeline order (STAGE_ORDER), any unknown name after them, alphabetically."""
    names = set(stages)
    return [s for s in STAGE_ORDER if s in names] + sorted(names - set(STAGE_ORDER))

DESCRIPTIONS = {
    "mel": "normalised log-mel (T, 80)",
    "encoder_windows": "audio encoder inputs (data_len, 1, 80, 16)",
    "embeddings": "audio encoder outputs (data_len, 512)",
    "padded_features": "embeddings padded with the first and last row (frames, 512)",
    "audio_windows": "generator audio input of every frame (frames, 32, 16, 16)",
    "generator_outputs": "generator output before quantisation, first frames (K, 3, 320, 320)",
    "patches": "quantised 320x320 BGR patches composited into the crop, first frames (K, 320, 320, 3)",
}


class StageDump:
    """Collects the stages of one run in memory; `write` saves them."""

    def __init__(self, first_frames: int = 8) -> None:
        self.first_frames = first_frames
        self.arrays: dict[str, np.ndarray] = {}
        self.audio_windows: list[np.ndarray] = []
        self.outputs: list[np.ndarray] = []
        self.patches: list[np.ndarray] = []
        self.rects: list[list[int]] = []
        self.templates: list[int] = []

    def add_audio(self, feats: AudioFeatures) -> None:
        """Record the audio stages."""
        self.arrays.update(mel=feats.mel, encoder_windows=feats.windows, embeddings=feats.embeddings,
                           padded_features=feats.padded)

    def add_frame(self, result: FrameResult) -> None:
        """Record one frame (its audio window always; outputs and patches for the first frames)."""
        self.audio_windows.append(result.audio[0])
        self.templates.append(result.t)
        self.rects.append([int(v) for v in result.rect])
        if result.index < self.first_frames:
            self.outputs.append(result.output[0])
            self.patches.append(result.patch)

    def stage_arrays(self) -> dict[str, np.ndarray]:
        """Every recorded stage as one array."""
        arrays = dict(self.arrays)
        if self.audio_windows:
            arrays["audio_windows"] = np.stack(self.audio_windows)
            arrays["generator_outputs"] = np.stack(self.outputs)
            arrays["patches"] = np.stack(self.patches)
        return arrays

    def write(self, folder: str | Path, conv: Conventions, extra: dict | None = None) -> Path:
        """Write the .npy files and index.json (last, so a complete index means a complete dump)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stages = {}
        for name, arr in self.stage_arrays().items():
            np.save(folder / f"{name}.npy", arr)
            stages[name] = {"file": f"{name}.npy", "shape": list(arr.shape), "dtype": str(arr.dtype),
                            "description": DESCRIPTIONS[name]}
        index = {"version": INDEX_VERSION, "stages": stages, "conventions": conv.label(),
                 "frame_templates": self.templates, "frame_rects": self.rects, **(extra or {})}
        (folder / "index.json").write_text(json.dumps(index, indent=1))
        return folder / "index.json"
