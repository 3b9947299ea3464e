"""The reference pipeline: audio features once, then one composited frame per padded feature row."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from reference import audio, features, image
from reference.conventions import Conventions
from reference.data import TemplateSource, template_index
from reference.errors import InputError
from reference.models import Models


@dataclass(frozen=True)
class AudioFeatures:
    """Every audio stage of one clip."""

    mel: np.ndarray  # (T, 80) float32
    windows: np.ndarray  # (data_len, 1, 80, 16) float32 encoder inputs
    embeddings: np.ndarray  # (data_len, 512) float32
    padded: np.ndarray  # (data_len + 2, 512) float32, one row per video frame

    @property
    def n_frames(self) -> int:
        """Frames of the canonical video: one per padded feature row."""
        return len(self.padded)


@dataclass(frozen=True)
class FrameResult:
    """One output frame and the intermediate values that produced it."""

    index: int  # 0-based frame number
    t: int  # dataset index of the template frame
    rect: image.Rect
    audio: np.ndarray  # (1, 32, 16, 16) generator audio input
    output: np.ndarray  # (1, 3, 320, 320) generator output before quantisation
    patch: np.ndarray  # (320, 320, 3) uint8 patch written into the crop
    frame: np.ndarray  # (H, W, 3) uint8 BGR composited frame


def audio_features(wav_path: str | Path, models: Models, conv: Conventions = Conventions()) -> AudioFeatures:
    """Load the WAV and run mel -> encoder windows -> batched encoder -> padded features."""
    wav = audio.load_wav(wav_path)
    mel = audio.melspectrogram(wav, framing=conv.stft_framing, window=conv.stft_window, mel_scale=conv.mel_scale)
    windows = audio.encoder_windows(mel)
    emb = models.encode(windows)
    return AudioFeatures(mel, windows, emb, features.pad_features(emb, conv.feature_padding))


class ReferencePipeline:
    """Generates composited frames from a template source, the models and audio features."""

    def __init__(self, source: TemplateSource, models: Models, conv: Conventions = Conventions()) -> None:
        self.source = source
        self.models = models
        self.conv = conv

    def template(self, i: int) -> int:
        """Dataset index of the template frame used by output frame `i`."""
        return template_index(i, self.source.n_images, self.conv.template_order)

    def check_frames(self, feats: AudioFeatures, frames: int | None, audio_path: Path | str) -> int:
        """The number of frames to make: all of them by default, at most one per padded feature row."""
        if frames is None:
            return feats.n_frames
        if frames < 1 or frames > feats.n_frames:
            raise InputError(audio_path, f"asked for {frames} frames but the audio gives {feats.n_frames} "
                             f"({feats.n_frames / audio.VIDEO_FPS:.1f} s at {audio.VIDEO_FPS} fps)",
                             f"use --frames between 1 and {feats.n_frames} or a longer clip")
        return frames

    def frame(self, i: int, feats: AudioFeatures) -> FrameResult:
        """Run the generator for frame `i` and composite it into its template frame."""
        conv = self.conv
        crop_source = None if conv.crop_source == "default" else conv.crop_source
        tpl = self.source.frame(self.template(i), crop_source=crop_source, masked_source=conv.masked_input)
        masked = tpl.masked_320 if tpl.masked_320 is not None else image.mask_roi(tpl.roi_320)
        roi = tpl.roi_320
        if conv.channel_order == "rgb":
            roi, masked = roi[..., ::-1], masked[..., ::-1]
        aud = features.audio_window(feats.padded, i, conv.audio_window, conv.audio_offset)
        output = self.models.generate(image.generator_input(roi, masked), aud)
        patch = image.quantize(output, rounding=conv.quantisation == "round")
        if conv.channel_order == "rgb":
            patch = np.ascontiguousarray(patch[..., ::-1])
        frame = image.paste(tpl.full, tpl.crop_328, patch, tpl.rect)
        return FrameResult(i, tpl.t, tpl.rect, aud, output, patch, frame)

    def frames(self, feats: AudioFeatures, n: int) -> Iterator[FrameResult]:
        """Frames 0..n-1 in order."""
        for i in range(n):
            yield self.frame(i, feats)
