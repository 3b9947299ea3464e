"""The gate's statistics measured on this machine: ``pytest --benchmark tests/benchmarks/test_gate_statistics.py -s``.

Real runs on the demo data (the Sanders pack, ``talk_hb.wav``) with the full synthetic models, two
backends per run: ONNX Runtime CPU in process (its own per-frame latencies) and a port in its own
process (``tests/fake_ports/defect_port.py``, the reference pipeline, timed from the frame files it
writes). For each of ``$GATE_AA_PAIRS`` (default 20) pairs:

- **A/A**: two runs back to back, the gate at its defaults between them: any regression is a false
  alarm (so is an improvement, counted apart);
- **A/B**: a third run with the port slowed by a sleep per frame of 10 % of its median frame latency
  in the run before (``$DEFECT_PORT_SLEEP_MS``: the configured command stays the same), gated
  against the run before it: the gate must name the port's speed as a regression.

The table of every pair, the false-alarm rate and the detection rate are printed, and written as
JSON to ``$GATE_STATS_OUT`` when set. The load average is recorded beside every run (the machine is
shared). `pytest --benchmark` deselects nothing here: the ``benchmark`` fixture times one gate.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import pytest

from harness.config import load_config
from harness.history.gate import compare
from harness.history.snapshot import snapshots
from harness.parity import run_parity

PAIRS = int(os.environ.get("GATE_AA_PAIRS", "20"))
FRAMES = int(os.environ.get("GATE_AA_FRAMES", "60"))
SLOWDOWN = 0.10
PORT = Path(__file__).resolve().parents[1] / "fake_ports" / "defect_port.py"


def _config(tmp: Path, data: Path) -> Path:
    command = ", ".join(f'"{a}"' for a in [sys.executable, str(PORT), "--sanders", "{pack}", "--audio", "{audio}",
                                           "--models", "{models}", "--output", "{output}", "--frames", "{frames}"])
    path = tmp / "gate.toml"
    path.write_text(f"""
[data]
pack = "{data / 'sanders_pack'}"
models = "synthetic:full"
audio = ["{data / 'audio' / 'talk_hb.wav'}"]
frames = {FRAMES}
[run]
output = "{tmp / 'out'}"
profile = "desktop"
explain = false
[backends.ort_cpu]
kind = "onnxruntime"
provider = "cpu"
[backends.port]
kind = "subprocess"
command = [{command}]
output_pattern = "frame_%05d.png"
""")
    return path


def _run(config: Path, name: str, only: list[str] | None = None) -> list[dict]:
    cfg = load_config(config, only=only, output=config.parent / name)
    load = os.getloadavg()[0]
    results, _ = run_parity(cfg, progress=False)
    snaps = snapshots(results)
    for snap in snaps:
        snap["load"] = load
    return snaps


def _speed_line(result, backend: str) -> str:
    hits = [f for f in result.findings if f.backend == backend and f.check == "speed"]
    return hits[0].detail if hits else "no change"


def test_aa_false_alarms_and_ab_detection(benchmark, shared_data, tmp_path, monkeypatch):
    config = _config(tmp_path, shared_data)
    _run(config, "warm")  # builds the models, caches the reference, warms the page cache
    rows, aa, ab = [], [], []
    for k in range(PAIRS):
        first, second = _run(config, f"a{k}"), _run(config, f"a{k}-again")
        gate = compare(first, second)
        aa.append(gate)
        port_ms = statistics.median(next(s for s in second if s["backend"] == "port")["speed"]["frame_ms"])
        monkeypatch.setenv("DEFECT_PORT_SLEEP_MS", f"{SLOWDOWN * port_ms:.2f}")
        slowed = _run(config, f"b{k}", only=["port"])
        monkeypatch.delenv("DEFECT_PORT_SLEEP_MS")
        detected = compare([s for s in second if s["backend"] == "port"], slowed)
        ab.append(detected)
        rows.append({"pair": k + 1, "load": [first[0]["load"], second[0]["load"], slowed[0]["load"]],
                     "runs": {name: {s["backend"]: {"background_cpu": s["speed"]["background_cpu"],
                                                    "frame_ms": s["speed"]["frame_ms"]} for s in snaps}
                              for name, snaps in (("a", first), ("a_again", second), ("b", slowed))},
                     "aa_exit": gate.exit_code, "aa_findings": [f.text() for f in gate.findings],
                     "aa_ort_cpu": _speed_line(gate, "ort_cpu"), "aa_port": _speed_line(gate, "port"),
                     "aa_changes": {s["backend"]: _change(f, s) for f, s in zip(first, second)},
                     "ab_exit": detected.exit_code, "ab_port": _speed_line(detected, "port"),
                     "ab_change": _change(next(s for s in second if s["backend"] == "port"), slowed[0]),
                     "sleep_ms": SLOWDOWN * port_ms})
        print(f"pair {k + 1}: load {rows[-1]['load'][0]:.1f}; A/A exit {gate.exit_code} "
              f"{rows[-1]['aa_changes']}; A/B exit {detected.exit_code} {rows[-1]['ab_change']}", flush=True)
    benchmark.pedantic(compare, args=(first, second), rounds=3)  # the gate itself, for the table
    comparisons = 2 * PAIRS
    alarms = sum(len([f for f in g.regressions]) for g in aa)
    summary = {"pairs": PAIRS, "frames": FRAMES, "aa_comparisons": comparisons,
               "aa_gate_failures": sum(g.exit_code == 1 for g in aa), "aa_regressions": alarms,
               "aa_improvements": sum(len(g.improvements) for g in aa),
               "ab_detected": sum(any(f.check == "speed" and f.regression for f in g.findings) for g in ab),
               "cpu_cores": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))
    if os.environ.get("GATE_STATS_OUT"):
        Path(os.environ["GATE_STATS_OUT"]).write_text(json.dumps(summary, indent=1))
    assert summary["aa_gate_failures"] == 0, [r["aa_findings"] for r in rows if r["aa_exit"] == 1]
    assert summary["ab_detected"] == PAIRS, [r["ab_port"] for r in rows]


def _change(before: dict, after: dict) -> dict:
    from harness.history.stats import speed_change
    found = speed_change(before["speed"]["frame_ms"], after["speed"]["frame_ms"])
    return {"change": round(found.change, 4), "low": round(found.low, 4), "high": round(found.high, 4),
            "p": float(f"{found.p:.3g}"), "verdict": found.verdict}
