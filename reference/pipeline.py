"""The reference pipeline: audio features once, then one composited frame per padded feature row.

Every stage is timed (seconds, summed over frames): audio_load, mel, encoder on `AudioFeatures`,
frame_decode, preprocess, generator, postprocess on `ReferencePipeline.seconds`. `frames()` runs the
generator on one thread per generator session of the models (`Models.workers`, consecutive frames in
parallel): low-priority helper threads decode the next templates and build their inputs ahead of
them and composite behind them (OpenCV, numpy and ONNX Runtime release the GIL).
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from reference import audio, features, image
from reference.conventions import Conventions
from reference.data import TemplateFrame, TemplateSource, template_index
from reference.errors import InputError
from reference.models import Models
from reference.output import output_roundtrip
from reference.precision import with_precision


FRAME_STAGES = ("frame_decode", "preprocess", "generator", "postprocess")


def background_priority() -> None:
    """Lower this thread's scheduling priority (Linux: per thread), so that helper threads (decode,
    encode) fill the generator's idle cycles instead of taking cores from it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


@dataclass(frozen=True)
class AudioFeatures:
    """Every audio stage of one clip (embeddings only of the windows the requested frames use)."""

    mel: np.ndarray  # (T, 80) float32
    windows: np.ndarray  # (k, 1, 80, 16) float32 encoder inputs, k <= data_len
    embeddings: np.ndarray  # (k, 512) float32
    padded: np.ndarray  # rows of the padded features [e0, e0..e(k-1)(, e_last)], one per video frame
    n_frames: int  # frames of the whole clip's canonical video (one per padded row of all data_len windows)
    seconds: dict = field(default_factory=dict)  # audio_load, mel, encoder


def audio_features(wav_path: str | Path, models: Models, conv: Conventions = Conventions(),
                   frames: int | None = None) -> AudioFeatures:
    """Load the WAV and run mel -> encoder windows -> batched encoder -> padded features.

    With `frames`, only the windows frames 0..frames-1 read are encoded (frame i reads padded rows
    i-8..i+7, i.e. embeddings up to i+6): the same numbers, less work for a short run. The encoder runs at
    `conv.precision`; with `conv.audio_source` "aud_ave" these features are still computed (and
    dumped) but the generator reads the pack's file instead (see `ReferencePipeline`).
    """
    models = with_precision(models, conv.precision)
    t0 = time.perf_counter()
    wav = audio.load_wav(wav_path)
    t1 = time.perf_counter()
    mel = audio.melspectrogram(wav, framing=conv.stft_framing, window=conv.stft_window, mel_scale=conv.mel_scale)
    windows = audio.encoder_windows(mel)
    data_len = len(windows)
    pad = conv.feature_padding == "edge"
    n_frames = data_len + 2 if pad else data_len
    if frames is not None:
        windows = windows[:min(data_len, frames + 8 + max(conv.audio_offset, 0))]
    t2 = time.perf_counter()
    emb = models.encode(windows)
    t3 = time.perf_counter()
    padded = features.pad_features(emb, conv.feature_padding)
    if pad and len(emb) < data_len:
        padded = padded[:-1]  # the last row pads with the clip's last embedding, not encoded here
    return AudioFeatures(mel, windows, emb, padded, n_frames,
                         {"audio_load": t1 - t0, "mel": t2 - t1, "encoder": t3 - t2})


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


@dataclass(frozen=True)
class Prepared:
    """A frame ready for the generator: its template and its generator inputs."""

    index: int
    template: TemplateFrame
    image: np.ndarray  # (1, 6, 320, 320) float32
    audio: np.ndarray  # (1, 32, 16, 16) float32


def masked_half(roi: np.ndarray, pack_masked: np.ndarray | None, mode: str) -> np.ndarray:
    """The generator's masked half under `masked_input`: the ROI with the canonical box zeroed
    ("memory"), with the two-corner box ("two_point"), the pack's model_inputs image ("pack") or the
    ROI itself ("none": a port that lost its mask)."""
    if mode == "pack":
        return pack_masked
    if mode == "none":
        return roi
    return image.mask_roi(roi, image.MASK_RECT_TWO_POINT if mode == "two_point" else image.MASK_RECT)


class ReferencePipeline:
    """Generates composited frames from a template source, the models and audio features.

    With `conv.audio_source` "aud_ave" the generator's audio windows are cut from the source's
    fixed features file (`aud_ave.bin`, already padded: one row per frame, zero rows past its end)
    instead of the features of the WAV, whatever the WAV holds; `conv.precision` picks the models'
    precision (reference/precision.py).
    """

    def __init__(self, source: TemplateSource, models: Models, conv: Conventions = Conventions(),
                 prefetch: int = 3) -> None:
        self.source = source
        self.models = with_precision(models, conv.precision)
        self.conv = conv
        self.prefetch = prefetch
        self.workers = getattr(self.models, "workers", 1)  # engines other than `Models`: one frame at a time
        self.seconds = dict.fromkeys(FRAME_STAGES, 0.0)
        self._seconds_lock = threading.Lock()
        self._flight = threading.Condition()  # pieces of frame work under way (`_in_flight`), and `hold`
        self._held, self._in_flight = False, 0
        self.fixed_audio = (features.read_features_file(source.root / features.FEATURES_FILE)
                            if conv.audio_source == "aud_ave" else None)

    def _timed(self, stage: str, start: float) -> None:
        """Add the time since `start` to `stage` (threads add at once)."""
        elapsed = time.perf_counter() - start
        with self._seconds_lock:
            self.seconds[stage] += elapsed

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

    def load_template(self, i: int) -> TemplateFrame:
        """Decode the template frame of output frame `i` (timed as frame_decode)."""
        start = time.perf_counter()
        crop_source = None if self.conv.crop_source == "default" else self.conv.crop_source
        masked_source = "pack" if self.conv.masked_input == "pack" else "memory"
        tpl = self.source.frame(self.template(i), crop_source=crop_source, masked_source=masked_source)
        if self.conv.resize_kernel != "cv2_cubic" and (crop_source or self.source.default_crop_source) == "computed":
            crop = image.crop_face(tpl.full, tpl.rect, self.conv.resize_kernel)
            tpl = replace(tpl, crop_328=crop, roi_320=image.roi_of(crop))
        self._timed("frame_decode", start)
        return tpl

    def generator_inputs(self, i: int, feats: AudioFeatures, tpl: TemplateFrame) -> tuple[np.ndarray, np.ndarray]:
        """The generator's image (1, 6, 320, 320) and audio (1, 32, 16, 16) inputs of frame `i`."""
        conv = self.conv
        roi = tpl.roi_320
        masked = masked_half(roi, tpl.masked_320, conv.masked_input)
        if conv.input_channels == "rgb":
            roi, masked = roi[..., ::-1], masked[..., ::-1]
        rows = feats.padded if self.fixed_audio is None else self.fixed_audio
        aud = features.audio_window(rows, i, conv.audio_window, conv.audio_offset)
        return image.generator_input(roi, masked), aud

    def prepare(self, i: int, feats: AudioFeatures) -> Prepared:
        """Decode frame `i`'s template (timed as frame_decode) and build its generator inputs (preprocess)."""
        tpl = self.load_template(i)
        start = time.perf_counter()
        image_in, audio_in = self.generator_inputs(i, feats, tpl)
        self._timed("preprocess", start)
        return Prepared(i, tpl, image_in, audio_in)

    def generate(self, prepared: Prepared, worker: int = 0) -> np.ndarray:
        """The generator's output for a prepared frame on generator session `worker` (timed as generator)."""
        start = time.perf_counter()
        if self.workers == 1:
            output = self.models.generate(prepared.image, prepared.audio)
        else:
            output = self.models.generate(prepared.image, prepared.audio, worker)
        self._timed("generator", start)
        return output

    def finish(self, prepared: Prepared, output: np.ndarray) -> FrameResult:
        """Composite the generator `output` of a prepared frame (timed as postprocess)."""
        start = time.perf_counter()
        patch, frame = self.composite(prepared.template, output)
        self._timed("postprocess", start)
        tpl = prepared.template
        return FrameResult(prepared.index, tpl.t, tpl.rect, prepared.audio, output, patch, frame)

    def composite(self, tpl: TemplateFrame, output: np.ndarray,
                  box: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The patch (320, 320, 3) uint8 made of a generator `output` and the composited frame: every
        step after the generator (quantisation, output channel order, paste and resize, output codec).
        With `box` (row and column slices), only the frame's pixels in `box`, the same values."""
        conv = self.conv
        patch = image.quantize(output, rounding=conv.quantisation == "round")
        if conv.output_channels == "rgb":
            patch = np.ascontiguousarray(patch[..., ::-1])
        frame = image.paste(tpl.full, tpl.crop_328, patch, tpl.rect, conv.resize_kernel, conv.paste)
        frame = output_roundtrip(frame, conv.output, box)
        return patch, frame

    def frame(self, i: int, feats: AudioFeatures) -> FrameResult:
        """Frame `i` alone, every step in the calling thread."""
        prepared = self.prepare(i, feats)
        return self.finish(prepared, self.generate(prepared))

    def frames(self, feats: AudioFeatures, n: int) -> Iterator[FrameResult]:
        """Frames 0..n-1 in order: on one generator session the calling thread runs the generator
        (`_frames_inline`), on K sessions K generator threads do (`_frames_parallel`)."""
        if self.workers == 1:
            yield from self._frames_inline(feats, n)
        else:
            yield from self._frames_parallel(feats, n)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Within it no piece of frame work (a prepare, a generator call, a composite) starts, and the
        ones under way have finished: the pause of a measurement that interleaves other work with this
        pipeline's frames (helper threads otherwise prepare and composite frames, and frames in
        parallel are made, while the caller does something else). No frame may be asked for within it."""
        with self._flight:
            self._held = True
            self._flight.wait_for(lambda: self._in_flight == 0)
        try:
            yield
        finally:
            with self._flight:
                self._held = False
                self._flight.notify_all()

    @contextmanager
    def _at_work(self) -> Iterator[None]:
        """One piece of frame work: it waits while a `hold` is on and is counted until it ends."""
        with self._flight:
            self._flight.wait_for(lambda: not self._held)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._flight:
                self._in_flight -= 1
                self._flight.notify_all()

    def _held_back(self, work, *args):
        """`work(*args)` as a piece of frame work (`_at_work`): what the helper threads run."""
        with self._at_work():
            return work(*args)

    def _frames_inline(self, feats: AudioFeatures, n: int) -> Iterator[FrameResult]:
        """The calling thread runs only the generator, and only while it is asked for a frame: one
        helper thread prepares frames (template decode, generator inputs) `prefetch` ahead of it and
        composites frame i while it makes frame i + 1, so frame i is yielded after frame i + 1's
        generator call. Each composite is queued before the next prepare, so it never waits behind
        the look-ahead."""
        with ThreadPoolExecutor(1, thread_name_prefix="frame-helper", initializer=background_priority) as helper:
            ahead: deque[Future] = deque(helper.submit(self._held_back, self.prepare, i, feats)
                                         for i in range(min(self.prefetch, n)))
            behind: deque[Future] = deque()
            try:
                for i in range(n):
                    prepared = ahead.popleft().result()
                    output = self.generate(prepared)
                    behind.append(helper.submit(self._held_back, self.finish, prepared, output))
                    if i + self.prefetch < n:
                        ahead.append(helper.submit(self._held_back, self.prepare, i + self.prefetch, feats))
                    if len(behind) > 1:  # composited during this generator call
                        yield behind.popleft().result()
                while behind:
                    yield behind.popleft().result()
            finally:  # stopped early (an error, close(), Ctrl-C): what has not started never runs
                for future in (*ahead, *behind):
                    future.cancel()

    def _make(self, prepared: Future, worker: int) -> tuple[Prepared, np.ndarray]:
        """A generator thread's frame: its prepared inputs, then the generator on session `worker`
        once no `hold` is on."""
        frame = prepared.result()
        with self._at_work():
            return frame, self.generate(frame, worker)

    def _frames_parallel(self, feats: AudioFeatures, n: int) -> Iterator[FrameResult]:
        """K = `workers` generator threads (normal priority) make K consecutive frames at once, frame
        i on session i mod K; ceil(K / 2) helper threads (low priority) prepare frames (template
        decode, generator inputs) `prefetch` + K - 1 ahead of the oldest frame being made and
        composite each frame once it is made, so frame i is yielded after frame i + K's generator
        call has started. Each composite is queued before the next prepare, so it never waits behind
        the look-ahead; the calling thread only hands the work out and yields."""
        k = self.workers
        ahead_n = self.prefetch + k - 1
        with ThreadPoolExecutor(-(-k // 2), thread_name_prefix="frame-helper", initializer=background_priority) as helper, \
                ThreadPoolExecutor(k, thread_name_prefix="generator") as generators:
            ahead: deque[Future] = deque(helper.submit(self._held_back, self.prepare, i, feats)
                                         for i in range(min(ahead_n, n)))
            making: deque[Future] = deque(generators.submit(self._make, ahead.popleft(), i % k) for i in range(min(k, n)))
            behind: deque[Future] = deque()
            try:
                for i in range(n):
                    prepared, output = making.popleft().result()
                    behind.append(helper.submit(self._held_back, self.finish, prepared, output))
                    if i + k < n:  # frame i's session is free: it takes frame i + k
                        making.append(generators.submit(self._make, ahead.popleft(), i % k))
                    if i + ahead_n < n:
                        ahead.append(helper.submit(self._held_back, self.prepare, i + ahead_n, feats))
                    if len(behind) > 1:  # composited while later frames were made
                        yield behind.popleft().result()
                while behind:
                    yield behind.popleft().result()
            finally:  # stopped early (an error, close(), Ctrl-C): what has not started never runs
                for future in (*ahead, *making, *behind):
                    future.cancel()
