"""Tolerance profiles and verdicts: which criterion a backend failed, in words."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from harness.text.tables import fmt_number, fmt_pct
from reference.stages import in_stage_order


@dataclass(frozen=True)
class Thresholds:
    """Pass criteria; None means not checked. Frame criteria hold for every frame (full frame)."""

    identical_pct_min: float | None = None
    psnr_min: float | None = None
    ssim_min: float | None = None
    feature_max_abs: float | None = None
    fps_min: float | None = None

    @classmethod
    def for_profile(cls, name: str) -> "Thresholds":
        if name not in PROFILES:
            raise ValueError(f"unknown tolerance profile {name!r}; choose one of {', '.join(PROFILES)}")
        return PROFILES[name]

    def override(self, values: dict) -> "Thresholds":
        """A copy with some criteria replaced (ValueError names an unknown one)."""
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown threshold {key!r}; known: profile, {', '.join(sorted(known))}")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"threshold {key} must be a number, got {value!r}")
        return replace(self, **{k: float(v) for k, v in values.items()})

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


PROFILES = {
    "exact": Thresholds(identical_pct_min=100.0, feature_max_abs=0.0),
    "desktop": Thresholds(psnr_min=45.0, feature_max_abs=1e-4),
    "mobile": Thresholds(psnr_min=35.0, feature_max_abs=1e-3),
    "lossy": Thresholds(psnr_min=30.0, feature_max_abs=1e-3),
}


def evaluate(t: Thresholds, worst: dict, features: dict, fps: float | None) -> list[str]:
    """Failed criteria, in words. `worst` holds per-criterion (value, 0-based frame index) of the worst
    frame; frames are named 1-based, like the frame files (frame 12 is frame_00012.png)."""
    failures = []
    if t.identical_pct_min is not None and worst["identical_pct"][0] < t.identical_pct_min:
        value, frame = worst["identical_pct"]
        failures.append(f"pixel-identical {fmt_pct(value)} % on frame {frame + 1} < {t.identical_pct_min:g} %")
    if t.psnr_min is not None and worst["psnr"][0] < t.psnr_min:
        value, frame = worst["psnr"]
        failures.append(f"PSNR {fmt_number(value)} dB on frame {frame + 1} < {t.psnr_min:g} dB")
    if t.ssim_min is not None and worst["ssim"][0] < t.ssim_min:
        value, frame = worst["ssim"]
        failures.append(f"SSIM {value:.5f} on frame {frame + 1} < {t.ssim_min:g}")
    if t.feature_max_abs is not None:
        for stage in in_stage_order(features):  # the first stage out of tolerance is named first
            drift = features[stage]
            if "error" in drift:
                failures.append(f"stage {stage}: {drift['error']}")
            elif drift["max_abs"] > t.feature_max_abs:
                failures.append(f"stage {stage}: max abs {drift['max_abs']:.3g} > {t.feature_max_abs:g}")
    if t.fps_min is not None and fps is not None and fps < t.fps_min:
        failures.append(f"{fps:.2f} FPS < {t.fps_min:g} FPS")
    return failures
