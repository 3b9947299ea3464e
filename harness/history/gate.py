"""The gate: a run against its baseline, like with like, each regression and improvement named.

Runs are paired by mode (parity or bench), backend and audio (its sha256); a pair is compared only
when both ran on alike machines (one fingerprint), with the same backend kind and options and the
same inputs (models, pack, frame count); otherwise the gate says why it cannot compare them.

Checks of each pair, every one a *comparison*:

- **verdict**: passed < failed < skipped < error; a worse status is a regression, a better one an
  improvement;
- **worst PSNR** (full frame) fell, or rose, by more than `psnr_drop_db`;
- **identical %** (full frame, mean over the frames) fell, or rose, by more than `identical_drop_pct`;
- **feature drift**, per stage both dump: within the run's tolerance (``feature_max_abs``) before
  and past it after (or a stage that no longer matches the reference's shape);
- **bill of deviations**: a deviation gained or changed (``knob=value``) is a regression, one lost
  an improvement (a run that passed has an empty bill);
- **speed**, `harness.history.stats` (Mann-Whitney U, p < alpha, and a Hodges-Lehmann change of the
  median of at least `min_effect`), only on runs during which other processes used at most
  `max_background` of the machine's CPU (``timings.background_cpu``): with REPEATS such runs a side,
  on their median latencies (the run-to-run noise is in the data); with one run a side, on their
  per-frame latencies, and then only past the run-to-run noise of the backend on that machine, when
  it is known (the baseline branch's quiet runs, or ``noise``): unknown, the change is a note, not
  a finding. One run of a shared machine can be 27 % slower than the next (docs/metrics.md).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from harness.history.snapshot import Snapshot, machine_differences
from harness.history.stats import (
    ALPHA,
    MIN_EFFECT,
    MIN_FRAMES,
    NOISE_RUNS,
    REPEATS,
    runs_change,
    signed_pct,
    speed_change,
)
from harness.text.tables import fmt_number, fmt_pct

STATUS_RANK = {"passed": 0, "failed": 1, "skipped": 2, "error": 3}
RAN = ("passed", "failed")


@dataclass(frozen=True)
class GateSettings:
    """The gate's thresholds; the defaults are those of `synctalk-parity gate`."""

    alpha: float = ALPHA
    min_effect: float = MIN_EFFECT
    psnr_drop_db: float = 0.5
    identical_drop_pct: float = 0.0
    max_background: float = 0.10  # speed is compared only when other processes used at most this share of the CPU
    noise: float | None = None  # the run-to-run noise of speed, when known better than from the baseline's history


@dataclass(frozen=True)
class Change:
    """One outcome of the gate's comparisons of one run: a regression or an improvement (what changed, before
    and after, and why it counts), or a note: a comparison left out, or a change that does not count, said
    in `detail`, with its `reason`: "baseline only", "no diagnosis", "left out" (runs left out of the
    repeats), "few repeats", "few frames", "not gated", "noise unknown", "load unknown" or "busy"."""

    kind: str  # "regression", "improvement" or "note"
    backend: str
    audio: str
    check: str
    before: str = ""
    after: str = ""
    detail: str = ""
    caveat: str = ""  # what makes the change less certain than its test says
    reason: str = ""  # a note's

    @property
    def regression(self) -> bool:
        return self.kind == "regression"

    def text(self) -> str:
        """The line of the gate's message (a note's without its ``note:``)."""
        if self.kind == "note":
            return f"{self.backend} / {self.audio}: {self.detail}" if self.backend else self.detail
        word = "REGRESSION" if self.regression else "improvement"
        tail = "; ".join(t for t in (self.detail, self.caveat) if t)
        return f"{word}: {self.backend} / {self.audio}: {self.check}: {self.before} -> {self.after}" + \
            (f" ({tail})" if tail else "")


@dataclass
class GateResult:
    """Every change found (regressions and improvements), how many comparisons were made, the runs that
    could not be compared (and why), the notes."""

    changes: list[Change] = field(default_factory=list)
    comparisons: int = 0
    pairs: int = 0
    not_compared: list[str] = field(default_factory=list)
    notes: list[Change] = field(default_factory=list)
    noise: dict = field(default_factory=dict)  # pair_key -> (run-to-run noise, runs it comes from)

    @property
    def regressions(self) -> list[Change]:
        return [f for f in self.changes if f.regression]

    @property
    def improvements(self) -> list[Change]:
        return [f for f in self.changes if not f.regression]

    @property
    def exit_code(self) -> int:
        """1 on a regression, 2 when nothing could be compared, else 0."""
        if self.regressions:
            return 1
        return 2 if self.pairs == 0 else 0

    def unchanged(self) -> int:
        return self.comparisons - len(self.changes)

    def note_lines(self) -> list[str]:
        """The notes' lines, in the order they were made."""
        return [note.text() for note in self.notes]

    def note(self, reason: str, detail: str, snap: Snapshot | None = None, check: str = "", before: str = "",
             after: str = "") -> None:
        """Add a note of `snap`'s comparison (None: of the whole gate)."""
        self.notes.append(Change("note", snap.backend if snap else "", snap.audio if snap else "", check, before,
                                 after, detail, reason=reason))

    def text(self, baseline: str) -> str:
        """The message of a pull request: one line per regression, then the improvements, then the rest."""
        head = (f"gate against {baseline}: {len(self.regressions)} regression(s), {len(self.improvements)} "
                f"improvement(s) in {self.pairs} run(s)")
        if self.pairs == 0:
            head = f"gate against {baseline}: nothing to compare"
        lines = [head] + [f.text() for f in self.regressions] + [f.text() for f in self.improvements]
        if self.pairs:
            lines.append(f"{self.unchanged()} comparisons, no change")
        lines += [f"not compared: {why}" for why in self.not_compared] + [f"note: {text}" for text in self.note_lines()]
        return "\n".join(lines)

    def markdown(self, baseline: str) -> str:
        """The same as a markdown table, for a CI job summary."""
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = [f"### Gate against {cell(baseline)}", ""]
        if self.changes:
            lines += ["| | backend | audio | check | before | after | detail |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {'regression' if f.regression else 'improvement'} | {cell(f.backend)} | {cell(f.audio)} | "
                      f"{cell(f.check)} | {cell(f.before)} | {cell(f.after)} | {cell(f.detail)} |"
                      for f in self.regressions + self.improvements]
            lines.append("")
        lines.append(f"{self.unchanged()} comparisons, no change" if self.pairs else "Nothing to compare.")
        lines += [""] + [f"- not compared: {cell(why)}" for why in self.not_compared] if self.not_compared else []
        lines += [""] + [f"- note: {cell(text)}" for text in self.note_lines()] if self.notes else []
        return "\n".join(lines) + "\n"


def pair_key(snap: Snapshot) -> tuple:
    """Runs compared with each other share this: mode, backend and audio (by content when known)."""
    return snap.mode, snap.backend, snap.audio_sha256 or snap.audio


def why_not_comparable(before: Snapshot, after: Snapshot) -> str | None:
    """Why two runs of one backend and audio cannot be compared (None: they can)."""
    if before.fingerprint != after.fingerprint:
        changes = machine_differences(before.machine_parts or {}, after.machine_parts or {})
        return (f"other machine ({before.machine} -> {after.machine}, fingerprint "
                f"{before.fingerprint} -> {after.fingerprint}: {'; '.join(changes) or 'unknown parts'})")
    if before.kind != after.kind:
        return f"backend kind {before.kind} -> {after.kind}"
    if before.options != after.options:
        return f"backend options differ: {before.options} -> {after.options}"
    if before.inputs_sha256 != after.inputs_sha256:
        return "other inputs (models, pack or frame count)"
    return None


def _where(snap: Snapshot) -> str:
    return f"{snap.backend} / {snap.audio}"


def _by_pair(snaps: list[Snapshot]) -> dict[tuple, list[Snapshot]]:
    """Runs grouped by `pair_key`, each group oldest first (several runs of one backend: repeats)."""
    out: dict[tuple, list[Snapshot]] = {}
    for snap in snaps:
        out.setdefault(pair_key(snap), []).append(snap)
    return {key: sorted(runs, key=lambda r: str(r.created or "")) for key, runs in out.items()}


def compare(before: list[Snapshot], after: list[Snapshot], settings: GateSettings = GateSettings(),
            missing: dict | None = None, noise: dict | None = None) -> GateResult:
    """Every run of `after` against the run of `before` with its `pair_key` (snapshots, `harness.history.snapshot`);
    several runs of one key on a side are repeats: parity is judged on the latest of each side, speed on
    all of them. `missing` says, by `pair_key`, why a run has no baseline; `noise` gives, by `pair_key`, the
    run-to-run noise of speed and how many runs it comes from (`stats.run_noise` of the baseline's branch)."""
    result = GateResult()
    result.noise = noise or {}
    baseline = _by_pair(before)
    for key, runs in _by_pair(after).items():
        base_runs = baseline.pop(key, None)
        if base_runs is None:
            result.not_compared.append(f"{_where(runs[-1])}: {(missing or {}).get(key, 'no baseline run of it')}")
            continue
        why = next((w for w in (why_not_comparable(base_runs[-1], r) for r in base_runs[:-1] + runs) if w), None)
        if why is not None:
            result.not_compared.append(f"{_where(runs[-1])}: {why}")
            continue
        result.pairs += 1
        compare_pair(base_runs, runs, settings, result)
    for runs in baseline.values():
        result.note("baseline only", "in the baseline only", runs[-1])
    return result


def compare_pair(before_runs: list[Snapshot], after_runs: list[Snapshot], settings: GateSettings,
                 result: GateResult) -> None:
    """The checks of one backend and audio (see the module doc), added to `result`: parity on the latest
    run of each side, speed on every run."""
    before, after = before_runs[-1], after_runs[-1]

    def found(regression: bool, check: str, was: str, now: str, detail: str = "", caveat: str = "") -> None:
        result.changes.append(Change("regression" if regression else "improvement", after.backend, after.audio,
                                     check, was, now, detail, caveat))

    result.comparisons += 1
    was, now = STATUS_RANK.get(before.status, 3), STATUS_RANK.get(after.status, 3)
    if was != now:
        found(now > was, "verdict", before.status, after.status,
              "; ".join(after.failures or []) or (after.reason or "") if now > was else "")
    if before.status in RAN and after.status in RAN:
        _parity(before, after, settings, result, found)
        _speed(before_runs, after_runs, settings, result, found)


def _parity(before: Snapshot, after: Snapshot, settings: GateSettings, result: GateResult, found) -> None:
    a, b = before.full("psnr", "worst"), after.full("psnr", "worst")
    if a is not None and b is not None:
        result.comparisons += 1
        drop = a - b if not (math.isinf(a) and math.isinf(b)) else 0.0
        if abs(drop) > settings.psnr_drop_db:
            found(drop > 0, "worst PSNR", f"{fmt_number(a)} dB", f"{fmt_number(b)} dB",
                  f"{'fell' if drop > 0 else 'rose'} by more than {settings.psnr_drop_db:g} dB")
    a, b = before.full("identical_pct", "mean"), after.full("identical_pct", "mean")
    if a is not None and b is not None:
        result.comparisons += 1
        if abs(a - b) > settings.identical_drop_pct:
            found(b < a, "identical %", fmt_pct(a, 4), fmt_pct(b, 4), "pixel-identical share, full frame")
    _drift(before, after, result, found)
    _bill(before, after, result, found)


def _drift(before: Snapshot, after: Snapshot, result: GateResult, found) -> None:
    limit = (after.thresholds or {}).get("feature_max_abs")
    if not isinstance(limit, (int, float)):
        return
    old, new = before.features or {}, after.features or {}
    for stage in [s for s in new if s in old]:
        result.comparisons += 1
        was_out, now_out = _out_of(old[stage], limit), _out_of(new[stage], limit)
        if was_out != now_out:
            found(now_out, f"stage {stage} feature drift", _drift_text(old[stage]), _drift_text(new[stage]),
                  f"tolerance {limit:g} max abs")


def _out_of(drift: dict, limit: float) -> bool:
    value = drift.get("max_abs")
    return "error" in drift or not isinstance(value, (int, float)) or value > limit


def _drift_text(drift: dict) -> str:
    return drift["error"] if "error" in drift else f"max abs {fmt_number(drift.get('max_abs'), '.3g')}"


def _bill_of(snap: Snapshot) -> dict | None:
    """knob -> value of the run's bill ({} for a run that passed; None: unknown, the diagnosis did not run)."""
    if snap.bill is None:
        return {} if snap.status == "passed" else None
    return {d["knob"]: d["value"] for d in snap.bill}


def _bill_text(bill: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in bill.items()) or "canonical"


def _bill(before: Snapshot, after: Snapshot, result: GateResult, found) -> None:
    old, new = _bill_of(before), _bill_of(after)
    if old is None or new is None:
        if old != new:
            result.note("no diagnosis", "bill of deviations not compared: one run has no diagnosis", after,
                        "bill of deviations")
        return
    result.comparisons += 1
    weights = {d["knob"]: d.get("weight_db") for d in after.bill or []}
    gained = [f"{k}={v}" + (f" (weight {fmt_number(weights.get(k), '.2f')} dB)" if k in weights else "")
              for k, v in new.items() if old.get(k) != v]
    lost = [f"{k}={v}" for k, v in old.items() if k not in new]
    if gained:
        found(True, "bill of deviations", _bill_text(old), _bill_text(new), "gained " + ", ".join(gained))
    elif lost:
        found(False, "bill of deviations", _bill_text(old), _bill_text(new), "lost " + ", ".join(lost))


def _speed(before_runs: list[Snapshot], after_runs: list[Snapshot], settings: GateSettings, result: GateResult,
           found) -> None:
    """Repeated runs (REPEATS quiet ones a side) are tested on their medians; otherwise the latest run of
    each side on its frames, gated only past a known run-to-run noise."""
    quiet = [[m for m in (quiet_median(r, settings) for r in runs) if m is not None]
             for runs in (before_runs, after_runs)]
    if min(len(medians) for medians in quiet) >= REPEATS:
        result.comparisons += 1
        left_out = len(before_runs) + len(after_runs) - len(quiet[0]) - len(quiet[1])
        if left_out:
            result.note("left out", f"speed: {left_out} busy run(s) or run(s) without enough per-frame latencies "
                        "left out of the repeats", after_runs[-1], "speed")
        change = runs_change(*quiet, settings.alpha, settings.min_effect)
        if change.verdict != "same":
            found(change.verdict == "slower", "speed", f"{change.median_before_ms:.1f} ms",
                  f"{change.median_after_ms:.1f} ms", change.text())
        return
    before, after = before_runs[-1], after_runs[-1]
    if len(before_runs) > 1 or len(after_runs) > 1:
        result.note("few repeats", f"speed: fewer than {REPEATS} quiet runs a side ({len(quiet[0])} and "
                    f"{len(quiet[1])}): the latest run of each compared", after, "speed")
    a, b = before.speed.get("frame_ms") or [], after.speed.get("frame_ms") or []
    if len(a) < MIN_FRAMES or len(b) < MIN_FRAMES:
        which = "the baseline" if len(a) < MIN_FRAMES else "this run"
        result.note("few frames", f"speed not compared: {which} has under {MIN_FRAMES} per-frame latencies "
                    "(timings.frame_ms)", after, "speed")
        return
    busy = _busy(before, after, settings, result)
    if busy is True:
        return
    result.comparisons += 1
    threshold, floor = _speed_threshold(after, settings, result)
    change = speed_change(a, b, settings.alpha, settings.min_effect if threshold is None else threshold)
    if change.verdict == "same":
        return
    if threshold is None:
        result.note("not gated", f"speed not gated: {change.text()}: one run a side, and a run of one machine can "
                    "differ from the next by more than that (see the note on run-to-run noise)", after, "speed",
                    f"{change.median_before_ms:.1f} ms", f"{change.median_after_ms:.1f} ms")
        return
    found(change.verdict == "slower", "speed", f"{change.median_before_ms:.1f} ms",
          f"{change.median_after_ms:.1f} ms", change.text() + floor, busy or "")


def _speed_threshold(after: Snapshot, settings: GateSettings, result: GateResult) -> tuple[float | None, str]:
    """The change of speed that counts for one run a side: the minimum effect, or the run-to-run noise when it
    is larger; None (and a note) when that noise is unknown; and the words that say which."""
    noise, runs = result.noise.get(pair_key(after), (None, 0))
    if settings.noise is not None:
        noise, runs = settings.noise, 0
    if noise is None:
        if not any(note.reason == "noise unknown" for note in result.notes):
            result.note("noise unknown", f"speed: the run-to-run noise is unknown (one baseline run, and fewer than "
                        f"{NOISE_RUNS[0]} earlier quiet runs on a branch): one run a side is not gated; give "
                        f"{REPEATS} or more runs a side (interleaved), a branch with its runs in the store, or --noise",
                        check="speed")
        return None, ""
    if noise <= settings.min_effect:
        return settings.min_effect, ""
    source = f"over {runs} runs of the baseline's branch" if runs else "--noise"
    return noise, f"; past the run-to-run noise of {signed_pct(noise).lstrip('+')} {source}"


def _busy(before: Snapshot, after: Snapshot, settings: GateSettings, result: GateResult) -> bool | str:
    """True (with a note) when other processes used more than `max_background` of the machine's CPU during
    either run: their latencies then measure the other work as much as this one. When that is unknown
    for a run, the caveat a speed finding carries (and a note); else False."""
    shares = {"the baseline": before.speed.get("background_cpu"), "this run": after.speed.get("background_cpu")}
    if any(share is None for share in shares.values()) and \
            all(share is None or share <= settings.max_background for share in shares.values()):
        unknown = " and ".join(name for name, share in shares.items() if share is None)
        result.note("load unknown", f"how busy the machine was during {unknown} is unknown (no /proc/stat, or a file "
                    "written before timings.background_cpu): speed compared as if it was idle", after, "speed")
        return f"how busy the machine was during {unknown} is unknown"
    if all(share <= settings.max_background for share in shares.values() if share is not None):
        return False
    used = ", ".join(f"{100 * share:.0f} % during {name}" for name, share in shares.items() if share is not None)
    result.note("busy", f"speed not compared: the machine was busy with other work (other processes used {used}; "
                f"speed is compared up to {100 * settings.max_background:g} %, --max-background)", after, "speed")
    return True


def quiet_median(snap: Snapshot, settings: GateSettings) -> float | None:
    """The median steady frame latency of a run on a machine that was not busy (None otherwise): what the
    run-to-run noise is measured on."""
    share, frames = snap.speed.get("background_cpu"), snap.speed.get("frame_ms") or []
    if share is None or share > settings.max_background or len(frames) < MIN_FRAMES:
        return None
    return statistics.median(frames)
