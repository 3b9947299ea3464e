"""Runs of one or more results files flattened into report rows, shared by the HTML, markdown and JUnit reports.

A row is one backend x audio x machine. Rows keep the order of the files, then of the backends
(first appearance), then of the audio within a backend, so a backend's audios sit together.

Speed-up: per machine and audio, every FPS is divided by the FPS of a baseline run on the same
machine and audio: the run of the backend named exactly ``reference`` if the results hold one
(the canonical Python reference run as a backend), else ``ort_cpu`` (ONNX Runtime CPU, the
reference pipeline's own engine). Without either there is no speed-up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.text.tables import fmt_number
from harness.text.tables import fmt_pct as table_pct

BASELINES = ("reference", "ort_cpu")
REGION_LABELS = {"full": "full", "face": "face", "mouth": "mouth", "outside_face": "outside face"}
STATUS_WORDS = {"passed": "PASSED", "failed": "FAILED", "skipped": "SKIPPED", "error": "ERROR"}


@dataclass
class Row:
    """One backend x audio x machine: the run record plus where it came from."""

    machine: str
    run: dict
    results: dict
    base: Path  # folder of the results file; worst-frame paths are relative to it
    file_index: int
    speedup: float | None = None
    baseline: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.run["backend"]

    @property
    def audio(self) -> str:
        return self.run["audio"]

    @property
    def status(self) -> str:
        return self.run["status"]

    @property
    def fps(self) -> float | None:
        value = self.run.get("timings", {}).get("fps")
        return value if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else None

    @property
    def label(self) -> str:
        return f"{self.machine} · {self.backend} · {short_audio(self.audio)}"

    def why(self) -> list[str]:
        """The failed criteria in words, or the reason it was skipped or errored, nodes that fell back to
        the CPU under another execution provider, and what failed after the verdict (the diagnosis, the
        video: results.json's ``errors``)."""
        out = list(self.run.get("failures") or [])
        if self.run.get("reason"):
            out.append(self.run["reason"])
        if (self.run.get("info") or {}).get("cpu_fallback"):
            out.append(self.run["info"]["cpu_fallback"])
        return out + [f"after the verdict, {text}" for text in self.run.get("errors", [])]

    def causes(self) -> list[str]:
        """The named causes of the diagnosis (see harness.diagnosis.explain), when the run has one."""
        from harness.diagnosis.explain import causes
        return causes(self.run) if self.run.get("diagnosis", {}).keys() - {"audio_dependence"} else []

    def stat(self, region: str, metric: str, which: str):
        return self.run.get("summary", {}).get(region, {}).get(metric, {}).get(which)


def short_audio(name: str) -> str:
    """`talk_hb.wav` -> `talk_hb`."""
    return name[:-4] if name.lower().endswith(".wav") else name


def machine_names(results_list: list[dict]) -> list[str]:
    """The machine name of each results file, made unique with " (2)", " (3)" ... when two share one."""
    seen: dict[str, int] = {}
    out = []
    for results in results_list:
        name = str(results.get("machine", {}).get("name") or "unknown machine")
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def build_rows(results_list: list[dict], bases: list[Path] | None = None) -> list[Row]:
    """Every run of every results file as a Row, with its speed-up against the baseline."""
    bases = bases or [Path(".")] * len(results_list)
    rows: list[Row] = []
    for index, (results, base, machine) in enumerate(zip(results_list, bases, machine_names(results_list))):
        runs = results.get("runs", [])
        order = list(dict.fromkeys(r["backend"] for r in runs))
        audios = list(dict.fromkeys(r["audio"] for r in runs))
        runs = sorted(runs, key=lambda r: (order.index(r["backend"]), audios.index(r["audio"])))
        rows += [Row(machine, run, results, base, index) for run in runs]
    _add_speedups(rows)
    return rows


def _add_speedups(rows: list[Row]) -> None:
    by_key: dict[tuple, dict[str, Row]] = {}
    for row in rows:
        by_key.setdefault((row.file_index, row.audio), {})[row.backend] = row
    for row in rows:
        group = by_key[(row.file_index, row.audio)]
        base = next((group[name] for name in BASELINES if name in group and group[name].fps), None)
        if base is not None and row.fps:
            row.baseline = base.backend
            row.speedup = row.fps / base.fps


def counts(rows: list[Row]) -> dict[str, int]:
    """Runs per status, every status present (0 when none)."""
    out = {status: 0 for status in STATUS_WORDS}
    for row in rows:
        out[row.status] = out.get(row.status, 0) + 1
    return out


def fmt(value, spec: str = ".2f", none: str = "–") -> str:
    """A number for a report table (`harness.text.tables.fmt_number` with "–" and "∞")."""
    return fmt_number(value, spec, none=none, infinity="∞")


def fmt_pct(value, none: str = "–") -> str:
    """A share in % for a report table (`harness.text.tables.fmt_pct`: never rounded up to 100)."""
    return table_pct(value, none=none)


def fmt_sci(value, none: str = "–") -> str:
    """A small drift value: 0, or 3 significant digits."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return "0"
    return fmt(value, ".3g", none)
