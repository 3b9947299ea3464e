"""Checking a golden on this machine: the reference run again on the golden's stored inputs, judged
with a tolerance profile, and what differs from the recording (library versions, CPU, the first
stage out of tolerance and by how much).

The profile is `exact` where the library versions and the CPU fingerprint are the ones the golden
recorded (the same code must then give the same bits), and the given profile otherwise. The frame
criteria are taken over the face rects the golden stores (outside them a frame is its template).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.text.tables import fmt_number, fmt_pct
from harness.verdicts.metrics import feature_drift, pixel_stats, psnr, ssim
from harness.verdicts.tolerances import Thresholds, evaluate
from reference.golden import FEATURES, rerun_golden
from reference.models import ModelFiles
from reference.provenance import cpu_fingerprint, library_versions


@dataclass
class GoldenCheck:
    """The verdict on a golden and what differs from its recording."""

    golden: Path
    profile: str
    why_profile: str
    library_changes: list[tuple[str, str, str]]  # (name, recorded, installed)
    cpu_changes: list[str]
    stage_max_abs: dict[str, float]
    worst: dict[str, tuple[float, int]]  # identical_pct, psnr, ssim: (value, 0-based frame) of the worst frame
    failures: list[str] = field(default_factory=list)  # under `profile`, in pipeline order
    exact_failures: list[str] = field(default_factory=list)  # under `exact`: what changed at all

    @property
    def ok(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        """The check in words: verdict and profile, what changed on the machine, every stage's
        difference, and the first stage out of tolerance (or of `exact`, when it passed)."""
        verdict = "PASSED" if self.ok else "FAILED"
        out = [f"golden {self.golden}: {verdict} under profile {self.profile} ({self.why_profile})"]
        if self.library_changes:
            out.append("  libraries changed since the recording: " + ", ".join(in_words(self.library_changes)))
        if self.cpu_changes:
            out.append("  CPU changed since the recording: " + "; ".join(self.cpu_changes))
        drift = ", ".join(f"{name} {value:.3g}" for name, value in self.stage_max_abs.items())
        ident, frame_i = self.worst["identical_pct"]
        low, frame_p = self.worst["psnr"]
        out.append(f"  stages, max abs: {drift}; frames (face rects): worst identical {fmt_pct(ident)} % "
                   f"(frame {frame_i + 1}), worst PSNR {fmt_number(low)} dB "
                   f"(frame {frame_p + 1}), worst SSIM {self.worst['ssim'][0]:.5f}")
        if self.failures:
            out.append(f"  first out of tolerance: {self.failures[0]}")
            out += [f"  also: {failure}" for failure in self.failures[1:]]
        elif self.exact_failures and self.profile != "exact":
            out.append(f"  within tolerance; first to differ from the recording: {self.exact_failures[0]}")
        return out


def library_changes(recorded: dict[str, str], installed: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, recorded, installed) of each recorded library whose installed version differs."""
    return [(name, was, installed.get(name, "absent")) for name, was in recorded.items()
            if installed.get(name, "absent") != was]


def in_words(changes: list[tuple[str, str, str]]) -> list[str]:
    """`library_changes` as "name recorded -> installed"."""
    return [f"{name} {was} -> {now}" for name, was, now in changes]


def cpu_changes(recorded: dict | None, now: dict) -> list[str]:
    """What differs between a recorded CPU fingerprint and this one, in words."""
    if recorded is None:
        return ["not recorded (a version-1 golden)"]
    out = [f"{key} {recorded.get(key)} -> {now[key]}" for key in ("arch", "model") if recorded.get(key) != now[key]]
    gained = sorted(set(now["isa"]) - set(recorded.get("isa", [])))
    lost = sorted(set(recorded.get("isa", [])) - set(now["isa"]))
    if gained or lost:
        out.append("instruction sets " + " ".join([f"+{f}" for f in gained] + [f"-{f}" for f in lost]))
    return out


def _ordered_failures(thresholds: Thresholds, worst: dict, features: dict) -> list[str]:
    """`evaluate`'s failures in pipeline order: the stages (mel first) before the frames."""
    failures = evaluate(thresholds, worst, features, None)
    stages = [f for f in failures if f.startswith("stage ")]
    return stages + [f"frames: {f}" for f in failures if not f.startswith("stage ")]


def check_golden(golden: str | Path, models: ModelFiles | None = None, profile: str = "desktop",
                 threads: int = 1) -> GoldenCheck:
    """Run the reference on a golden's stored inputs and judge it: `exact` when the libraries and CPU
    are the recorded ones, `profile` otherwise. InputError for a golden that stores no inputs, or
    when its models are neither stored nor given (`models`) with the recorded hashes."""
    golden = Path(golden)
    rerun = rerun_golden(golden, models, threads)
    libs = library_changes(rerun.manifest["libraries"], library_versions())
    cpu = cpu_changes(rerun.manifest.get("cpu"), cpu_fingerprint())
    if libs or cpu:
        why = {(True, False): "libraries differ", (False, True): "CPU differs",
               (True, True): "libraries and CPU differ"}[bool(libs), bool(cpu)] + " from the recording"
    else:
        profile, why = "exact", "same library versions and CPU as the recording"
    features = {name: {"max_abs": feature_drift(was, now)["max_abs"] if now.shape == was.shape else math.inf}
                for name, (was, now) in rerun.stages.items()}
    worst = {"identical_pct": (math.inf, -1), "psnr": (math.inf, -1), "ssim": (math.inf, -1)}
    for i, (was, now) in enumerate(rerun.frames):
        if was.shape != now.shape:
            values = {"identical_pct": 0.0, "psnr": -math.inf, "ssim": -math.inf}
        else:
            values = {"identical_pct": pixel_stats(was, now)["identical_pct"], "psnr": psnr(was, now),
                      "ssim": ssim(was, now, channel_axis=2)}
        for key, value in values.items():
            if worst[key][1] < 0 or value < worst[key][0]:
                worst[key] = (value, i)
    return GoldenCheck(golden, profile, why, libs, cpu, {name: features[name]["max_abs"] for name in FEATURES}, worst,
                       _ordered_failures(Thresholds.for_profile(profile), worst, features),
                       _ordered_failures(Thresholds.for_profile("exact"), worst, features))
