"""The gate's statistics measured on this machine: ``pytest --benchmark tests/benchmarks/test_gate_statistics.py -s``.

Real runs on the demo data (the Sanders pack, ``talk_hb.wav``) with the full synthetic models, two
backends per run: ONNX Runtime CPU in process (its own per-frame latencies) and a port in its own
process (``tests/fake_ports/defect_port.py``, the reference pipeline, timed from the frame files it
writes). For each of ``$GATE_AA_PAIRS`` (default 20) pairs:

- **A/A**: two runs back to back, the gate at its defaults between them: a regression or an
  improvement of speed is a false alarm;
- **A/B**: a third run with the port slowed by a sleep per frame of 10 % of its median frame latency
  in the run before (``$DEFECT_PORT_SLEEP_MS``: the configured command stays the same), gated
  against the run before it: the gate must name the port's speed as a regression.

With ``$GATE_AA_QUIET_WAIT`` seconds, each pair first waits (up to that long) for other processes to
use at most the gate's busy share of the CPU over 5 s. The gate compares speed only when the
machine was not busy with other work (`--max-background`);
each pair also records what the speed test alone says without that guard, and every run's
``background_cpu``. The table of every pair, the false-alarm and detection counts are printed, and
written as JSON to ``$GATE_STATS_OUT`` when set. Asserted: no A/A gate failure, and every A/B pair
that the gate compared detected. ``pytest --benchmark`` runs it; the ``benchmark`` fixture times one
gate.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path


import history_docs as docs
from harness.config import load_config
from harness.bench.procfs import BackgroundProbe
from harness.history.gate import GateSettings, compare
from harness.history.snapshot import snapshots
from harness.history.stats import speed_change
from harness.parity import run_parity

PAIRS = int(os.environ.get("GATE_AA_PAIRS", "20"))
QUIET_WAIT_S = float(os.environ.get("GATE_AA_QUIET_WAIT", "0"))  # wait up to this long for a quiet machine per pair
FRAMES = int(os.environ.get("GATE_AA_FRAMES", "60"))
SLOWDOWN = 0.10
PORT = Path(__file__).resolve().parents[1] / "fake_ports" / "defect_port.py"


def _config(tmp: Path, data: Path) -> Path:
    backends = '[backends.ort_cpu]\nkind = "onnxruntime"\nprovider = "cpu"\n' + docs.port_table(
        "port", PORT, "--models", "{models}", output_pattern="frame_%05d.png")
    return docs.parity_config(tmp / "gate.toml", data / "sanders_pack", "synthetic:full",
                              data / "audio" / "talk_hb.wav", FRAMES, backends, output=str(tmp / "out"),
                              profile="desktop", explain=False)


def _wait_for_quiet() -> float:
    """Up to QUIET_WAIT_S seconds until other processes use at most the gate's busy share of the CPU over
    5 s; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < QUIET_WAIT_S:
        probe = BackgroundProbe()
        time.sleep(5)
        share = probe.share()
        if share is None or share <= GateSettings().max_background:
            break
    return time.monotonic() - started


def _run(config: Path, name: str, only: list[str] | None = None) -> list[dict]:
    cfg = load_config(config, only=only, output=config.parent / name)
    load = os.getloadavg()[0]
    results, _ = run_parity(cfg, progress=False)
    snaps = snapshots(results)
    for snap in snaps:
        snap["load"] = load
    return snaps


def _speed(result, backend: str) -> str:
    """What the gate said of one backend's speed: "slower", "faster", "same", "busy" (not compared)."""
    found = [f for f in result.findings if f.backend == backend and f.check == "speed"]
    if found:
        return "slower" if found[0].regression else "faster"
    return "busy" if any(n.startswith(f"{backend} /") and "machine was busy" in n for n in result.notes) else "same"


def _unguarded(before: dict, after: dict) -> dict:
    """The speed test alone, whatever the machine's load (what the gate would say without its busy guard)."""
    found = speed_change(before["speed"]["frame_ms"], after["speed"]["frame_ms"])
    return {"change": round(found.change, 4), "low": round(found.low, 4), "high": round(found.high, 4),
            "p": float(f"{found.p:.3g}"), "verdict": found.verdict,
            "background_cpu": [before["speed"]["background_cpu"], after["speed"]["background_cpu"]]}


def test_aa_false_alarms_and_ab_detection(benchmark, shared_data, tmp_path, monkeypatch):
    config = _config(tmp_path, shared_data)
    _run(config, "warm")  # builds the models, caches the reference, warms the page cache
    rows, aa, ab = [], [], []
    for k in range(PAIRS):
        waited = _wait_for_quiet()
        first, second = _run(config, f"a{k}"), _run(config, f"a{k}-again")
        gate = compare(first, second)
        aa.append(gate)
        port = next(s for s in second if s["backend"] == "port")
        sleep_ms = SLOWDOWN * statistics.median(port["speed"]["frame_ms"])
        monkeypatch.setenv("DEFECT_PORT_SLEEP_MS", f"{sleep_ms:.2f}")
        slowed = _run(config, f"b{k}", only=["port"])
        monkeypatch.delenv("DEFECT_PORT_SLEEP_MS")
        detected = compare([port], slowed)
        ab.append(detected)
        rows.append({"pair": k + 1, "waited_s": waited, "load": [first[0]["load"], second[0]["load"], slowed[0]["load"]],
                     "aa_exit": gate.exit_code, "aa_findings": [f.text() for f in gate.findings],
                     "aa": {b: _speed(gate, b) for b in ("ort_cpu", "port")},
                     "aa_unguarded": {s["backend"]: _unguarded(f, s) for f, s in zip(first, second)},
                     "ab_exit": detected.exit_code, "ab": _speed(detected, "port"),
                     "ab_unguarded": _unguarded(port, slowed[0]), "sleep_ms": sleep_ms,
                     "runs": {name: {s["backend"]: {"background_cpu": s["speed"]["background_cpu"],
                                                    "frame_ms": s["speed"]["frame_ms"]} for s in snaps}
                              for name, snaps in (("a", first), ("a_again", second), ("b", slowed))}})
        print(f"pair {k + 1}: load {rows[-1]['load'][0]:.1f}; A/A {rows[-1]['aa']} exit {gate.exit_code}; "
              f"A/B {rows[-1]['ab']}; unguarded A/A {rows[-1]['aa_unguarded']} A/B {rows[-1]['ab_unguarded']}",
              flush=True)
    benchmark.pedantic(compare, args=(first, second), rounds=3)  # the gate itself, for the table
    aa_said = [v for r in rows for v in r["aa"].values()]
    aa_raw = [v["verdict"] for r in rows for v in r["aa_unguarded"].values()]
    summary = {"pairs": PAIRS, "frames": FRAMES, "cpu_cores": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M"),
               "aa_gate_failures": sum(g.exit_code == 1 for g in aa),
               "aa_speed_compared": sum(v != "busy" for v in aa_said),
               "aa_speed_alarms": sum(v in ("slower", "faster") for v in aa_said),
               "aa_speed_declined_busy": aa_said.count("busy"),
               "aa_unguarded_alarms": sum(v != "same" for v in aa_raw), "aa_unguarded_comparisons": len(aa_raw),
               "ab_compared": sum(r["ab"] != "busy" for r in rows),
               "ab_detected": sum(r["ab"] == "slower" for r in rows),
               "ab_unguarded_detected": sum(r["ab_unguarded"]["verdict"] == "slower" for r in rows), "rows": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))
    if os.environ.get("GATE_STATS_OUT"):
        Path(os.environ["GATE_STATS_OUT"]).write_text(json.dumps(summary, indent=1))
    assert summary["aa_gate_failures"] == 0, [r["aa_findings"] for r in rows if r["aa_exit"] == 1]
    assert summary["ab_detected"] == summary["ab_compared"], [r["ab_unguarded"] for r in rows]
