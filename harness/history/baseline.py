"""A run's baseline on a branch of the history store, as `gate --against branch:NAME` takes it.

The baseline is the runs of the branch's latest commit (by start time) with the run's machine
fingerprint, mode, backend and audio: all of them, so that repeats are judged as repeats. The
run-to-run noise of speed comes from the branch's latest quiet runs of the same (`stats.run_noise`).
The history page asks the same question of every run it draws, as of the time the run started.
"""
from __future__ import annotations

from pathlib import Path

from harness.history.gate import GateSettings, quiet_median
from harness.history.snapshot import Snapshot
from harness.history.stats import NOISE_RUNS, run_noise
from harness.history.store import on_branch


def branch_baseline(store: Path, branch: str | None, snap: Snapshot, settings: GateSettings,
                    started_before: str | None = None) -> tuple[list[Snapshot], tuple[float | None, int]]:
    """The runs of `branch`'s latest commit that `snap` is compared with (only those started before
    `started_before`, when given; [] when there is none), and the run-to-run noise of the branch's quiet
    runs of it with how many runs it comes from."""
    runs = on_branch(store, branch, snap, started_before)
    if not runs:
        return [], (None, 0)
    medians = [m for m in (quiet_median(r, settings) for r in runs) if m is not None][-NOISE_RUNS[1]:]
    return [r for r in runs if r.commit.sha == runs[-1].commit.sha], (run_noise(medians), len(medians))
