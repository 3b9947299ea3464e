"""Verdicts (`tolerances.evaluate`): a value at a bound passes, one just past it fails, and the failure names
the criterion and the frame (1-based), for every criterion alone and every profile."""
from __future__ import annotations

import math
import re

import pytest

from harness.verdicts.tolerances import PROFILES, Thresholds, evaluate

FRAME = 6  # 0-based index of every worst frame below
STAGES = ("mel", "embeddings", "generator_outputs")
PAST_STAGE = "embeddings"  # the one stage taken past the feature bound
PERFECT = {"identical_pct_min": 100.0, "psnr_min": math.inf, "ssim_min": 1.0, "feature_max_abs": 0.0,
           "fps_min": 25.0}  # the values for criteria left unset
FAILURE = {  # criterion -> its failure line, a pattern of the frame's 1-based number and the bound
    "identical_pct_min": "pixel-identical [0-9.]+ % on frame {frame} < {bound} %",
    "psnr_min": "PSNR [0-9.]+ dB on frame {frame} < {bound} dB",
    "ssim_min": "SSIM [0-9.]+ on frame {frame} < {bound}",
    "feature_max_abs": "stage embeddings: max abs \\S+ > {bound}",
    "fps_min": "[0-9.]+ FPS < {bound} FPS",
}
ALONE = {"identical_pct_min": 99.5, "psnr_min": 40.0, "ssim_min": 0.98, "feature_max_abs": 1e-4, "fps_min": 24.0}
THRESHOLDS = {**{f"only-{name}": Thresholds(**{name: bound}) for name, bound in ALONE.items()},
              **{f"profile-{name}": t for name, t in PROFILES.items()}}
BOUNDS = [(label, name) for label, t in THRESHOLDS.items() for name in t.to_dict()]


def just_past(name: str, bound: float) -> float:
    """The nearest float on the failing side of `bound` (above a max, below a min)."""
    return math.nextafter(bound, math.inf if name == "feature_max_abs" else -math.inf)


def measured(t: Thresholds, past: tuple = ()) -> tuple[dict, dict, float]:
    """(worst, features, fps) exactly at every bound `t` sets (a perfect value where it sets none), the
    criteria in `past` just past theirs (for features: stage PAST_STAGE only)."""
    at = {name: PERFECT[name] if getattr(t, name) is None else getattr(t, name) for name in PERFECT}
    off = {name: just_past(name, at[name]) if name in past else at[name] for name in PERFECT}
    worst = {key: (off[f"{key}_min"], FRAME) for key in ("identical_pct", "psnr", "ssim")}
    features = {stage: {"max_abs": off["feature_max_abs"] if stage == PAST_STAGE else at["feature_max_abs"]}
                for stage in STAGES}
    return worst, features, off["fps_min"]


@pytest.mark.parametrize("label", THRESHOLDS)
def test_values_at_every_bound_pass(label):
    assert evaluate(THRESHOLDS[label], *measured(THRESHOLDS[label])) == []


@pytest.mark.parametrize("label, name", BOUNDS)
def test_just_past_a_bound_fails_naming_the_criterion_and_frame(label, name):
    t = THRESHOLDS[label]
    failures = evaluate(t, *measured(t, past=(name,)))
    assert len(failures) == 1, failures
    pattern = FAILURE[name].format(frame=FRAME + 1, bound=re.escape(f"{getattr(t, name):g}"))
    assert re.fullmatch(pattern, failures[0]), failures


@pytest.mark.parametrize("profile", PROFILES)
def test_a_stage_shape_error_fails_every_profile(profile):
    error = "shape (3, 16) differs from the reference's (3, 32)"
    worst, _, fps = measured(PROFILES[profile])
    features = {"mel": {"max_abs": 0.0}, "audio_windows": {"error": error}}
    assert evaluate(PROFILES[profile], worst, features, fps) == [f"stage audio_windows: {error}"]


def test_failures_come_in_the_documented_order_stages_in_pipeline_order():
    """Frame criteria, then stages (pipeline order, unknown ones after, alphabetically), then FPS."""
    t = Thresholds(**ALONE)
    worst, _, fps = measured(t, past=tuple(ALONE))
    features = {"zz_extra": {"max_abs": 1.0}, "generator_outputs": {"max_abs": 0.5},
                "padded_features": {"max_abs": 0.0}, "embeddings": {"error": "shape (2,) differs"},
                "mel": {"max_abs": 0.25}}
    failures = evaluate(t, worst, features, fps)
    starts = ["pixel-identical ", "PSNR ", "SSIM ", "stage mel: max abs 0.25 ", "stage embeddings: shape ",
              "stage generator_outputs: max abs 0.5 ", "stage zz_extra: max abs 1 ", "[0-9.]+ FPS "]
    assert len(failures) == len(starts) and all(re.match(s, f) for s, f in zip(starts, failures)), failures
