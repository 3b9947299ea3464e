"""Stage localisation: the first pipeline stage where a backend leaves tolerance.

The stages, in pipeline order, are those the reference and the in-process backends always dump
(and subprocess ports when they write them): mel -> encoder embeddings -> padded features ->
per-frame audio windows -> generator output -> composited frame. A stage a backend did not dump
is reported as unseen, not as agreeing.
"""
from __future__ import annotations

from reference.stages import STAGES

FEATURE_STAGES = tuple(STAGES)
AFTER_GENERATOR = "compositing (crop, paste, resize, quantisation, output encoding)"


def _row(stage: str, drift: dict | None, tolerance: float) -> dict:
    if drift is None:
        return {"stage": stage, "seen": False}
    if "error" in drift:
        return {"stage": stage, "seen": True, "within": False, "error": drift["error"]}
    return {"stage": stage, "seen": True, "within": drift["max_abs"] <= tolerance, "max_abs": drift["max_abs"],
            "rel_l2": drift["rel_l2"]}


def _describe(row: dict, tolerance: float) -> str:
    if "error" in row:
        return f"{row['stage']} ({row['error']})"
    sign = "<=" if row["within"] else ">"
    return f"{row['stage']} (max abs {row['max_abs']:.3g} {sign} {tolerance:g})"


def localise_stage(features: dict, frame_failures: list[str], tolerance: float) -> dict:
    """The first of FEATURE_STAGES (then "frames") out of ``tolerance``.

    ``features`` is per-stage drift (``parity.feature_drift``); ``frame_failures`` the failed frame
    criteria. Returns {"first_stage" (None when everything agrees), "stages" (a row per stage),
    "text"}.
    """
    rows = [_row(stage, features.get(stage), tolerance) for stage in FEATURE_STAGES]
    rows.append({"stage": "frames", "seen": True, "within": not frame_failures, "failures": frame_failures})
    first = next((r for r in rows if r["seen"] and not r["within"]), None)
    seen_before = [r for r in rows[:rows.index(first)] if r["seen"]] if first else []
    unseen = [r["stage"] for r in rows if not r["seen"]]
    if first is None:
        text = "every compared stage agrees within tolerance"
    elif first["stage"] == "frames":
        text = f"the frames diverge ({frame_failures[0]})"
        if seen_before and seen_before[-1]["stage"] == "generator_outputs":
            text += f" although the generator output agrees: look at {AFTER_GENERATOR}"
        elif not seen_before:
            text += "; the backend dumped no stages, so where it parts ways is not seen"
    else:
        text = f"first stage out of tolerance: {_describe(first, tolerance)}"
    if first is not None and seen_before:
        text += "; the stages before it agree: " + ", ".join(_describe(r, tolerance) for r in seen_before)
    if unseen and first is not None:
        text += f" (not dumped: {', '.join(unseen)})"
    return {"first_stage": first["stage"] if first else None, "stages": rows, "text": text}
