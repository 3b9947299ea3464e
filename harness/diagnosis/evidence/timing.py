"""``frame_timing``: a video's clock against the pipeline's 25 fps, from its container.

Nominal rate (the stream's), real rate (pictures over their span), the first picture's time (an edit
list or a late start), variable frame rate (an interval that is not a whole number of the usual one),
the slots with no picture of their own (*dropped*, from the presentation times) and those whose
picture repeats the one before (*duplicated*, `travel.VideoEvidence.take`), the picture's duration
against its sound track's and the input audio's. Not a pixel model: ``explains_db`` is None, and the
dropped and duplicated slots are left out of every other finding.
"""
from __future__ import annotations

import numpy as np

from harness.diagnosis.evidence.basis import Basis, maker
from harness.diagnosis.evidence.record import Finding
from harness.video.read import VideoInfo
from harness.text.tables import frame_list
from reference.audio import VIDEO_FPS

FPS_TOLERANCE = 0.01  # frames per second
LATE_START_S = 0.5 / VIDEO_FPS  # half a frame
VFR_SHARE = 0.1  # an interval off a whole number of the median interval by more than this share
DURATION_S = 0.1  # picture and sound may differ by this much (an AAC frame is 64 ms at 16 kHz)


def clock(info: VideoInfo) -> dict:
    """The timing fields of one video (durations in s)."""
    steps = info.intervals
    vfr = False
    if len(steps):
        median = float(np.median(steps))
        ratio = steps / median
        vfr = bool(np.any(np.abs(ratio - np.round(ratio)) > VFR_SHARE) or np.any(np.round(ratio) < 1))
    return {"fps_nominal": round(info.stream.fps_nominal, 3), "fps_real": round(info.fps_real, 3),
            "start_s": round(info.start_s, 4), "vfr": vfr, "frames_decoded": len(info.times),
            "picture_s": round(info.duration_s, 4),
            "sound_s": round(info.audio.duration_s, 4) if info.audio is not None else None}


def _input_seconds(path) -> float | None:
    if path is None:
        return None
    import soundfile as sf
    try:
        return float(sf.info(str(path)).duration)
    except (RuntimeError, OSError):
        return None


def _problems(c: dict) -> list[str]:
    out = []
    if abs(c["fps_nominal"] - VIDEO_FPS) > FPS_TOLERANCE or abs(c["fps_real"] - VIDEO_FPS) > FPS_TOLERANCE:
        out.append(f"{c['fps_nominal']:g} fps nominal, {c['fps_real']:.3f} real (the pipeline's is {VIDEO_FPS})")
    if c["vfr"]:
        out.append("a variable frame rate")
    if c["start_s"] > LATE_START_S:
        out.append(f"the picture starts at {c['start_s'] * 1000:.0f} ms (an edit list or a late first frame)")
    if c["sound_s"] is not None and abs(c["sound_s"] - c["picture_s"]) > DURATION_S:
        out.append(f"picture {c['picture_s']:.2f} s, sound {c['sound_s']:.2f} s")
    return out


@maker("frame_timing")
def _timing(basis: Basis, before: list[Finding]) -> list[Finding]:
    video = basis.video
    if video is None or (video.info_a is None and video.info_b is None):
        return []
    fields: dict = {}
    parts: list[str] = []
    for side, info, dropped in (("", video.info_b, video.dropped_b), ("reference_", video.info_a, video.dropped_a)):
        if info is None:
            continue
        c = clock(info)
        problems = _problems(c)
        if dropped:
            problems.append(f"{len(dropped)} frames dropped ({frame_list([k + 1 for k in dropped])})")
        if not side and video.duplicated:
            problems.append(f"{len(video.duplicated)} frames duplicated "
                            f"({frame_list([k + 1 for k in video.duplicated])}: the picture before shown again)")
        who = "the candidate's video" if not side else "the reference's video"
        parts += [f"{who}: {p}" for p in problems]
        c["dropped"] = [k + 1 for k in dropped]
        if not side:
            c["duplicated"] = [k + 1 for k in video.duplicated]
            fields.update(c)
        else:
            fields["reference"] = c
    fields["input_audio_s"] = _input_seconds(video.input_audio)
    if not parts:
        return []
    frames = sorted(set(fields.get("dropped", []) + fields.get("duplicated", [])))
    return [Finding("frame_timing", "; ".join(parts), frames, None, fields)]
