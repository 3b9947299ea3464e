"""Writing a video with PyAV: BGR frames to H.264 (libx264) and a sound track to AAC.

The pictures are converted to YUV under one matrix and range (`matrix`, `rng`) and the stream may be
tagged with others (`tag_matrix`, `tag_range`): an app that converts with BT.601 and tags BT.709 is
written that way. `times` gives each picture's presentation time (a dropped frame, a late start, a
variable rate); by default picture i is at i / fps.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

TIME_BASE = Fraction(1, 12800)
MATRIX_CODES = {"bt601": 5, "bt709": 1}  # AVColorSpace
RANGE_CODES = {"limited": 1, "full": 2}  # AVColorRange
AUDIO_FRAME = 1024


def encode(path: Path | str, frames: Iterable[np.ndarray], *, fps: float = 25, times: Sequence[float] | None = None,
           crf: float = 18, preset: str = "veryfast", matrix: str = "bt601", rng: str = "full",
           tag_matrix: str | None = None, tag_range: str | None = None, options: dict | None = None,
           bit_rate: int | None = None, audio: tuple[np.ndarray, int] | None = None) -> Path:
    """`frames` (BGR uint8, all one even size) as H.264 High 4:2:0 in `path` (its suffix picks the
    container), at constant quality `crf` or at `bit_rate` (b/s); `audio` (mono float samples, rate) is
    muxed as AAC starting with the picture."""
    import av
    path = Path(path)
    tag_matrix, tag_range = tag_matrix or matrix, tag_range or rng
    with av.open(str(path), "w") as container:
        stream = None
        for i, img in enumerate(frames):
            if stream is None:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = img.shape[1], img.shape[0]
                stream.pix_fmt = "yuv420p"
                stream.time_base = TIME_BASE
                opts = {"preset": preset, **({"b": str(bit_rate)} if bit_rate else {"crf": f"{crf:g}"}), **(options or {})}
                stream.options = opts
                cc = stream.codec_context
                cc.colorspace, cc.color_range = MATRIX_CODES[tag_matrix], RANGE_CODES[tag_range]
                cc.color_primaries = cc.color_trc = MATRIX_CODES[tag_matrix]
                if bit_rate:
                    cc.bit_rate = bit_rate
                sound = _audio_stream(container, audio[1]) if audio is not None else None
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=MATRIX_CODES[matrix],
                                   dst_color_range=RANGE_CODES[rng])
            frame.colorspace, frame.color_range = MATRIX_CODES[tag_matrix], RANGE_CODES[tag_range]
            t = times[i] if times is not None else i / fps
            frame.pts, frame.time_base = int(round(t / TIME_BASE)), TIME_BASE
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frame to encode")
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            _write_audio(container, sound, audio[0])
    return path


def _audio_stream(container, rate: int):
    stream = container.add_stream("aac", rate=rate)
    stream.layout = "mono"
    return stream


def _write_audio(container, stream, samples: np.ndarray) -> None:
    import av
    rate = stream.codec_context.sample_rate
    samples = np.asarray(samples, np.float32).reshape(-1)
    for start in range(0, len(samples), AUDIO_FRAME):
        chunk = samples[start:start + AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
