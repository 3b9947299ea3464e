"""What every finding maker is given (`Basis`), the registry of makers by kind (`MAKERS`, `maker`), and
the order in which they run and findings rank (`ORDER`).

A maker takes the basis and the findings of the kinds before it in `ORDER` (``precision_noise`` looks
at the colour, kernel and paste findings, ``av_offset`` at ``audio_drive``, ``residual`` at them all)
and returns its findings. Makers live beside what they measure (`findings` for the image kinds,
`timing`, `av_sync` and `video_codec` for the video kinds) and register themselves with `maker`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.diagnosis.evidence.collect import Evidence
from harness.diagnosis.evidence.record import Finding
from harness.diagnosis.evidence.travel import VideoEvidence
from harness.system.registry import Registry

ORDER = ("missing_frames", "template_sequence", "paste_position", "colour", "resize_kernel", "jpeg", "audio_drive",
         "precision_noise", "av_offset", "frame_timing", "video_codec", "stage", "residual")


@dataclass(frozen=True)
class Basis:
    """What the findings are made from: the observations (None without a pack) and their total squared
    error, the frames missing from or extra in the candidate (0-based) of the `expected`, both sides' stage
    dumps (None when a side has none), and what video sides add (None for folders)."""

    ev: Evidence | None
    total: float
    missing: list[int]
    extra: list[int]
    expected: int
    stages_a: dict | None
    stages_b: dict | None
    video: VideoEvidence | None = None


Maker = Callable[[Basis, list[Finding]], list[Finding]]  # (basis, the findings of the kinds before) -> found
MAKERS = Registry("finding kind {name!r} is registered twice (by {first} and {second}): give the second maker "
                  "another kind")  # kind -> its maker
maker = MAKERS.registers


def has_observations(basis: Basis) -> bool:
    return basis.ev is not None and bool(basis.ev.obs)


def observed(make: Callable[[Evidence, float], Finding | None]) -> Maker:
    """A maker from the pairs' observations alone: nothing without observations, else its finding (or None)."""
    def from_basis(basis: Basis, before: list[Finding]) -> list[Finding]:
        if not has_observations(basis):
            return []
        found = make(basis.ev, basis.total)
        return [] if found is None else [found]
    from_basis.__name__ = make.__name__
    return from_basis
