"""Reading a video: its streams, its timeline against the pipeline's 25 fps, its pictures and its sound.

Frame k of the pipeline (0-based here, ``k + 1`` in file names) is due at ``t = k / 25`` s after the
video's first picture. Slot k shows the decoded frame whose display interval (its presentation time
up to the next one's) covers the slot's middle, ``(k + 0.5) / 25``; when that frame started more than
half a slot before the slot did, it is a frame held over a gap and slot k is *dropped*. So a video at
another rate (30 fps re-timed) still pairs frame by frame, and one missing picture costs one slot.

Pictures are converted to BGR by swscale under the stream's own tags (matrix and range; untagged:
BT.601, swscale's default; ``yuvj*`` formats are full range). `yuv_to_bgr` converts the raw planes
under any other reading, for the colour fit of the evidence.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from reference.audio import VIDEO_FPS
from reference.errors import InputError

SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
EPS_S = 1e-3
MATRICES = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020", 2: "unspecified"}
RANGES = {1: "limited", 2: "full", 0: "unspecified"}
PRIMARIES = {1: "bt709", 5: "bt601-625", 6: "bt601-525", 9: "bt2020", 2: "unspecified"}
KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
FIX = "bring back the video file as the app wrote it (H.264 in .mp4, .mov, .m4v or .mkv), not re-encoded"


def is_video(path: Path | str) -> bool:
    """Whether `path` names a video file by its suffix (.mp4 .mov .m4v .mkv)."""
    return Path(path).suffix.lower() in SUFFIXES


@dataclass(frozen=True)
class VideoStream:
    """The picture stream's settings as the container and the codec state them."""

    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str
    bit_rate: int | None
    matrix: str
    range: str
    primaries: str
    fps_nominal: float
    encoder: str | None = None
    x264: dict = field(default_factory=dict)  # libx264's own options (from its SEI), {} for other encoders

    def describe(self) -> str:
        """"h264 High yuvj420p bt601 full 1.36 Mb/s (x264 crf 18)"."""
        rate = f" {self.bit_rate / 1e6:.2f} Mb/s" if self.bit_rate else ""
        x264 = f" (x264 crf {self.x264['crf']})" if "crf" in self.x264 else ""
        return f"{self.codec} {self.profile or ''} {self.pix_fmt} {self.matrix} {self.range}{rate}{x264}".replace("  ", " ")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AudioStream:
    """The sound track's settings."""

    codec: str
    sample_rate: int
    channels: int
    bit_rate: int | None
    start_s: float
    duration_s: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Timeline:
    """Slot k -> the decoded frame it shows (presentation order) or None (dropped), and the decoded frames
    no slot shows (a faster rate, or extra frames)."""

    shown: tuple[int | None, ...]
    unshown: tuple[int, ...]

    @property
    def dropped(self) -> list[int]:
        """The slots (0-based) with no picture of their own."""
        return [k for k, j in enumerate(self.shown) if j is None]


def timeline(times: np.ndarray, fps: float = VIDEO_FPS, slots: int | None = None) -> Timeline:
    """The slots of `times` (presentation times in s, ascending, relative to the first); `slots` defaults
    to the picture's span (its last time plus the median interval) in slots."""
    times = np.asarray(times, float)
    period = 1.0 / fps
    step = float(np.median(np.diff(times))) if len(times) > 1 else period
    if slots is None:
        slots = int(round((times[-1] + step) * fps)) if len(times) else 0
    shown: list[int | None] = []
    for k in range(slots):
        j = int(np.searchsorted(times, (k + 0.5) * period + EPS_S, side="right")) - 1
        held = j < 0 or times[j] < k * period - period / 2 - EPS_S
        shown.append(None if held else j)
    used = {j for j in shown if j is not None}
    return Timeline(tuple(shown), tuple(j for j in range(len(times)) if j not in used))


@dataclass(frozen=True)
class VideoInfo:
    """A video file's container and streams; `times` are its pictures' presentation times (s, ascending)."""

    path: Path
    format: str
    stream: VideoStream
    audio: AudioStream | None
    times: tuple[float, ...]
    packet_bytes: int

    @property
    def start_s(self) -> float:
        return self.times[0] if self.times else 0.0

    @property
    def intervals(self) -> np.ndarray:
        return np.diff(np.asarray(self.times))

    @property
    def fps_real(self) -> float:
        """The rate the pictures come at: one over their mean interval, the intervals 10 % off the median (a gap) aside."""
        steps = self.intervals
        if not len(steps):
            return self.stream.fps_nominal
        usual = steps[np.abs(steps - np.median(steps)) <= 0.1 * np.median(steps)]
        return 1.0 / float(usual.mean()) if len(usual) and usual.mean() > 0 else self.stream.fps_nominal

    @property
    def duration_s(self) -> float:
        """The picture's span: from its first time to its last plus one median interval."""
        step = float(np.median(self.intervals)) if len(self.times) > 1 else 1.0 / VIDEO_FPS
        return (self.times[-1] - self.times[0] + step) if self.times else 0.0

    def timeline(self, fps: float = VIDEO_FPS, slots: int | None = None) -> Timeline:
        return timeline(np.asarray(self.times) - self.start_s, fps, slots)


def _open(path: Path):
    import av
    if not path.is_file():
        raise InputError(path, "no such video file", FIX)
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read as a video: {exc}", FIX) from None


def _x264_options(data: bytes) -> dict:
    """libx264's options from the SEI it writes in its first picture ("x264 - core 164 ... - options: crf=18.0 ...")."""
    found = re.search(rb"x264 - core \d+.*?options: ([^\x00]*)", data, re.S)
    if not found:
        return {}
    options = {}
    for item in found.group(1).decode("latin-1").split():
        key, _, value = item.partition("=")
        if value:
            options[key] = value
    return options


def _enum(value, names: dict) -> str:
    return names.get(int(value), f"other ({int(value)})") if value is not None else "unspecified"


def probe(path: Path | str) -> VideoInfo:
    """The container, its streams and every picture's presentation time (read from the packets, nothing
    decoded); InputError naming the file when it is missing, unreadable or holds no picture."""
    import av
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise InputError(path, "holds no video stream", FIX)
        vs = container.streams.video[0]
        cc = vs.codec_context
        times, size, first = [], 0, b""
        try:
            for packet in container.demux(vs):
                if packet.pts is None:
                    continue
                times.append(float(packet.pts * vs.time_base))
                size += packet.size
                if len(first) < 1 << 16:
                    first += bytes(packet)
        except av.FFmpegError as exc:
            raise InputError(path, f"is damaged: {exc}", FIX) from None
        if not times:
            raise InputError(path, "holds no picture", FIX)
        times.sort()
        rng = "full" if cc.pix_fmt and cc.pix_fmt.startswith("yuvj") else _enum(cc.color_range, RANGES)
        rate = vs.base_rate or vs.average_rate or VIDEO_FPS  # the stream's rate, not its average over a gap
        stream = VideoStream(cc.name, cc.profile, cc.width, cc.height, cc.pix_fmt or "unknown",
                             vs.bit_rate or None, _enum(cc.colorspace, MATRICES), rng,
                             _enum(cc.color_primaries, PRIMARIES), float(rate), vs.metadata.get("encoder"),
                             _x264_options(first))
        audio = None
        if container.streams.audio:
            a = container.streams.audio[0]
            start = float(a.start_time * a.time_base) if a.start_time is not None else 0.0
            duration = float(a.duration * a.time_base) if a.duration else 0.0
            audio = AudioStream(a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels,
                                a.bit_rate or None, start, duration)
        return VideoInfo(path, container.format.name, stream, audio, tuple(times), size)


def _planes(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes of a planar 4:2:0 8-bit frame, without conversion."""
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        out.append(rows[:, :plane.width])
    return out[0], out[1], out[2]


def yuv_to_bgr(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: str, rng: str) -> np.ndarray:
    """4:2:0 planes read as BGR uint8 under `matrix` (bt601, bt709, bt2020) and `rng` (full, limited);
    chroma upsampled bilinearly."""
    import cv2
    kr, kb = KR_KB.get(matrix, KR_KB["bt601"])
    h, w = y.shape
    cb = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 128.0
    cr = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 128.0
    luma = y.astype(np.float32)
    if rng == "limited":
        luma, cb, cr = (luma - 16.0) * (255.0 / 219.0), cb * (255.0 / 224.0), cr * (255.0 / 224.0)
    kg = 1.0 - kr - kb
    r = luma + 2.0 * (1.0 - kr) * cr
    b = luma + 2.0 * (1.0 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return np.clip(np.stack([b, g, r], axis=2) + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Picture:
    """One slot's picture: its BGR frame under the stream's tags, and the raw planes (4:2:0 streams)."""

    slot: int
    frame: int
    bgr: np.ndarray
    yuv: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def pictures(info: VideoInfo, line: Timeline, raw: bool = False) -> Iterator[Picture]:
    """Each slot's picture in slot order (dropped slots left out; a frame shown in two slots comes twice),
    decoded once, in presentation order; with `raw` also its planes. InputError when decoding fails."""
    import av
    wanted: dict[int, list[int]] = {}
    for k, j in enumerate(line.shown):
        if j is not None:
            wanted.setdefault(j, []).append(k)
    if not wanted:
        return
    last = max(wanted)
    with _open(info.path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        j = -1
        try:
            for frame in container.decode(vs):
                j += 1
                if j in wanted:
                    bgr = frame.to_ndarray(format="bgr24")
                    planes = _planes(frame) if raw and frame.format.name in ("yuv420p", "yuvj420p") else None
                    for k in wanted[j]:
                        yield Picture(k, j, bgr, planes)
                if j >= last:
                    return
        except av.FFmpegError as exc:
            raise InputError(info.path, f"is damaged at picture {j + 2}: {exc}", FIX) from None
    if j < last:
        raise InputError(info.path, f"decoded {j + 1} pictures, its packets promise {last + 1}", FIX)


def read_audio(path: Path | str) -> tuple[np.ndarray, int, float] | None:
    """The first sound track as mono float32, its sample rate and the time of its first sample (s), or
    None when the file holds no sound."""
    import av
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, start = [], None
        try:
            for frame in container.decode(stream):
                if start is None and frame.pts is not None:
                    start = float(frame.pts * frame.time_base)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise InputError(path, f"its sound track is damaged: {exc}", FIX) from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return samples.astype(np.float32), rate, start or 0.0
