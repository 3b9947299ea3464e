"""What a later comparison needs of a run: a compact, JSON-ready snapshot of one run record.

A `Snapshot` holds:

- ``backend``, ``kind``, ``audio`` (its name), ``audio_sha256``, ``mode`` (``parity`` for a
  results.json record, ``bench`` for a bench.json one), ``options`` (the backend's options);
- ``machine`` (its name) and ``fingerprint`` (`fingerprint`: CPU model and count, OS, the recorded
  library versions), ``inputs_sha256`` (models, pack and frame count), ``config_sha256``, ``created``;
- ``status``, ``profile``, ``failures``, ``thresholds``;
- ``regions``: per region (full, face, mouth, outside_face) ``identical_pct``, ``psnr`` and ``ssim``,
  each ``{"worst", "mean"}`` over the frames;
- ``features``: per stage ``max_abs`` (or ``error``);
- ``bill``: the bill of deviations, ``[{"knob", "value", "weight_db"}]`` (None when the diagnosis did
  not fit one: a run that passed, or one run without the diagnosis), and ``fitted``;
- ``speed``: ``fps``, ``steady_fps``, ``ttff_s``, ``p50_ms``, ``p99_ms``, ``rss_mb``, ``x_bare`` (steady
  FPS over the bare generator's, bench records only), ``background_cpu`` (the share of the machine's
  CPU other processes used during the run) and ``frame_ms``: the steady frames' latencies
  (a parity record's ``timings.frame_ms`` after its start-up frames; a bench record's measured
  frames of every repeat), [] when the file has none;
- where the history store filed it: ``commit`` (its commit and branch), ``store_id``, ``added`` and
  ``source`` (the file it was filed from); None for a run read from a results file.

`Snapshot.to_json` is what the store keeps of a run (the filing fields are its columns).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

from harness.history.commits import Commit
from harness.verdicts.results import audio_labels
from harness.verdicts.timing import steady_skip

REGIONS = ("full", "face", "mouth", "outside_face")
REGION_METRICS = ("identical_pct", "psnr", "ssim")
FINGERPRINT_KEYS = ("cpu", "cores", "os", "libraries")
FILING = ("commit", "store_id", "added", "source")  # kept in the store's columns, not in its snapshot


@dataclass(frozen=True)
class Snapshot:
    """One run as filed: what the gate and the history page compare of it (see the module doc)."""

    backend: str
    kind: str
    audio: str
    audio_sha256: str | None
    mode: str
    options: dict
    frames: int | None
    machine: str | None
    fingerprint: str
    machine_parts: dict
    inputs_sha256: str
    config_sha256: str | None
    created: str | None
    status: str
    profile: str | None
    failures: list
    reason: str | None
    thresholds: dict
    regions: dict
    features: dict
    bill: list | None
    fitted: str | None
    speed: dict
    commit: Commit | None = None
    store_id: int | None = None
    added: str | None = None
    source: str | None = None

    def to_json(self) -> dict:
        """The snapshot as the store keeps it: every field but the filing ones, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in FILING}

    @classmethod
    def from_json(cls, data: dict, **filing) -> Snapshot:
        """A snapshot from `to_json`'s dict, with the filing fields given (`FILING`)."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls) if f.name not in FILING}, **filing)

    def full(self, metric: str, which: str) -> float | None:
        """A full-frame metric of the run (``psnr``, ``identical_pct``; ``worst`` or ``mean``), None when absent."""
        value = ((self.regions or {}).get("full") or {}).get(metric, {}).get(which)
        return float(value) if isinstance(value, (int, float)) else None


def digest(value) -> str:
    """sha256 of a JSON value in canonical form (sorted keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def machine_parts(machine: dict) -> dict:
    """The parts of a results file's machine that decide its numbers: CPU model and count, OS, libraries."""
    return {key: machine.get(key) for key in FINGERPRINT_KEYS}


def fingerprint(machine: dict) -> str:
    """A short hash of `machine_parts`: two runs with one fingerprint ran on alike machines."""
    return digest(machine_parts(machine))[:16]


def machine_differences(before: dict, after: dict) -> list[str]:
    """What differs between two machines' `machine_parts`, in words (library by library)."""
    out = []
    for key in FINGERPRINT_KEYS:
        a, b = before.get(key), after.get(key)
        if key == "libraries" and isinstance(a, dict) and isinstance(b, dict):
            out += [f"{name} {a.get(name, 'absent')} -> {b.get(name, 'absent')}"
                    for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
        elif a != b:
            out.append(f"{key} {a} -> {b}")
    return out


def _steady_latencies(run: dict) -> list[float]:
    bench = run.get("bench")
    if isinstance(bench, dict):
        return [float(x) for repeat in bench.get("frame_latency_ms") or [] for x in repeat]
    timings = run.get("timings") or {}
    every = [float(x) for x in timings.get("frame_ms") or []]
    skip = (timings.get("steady") or {}).get("skipped_frames")
    return every[skip if isinstance(skip, int) else steady_skip(len(every)):]


def _speed(run: dict) -> dict:
    timings = run.get("timings") or {}
    bench = run.get("bench") if isinstance(run.get("bench"), dict) else {}
    return {"fps": timings.get("fps"), "steady_fps": timings.get("steady_fps"), "ttff_s": timings.get("ttff_s"),
            "p50_ms": timings.get("p50_ms"), "p99_ms": timings.get("p99_ms"),
            "rss_mb": timings.get("peak_rss_mb", bench.get("peak_rss_mb")), "x_bare": bench.get("x_bare"),
            "background_cpu": timings.get("background_cpu"), "frame_ms": _steady_latencies(run)}


def _regions(run: dict) -> dict:
    summary = run.get("summary") or {}
    out = {}
    for region in REGIONS:
        stats = summary.get(region)
        if isinstance(stats, dict):
            out[region] = {m: {"worst": stats[m].get("min"), "mean": stats[m].get("mean")}
                           for m in REGION_METRICS if isinstance(stats.get(m), dict)}
    return out


def _features(run: dict) -> dict:
    out = {}
    for stage, drift in (run.get("features") or {}).items():
        if isinstance(drift, dict):
            out[stage] = {"error": str(drift["error"])} if "error" in drift else {"max_abs": drift.get("max_abs")}
    return out


def _bill(run: dict) -> tuple[list[dict] | None, str | None]:
    fit = (run.get("diagnosis") or {}).get("conventions")
    if not isinstance(fit, dict) or not isinstance(fit.get("deviations"), list):
        return None, None
    return ([{"knob": d.get("knob"), "value": d.get("value"), "weight_db": d.get("weight_db")}
             for d in fit["deviations"] if isinstance(d, dict)], fit.get("fitted"))


def snapshots(results: dict) -> list[Snapshot]:
    """One snapshot per run record of a results (or bench) document, read with `read_results`."""
    machine = results.get("machine") or {}
    inputs = results.get("inputs") or {}
    entries = inputs.get("audio") or []
    audio_sha = dict(zip(audio_labels([Path(str(a.get("name"))) for a in entries]), (a.get("sha256") for a in entries)))
    inputs_sha = digest({"source": (inputs.get("source") or {}).get("sha256"), "frames": inputs.get("frames"),
                         "models": {k: v for k, v in (inputs.get("models") or {}).items()
                                    if k not in ("folder", "files")}})
    mode = "bench" if "bench" in results else "parity"
    out = []
    for run in results.get("runs") or []:
        bill, fitted = _bill(run)
        out.append(Snapshot(
            backend=run["backend"], kind=run["kind"], audio=run["audio"], audio_sha256=audio_sha.get(run["audio"]),
            mode=mode, options=run.get("options") or {}, frames=run.get("frames"), machine=machine.get("name"),
            fingerprint=fingerprint(machine), machine_parts=machine_parts(machine), inputs_sha256=inputs_sha,
            config_sha256=(results.get("config") or {}).get("sha256"), created=results.get("created"),
            status=run["status"], profile=results.get("profile"),
            failures=list(run.get("failures") or []) + list(run.get("errors") or []), reason=run.get("reason"),
            thresholds=run.get("thresholds") or {}, regions=_regions(run), features=_features(run), bill=bill,
            fitted=fitted, speed=_speed(run)))
    return out
