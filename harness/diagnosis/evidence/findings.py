"""Findings from the observations of `collect.Evidence`: one `Finding` per kind that shows, ranked.

Every finding has ``kind``, ``summary`` (one sentence with its numbers), ``frames`` (the frame
numbers it was seen on, 1-based as in ``frame_00001``) and ``explains_db``: how much the PSNR over
every compared pair rises when the finding's model replaces the reference on the frames it covers
(the reference's patch on the candidate's templates, at the candidate's place, through its colour
map, kernel or codec), or when the squared error it accounts for is removed (the mouth for
``audio_drive``, the patch for ``precision_noise``); inf when nothing is left, None for
``missing_frames`` and ``stage``, which are not pixel models. Each kind's maker is registered with
`basis.maker` and runs in `basis.ORDER` (the video kinds' makers live in `timing`, `av_sync` and
`video_codec`). Findings are ranked like the bill: missing frames first, then by ``explains_db``,
stage dumps, then the residual's account last.
"""
from __future__ import annotations

import math

from harness.diagnosis.evidence import av_sync, timing, video_codec  # noqa: F401 - they register the video kinds
from harness.diagnosis.evidence.basis import MAKERS, ORDER, Basis, has_observations, maker, observed
from harness.diagnosis.evidence.collect import Evidence
from harness.diagnosis.evidence.colour import fit as fit_colour
from harness.diagnosis.evidence.dumps import stage_findings
from harness.diagnosis.evidence.mouth import READINGS, audio_drive
from harness.diagnosis.evidence.paste import Placement, paste_position
from harness.diagnosis.evidence.pixels import gain_db
from harness.diagnosis.evidence.record import Finding, db_text
from harness.diagnosis.evidence.residual import account
from harness.diagnosis.evidence.resize import CG_QUALITIES
from harness.diagnosis.evidence.templates import template_sequence
from harness.diagnosis.evidence.travel import VideoEvidence
from harness.text.tables import frame_list

MIN_DB = 0.5  # a colour, kernel or noise model must explain at least this much to be named
MIN_TEMPLATE_DB = 0.1
MIN_PASTE_DB = 0.1  # a displaced patch explains 12-14 dB on the synthetic cases; heavy codec noise, 0.0
OTHER_ENCODER_PCT = 10.0  # share of the background's squared error a round trip may leave from the same encoder


def _numbers(indices) -> list[int]:
    return [i + 1 for i in sorted(indices)]


def _model_gain(ev: Evidence, attr: str) -> float:
    """Squared error removed by one per-frame model over the frames that have it."""
    return sum(o.sse - getattr(o, attr) for o in ev.obs.values() if getattr(o, attr) is not None)


@maker("missing_frames")
def _missing(basis: Basis, before: list[Finding]) -> list[Finding]:
    missing, extra, expected = basis.missing, basis.extra, basis.expected
    if not missing and not extra:
        return []
    parts = []
    if missing:
        parts.append(f"{len(missing)} of {expected} frames missing from the candidate ({frame_list(_numbers(missing))})")
    if extra:
        parts.append(f"{len(extra)} extra frames in the candidate ({frame_list(_numbers(extra))})")
    return [Finding("missing_frames", "; ".join(parts), _numbers(missing + extra), None,
                    {"missing": len(missing), "extra": len(extra)})]


@maker("template_sequence")
@observed
def _template(ev: Evidence, total: float) -> Finding | None:
    seq_a = {o.i: o.t_a for o in ev.obs.values()}
    seq_b = {o.i: o.t_b for o in ev.obs.values()}
    found = template_sequence(seq_a, seq_b, ev.index.n, ev.index.twins)
    if found is None:
        return None
    removed = _model_gain(ev, "template_sse")
    if gain_db(total, removed) < MIN_TEMPLATE_DB:  # images the frames cannot tell apart
        return None
    parts = [f"composited on other pack images than the reference on {len(found['differ'])} of "
             f"{found['frames_compared']} frames"]
    if found["offset"]:
        parts.append(f"offset {found['offset']:+d} on {found['offset_frames']} frames (its frame i sits on the "
                     f"image {'after' if found['offset'] > 0 else 'before'} the reference's)")
    parts.append(f"loop {found['loop_b']['order']} (reference: {found['loop_a']['order']})")
    if found["repeats"]:
        parts.append(f"repeats at frames {frame_list(_numbers(found['repeats']))}")
    if found["drops"]:
        parts.append(f"drops at frames {frame_list(_numbers(found['drops']))}")
    if found["unmatched"]:
        parts.append(f"{len(found['unmatched'])} frames match no pack image")
    return Finding("template_sequence", "; ".join(parts), _numbers(found["differ"]), gain_db(total, removed),
                   {"offset": found["offset"], "loop": found["loop_b"]["order"],
                    "loop_reference": found["loop_a"]["order"], "repeats": _numbers(found["repeats"]),
                    "drops": _numbers(found["drops"]),
                    "templates": {str(i + 1): t for i, t in sorted(seq_b.items())},
                    "templates_reference": {str(i + 1): t for i, t in sorted(seq_a.items())}})


PATTERNS = {"shift": "a constant offset", "crop_border": "the 320 patch at another offset inside its 328 crop",
            "y_flipped": "pasted with a bottom-left origin (y = H - y2)", "x_flipped": "mirrored in x (x = W - x2)",
            "neighbour_rect": "on another image's face rect", "scaled": "resized to another size",
            "irregular": "no single pattern"}


@maker("paste_position")
@observed
def _paste(ev: Evidence, total: float) -> Finding | None:
    placements = [Placement(o.i, o.box_a, ev.index.rects[o.t_a], o.box_b, ev.index.rects[o.t_b], o.moved)
                  for o in sorted(ev.obs.values(), key=lambda o: o.i) if o.box_a and o.box_b]
    found = paste_position(placements, ev.shape[:2], ev.index.rects, {o.i: o.t_b for o in ev.obs.values()})
    if found is None:
        return None
    removed = _model_gain(ev, "paste_sse")
    if gain_db(total, removed) < MIN_PASTE_DB:  # boxes moved by codec noise: the patch moved there explains nothing
        return None
    pattern = found["pattern"]
    detail = {"crop_border": lambda: f", at ({found['crop_offset'][0]}, {found['crop_offset'][1]}) in the crop "
                                      "instead of (4, 4)",
              "neighbour_rect": lambda: f", {found['neighbour']:+d} images away"}.get(pattern, lambda: "")()
    dys = [p["dy"] for p in found["per_frame"]]
    summary = (f"the generated patch sits elsewhere on {len(found['frames'])} of {len(placements)} frames: "
               f"{pattern}, {PATTERNS[pattern]}{detail}; dx {found['dx']:+.1f} px, dy {found['dy']:+.1f} px"
               + (f" (from {min(dys):+.0f} to {max(dys):+.0f})" if max(dys) - min(dys) > 2 else "")
               + f", scale {found['scale']:.3f}; {_fit(found)}; against the canonical rect, the reference's patch sits at "
               + _at(found["reference_vs_rect"]) + ", the candidate's at " + _at(found["candidate_vs_rect"]))
    frames = _numbers(found.pop("frames"))
    found["per_frame"] = [{**p, "frame": p.pop("i") + 1} for p in found["per_frame"]]
    return Finding("paste_position", summary, frames, gain_db(total, removed), found)


def _fit(found: dict) -> str:
    """The pattern's fit error against the runner-up's."""
    text = f"its boxes fit within {found['model_error_px']:.1f} px"
    if found["runner_up"] is None:
        return text
    text += f", the runner-up {found['runner_up']} within {found['runner_up_error_px']:.1f} px"
    return text + ("" if found["clear"] else " (not clearly apart: more frames, or frames where the rects move more, "
                                              "would tell)")


def _at(where: dict) -> str:
    return f"({where['dx']:+.0f}, {where['dy']:+.0f}) x{where['scale']:.3f}"


def _fitted(kind: str, summary: str, found: dict) -> Finding:
    """A finding from a fit's fields (its ``frames`` 0-based, its ``explains_db``, the kind's own fields)."""
    details = {k: v for k, v in found.items() if k not in ("frames", "explains_db")}
    return Finding(kind, summary, _numbers(found["frames"]), found["explains_db"], details)


@maker("colour")
@observed
def _colour(ev: Evidence, total: float) -> Finding | None:
    found = fit_colour(ev.colour, total)
    if found is None or found["explains_db"] < MIN_DB:
        return None
    model = found["model"]
    what = {"channel_swap": lambda: f"channels swapped ({', '.join(found['moved'])})",
            "range": lambda: f"range changed (gain {found['gain']:.3f}, offset {found['offset']:+.1f})",
            "gamma": lambda: f"gamma {found['gamma']:.2f}",
            "tint": lambda: "tint (gain B/G/R " + "/".join(f"{g:.3f}" for g in found["gain"]) + ", offset "
                            + "/".join(f"{o:+.1f}" for o in found["offset"]) + ")"}[model]()
    return _fitted("colour", f"inside the patch the candidate's colours are the reference's with {what}", found)


@maker("resize_kernel")
@observed
def _resize(ev: Evidence, total: float) -> Finding | None:
    comparable = sum(o.comparable for o in ev.obs.values())
    found = ev.resize.fit(total, comparable / max(len(ev.resize.frames), 1))
    if found is None or found["explains_db"] < MIN_DB:
        return None
    hf = found["hf_ratio"]
    tell = "" if hf is None else f"; high-frequency energy in the patch {hf:.2f}x the reference's"
    apple = f" ({CG_QUALITIES[found['kernel']]})" if found["kernel"] in CG_QUALITIES else ""
    return _fitted("resize_kernel", f"the paste resizes with {found['kernel']}{apple}, not cv2_cubic{tell}", found)


@maker("jpeg")
@observed
def _jpeg(ev: Evidence, total: float) -> Finding | None:
    """Each side's settings, what re-encoding the reference at the candidate's explains, and whether the JPEG
    side's background is what OpenCV's libjpeg makes of its template at those settings (else: another
    encoder or decoder)."""
    a, b = ev.codec_a, ev.codec_b
    if a is None or b is None or (not a.jpeg and not b.jpeg):
        return None
    fields = {"quality_a": a.quality if a.jpeg else "lossless", "quality_b": b.quality if b.jpeg else "lossless",
              "subsampling_a": a.subsampling, "subsampling_b": b.subsampling, "codec_a": a.to_dict(),
              "codec_b": b.to_dict()}
    for key, side in (("quality_a", a), ("quality_b", b)):
        if side.jpeg and not side.ijg:
            fields[key] = f"non-IJG tables (about q{side.estimate})"
    sampled = [o for o in ev.obs.values() if o.background_sse is not None]
    before = sum(o.background_sse for o in sampled)
    left = sum(o.background_codec_sse for o in sampled)
    same = a.same(b)
    fields["background_left_pct"] = 100.0 * left / before if before > 0 else 0.0
    fields["other_encoder"] = other = before > 0 and fields["background_left_pct"] >= OTHER_ENCODER_PCT
    if same:
        if not other:
            return None
        explains = gain_db(total, len(ev.obs) / len(sampled) * before)  # the sampled frames stand for all
        summary = (f"both sides are {a.describe()}, but outside the face, where each frame is the same template, "
                   "they differ: another JPEG encoder or decoder")
    else:
        coded = [o for o in ev.obs.values() if o.codec_sse is not None]
        explains = gain_db(total, len(ev.obs) / max(len(coded), 1) * sum(o.sse - o.codec_sse for o in coded))
        summary = (f"the reference is {a.describe()}, the candidate {b.describe()}; re-encoding at the "
                   f"candidate's settings explains {db_text(explains)}")
        if before > 0:
            summary += (f"; outside the face the JPEG side is {'not ' if other else ''}what libjpeg makes of its "
                        f"template at those settings ({fields['background_left_pct']:.0f} % of the difference left)"
                        + (": another JPEG encoder or decoder" if other else ""))
    return Finding("jpeg", summary, _numbers(o.i for o in sampled), explains, fields)


@maker("audio_drive")
@observed
def _audio(ev: Evidence, total: float) -> Finding | None:
    found = audio_drive(ev.motion_a, ev.motion_b)
    if found is None or found["reading"] is None:
        return None
    removed = sum(o.mouth_sse or 0.0 for o in ev.obs.values() if o.comparable)
    read = found["reading"]
    lag = f", best at lag {found['lag']:+d} frames" if found["lag"] else ""
    interval = lambda key: "[{:.2f}, {:.2f}]".format(*found[key])  # noqa: E731
    summary = (f"audio drive, {read}: {READINGS[read]}; over {len(found['frames'])} frames the candidate's mouth "
               f"moves {found['gain']:.2f}x along the reference's motion (95 % {interval('gain_interval')}; a faithful "
               f"port {found['faithful_gain'][0]:g}-{found['faithful_gain'][1]:g}), amplitude "
               f"{found['amplitude_ratio']:.2f}x {interval('amplitude_interval')}, correlation "
               f"{found['correlation']:.2f} {interval('correlation_interval')}{lag}")
    if read == "inconclusive":
        summary += f"; about {found['frames_to_settle']} frames would settle its {found['undecided']}"
    return Finding("audio_drive", summary, _numbers(found["frames"]), gain_db(total, removed),
                   {k: v for k, v in found.items() if k != "frames"})


@maker("precision_noise")
def _noise(basis: Basis, before: list[Finding]) -> list[Finding]:
    """Only when no colour, kernel or paste finding already accounts for the patch."""
    if not has_observations(basis) or any(f.kind in ("colour", "resize_kernel", "paste_position") for f in before):
        return []
    found = basis.ev.noise.fit(basis.total)
    if found is None or found["explains_db"] < MIN_DB:
        return []
    return [_fitted("precision_noise",
                    f"a small, unstructured residual inside the patch only (mean abs {found['mean_abs']:.3f}, "
                    f"max {found['max_abs']}, lag-1 autocorrelation {found['autocorrelation']:.2f}): consistent "
                    "with reduced-precision compute (fp16) of the generator", found)]




@maker("stage")
def _stages(basis: Basis, before: list[Finding]) -> list[Finding]:
    if not basis.stages_a or not basis.stages_b:
        return []
    return stage_findings(basis.stages_a, basis.stages_b, "the reference", "the candidate")


@maker("residual")
def _residual(basis: Basis, before: list[Finding]) -> list[Finding]:
    """The account of what the findings before leave (residual.py)."""
    found = account(basis.ev, basis.total, before)
    return [] if found is None else [found]


def rank(found: list[Finding]) -> list[Finding]:
    """Missing frames first, then by explains_db (largest first), stage dumps, then the residual's account."""
    order = {"stage": 1, "residual": 2}

    def key(f: Finding):
        db = f.explains_db
        return (f.kind != "missing_frames", order.get(f.kind, 0), -(db if db is not None else -math.inf))
    return sorted(found, key=key)


def findings(ev: Evidence | None, missing: list[int] = (), extra: list[int] = (), expected: int | None = None,
             stages_a: dict | None = None, stages_b: dict | None = None,
             video: VideoEvidence | None = None) -> list[Finding]:
    """Every finding the observations (the stage dumps of both sides, the video sides) support, ranked."""
    total = sum(o.sse for o in ev.obs.values()) if ev is not None else 0.0
    basis = Basis(ev, total, list(missing), list(extra), expected or 0, stages_a, stages_b, video)
    out: list[Finding] = []
    for kind in ORDER:
        out.extend(MAKERS[kind](basis, out))
    return rank(out)


def finding_lines(stored: list[dict]) -> list[str]:
    """One line per finding of a run record (results.json), as the console prints them."""
    return [Finding.from_dict(f).line() for f in stored]

