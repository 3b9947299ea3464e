"""Stage dumps of two sides compared: how far apart, how alike in shape, how different in scale.

For every stage both sides dumped (over their common rows): ``rel_error`` = ||b - a|| / ||a||,
``correlation`` (Pearson, over every value), ``scale_ratio`` = RMS(b) / RMS(a). Read as
"unrelated" when the correlation is under `UNRELATED` (another model, random weights, another
audio), "scaled" when they correlate but differ in scale by more than `SCALE` (features too small
or too large), "differs" otherwise, and not reported at all within `CLOSE` relative error.
"""
from __future__ import annotations

import numpy as np

from harness.diagnosis.evidence.record import Finding
from harness.verdicts.metrics import common_rows, feature_drift, pearson
from reference.stages import STAGE_ORDER, in_stage_order

UNRELATED = 0.2
SCALE = 0.1  # |scale_ratio - 1|
CLOSE = 1e-3  # relative error


def compare_stage(a: np.ndarray, b: np.ndarray) -> dict:
    """The measures of the module docstring for one stage's arrays (rows compared: the common ones)."""
    try:
        ra, rb = common_rows(a, b)
    except ValueError:
        return {"error": f"shapes differ: {tuple(np.shape(a))} and {tuple(np.shape(b))}"}
    norm_a = float(np.linalg.norm(ra))
    return {"rows": len(ra), "rel_error": feature_drift(ra, rb)["rel_l2"] if norm_a > 0 else None,
            "correlation": pearson(ra, rb), "scale_ratio": float(np.linalg.norm(rb)) / norm_a if norm_a > 0 else None}


def reading(measures: dict) -> str | None:
    """"unrelated", "scaled", "differs", or None when the stage agrees within CLOSE."""
    rel, corr, scale = measures.get("rel_error"), measures.get("correlation"), measures.get("scale_ratio")
    if rel is not None and rel <= CLOSE:
        return None
    if corr is not None and corr < UNRELATED:
        return "unrelated"
    if scale is not None and abs(scale - 1.0) > SCALE:
        return "scaled"
    return "differs"


def stage_findings(stages_a: dict, stages_b: dict, label_a: str = "A", label_b: str = "B") -> list[Finding]:
    """One `stage` finding per stage of the pipeline both dumped that does not agree (pipeline order)."""
    out = []
    for stage in in_stage_order(stages_a.keys() & stages_b.keys() & set(STAGE_ORDER)):
        measures = compare_stage(stages_a[stage], stages_b[stage])
        if "error" in measures:
            out.append(Finding("stage", f"stage {stage}: {measures['error']}", [], None,
                               {"stage": stage, "reading": "mismatch"}))
            continue
        read = reading(measures)
        if read is None:
            continue
        scale = measures["scale_ratio"]
        summary = (f"stage {stage} {read}: {label_b}'s values are {scale:.3f}x {label_a}'s in RMS, correlation "
                   f"{measures['correlation']:.3f}, relative error {measures['rel_error']:.3g} over "
                   f"{measures['rows']} rows")
        frames = list(range(1, measures["rows"] + 1)) if stage in ("padded_features", "audio_windows",
                                                                   "generator_outputs") else []
        out.append(Finding("stage", summary, frames, None, {"stage": stage, "reading": read, **measures}))
    return out
