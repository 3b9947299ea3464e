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

from harness.history.gate import GateSettings, compare, quiet_median
from harness.history.snapshot import Snapshot, snapshots
from harness.history.stats import NOISE_RUNS, REPEATS, run_noise, speed_change
from harness.runs.config import load_config
from harness.runs.parity import run_parity
from harness.system.procfs import BackgroundProbe

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


def _run(config: Path, name: str, only: list[str] | None = None) -> tuple[list[Snapshot], float]:
    """The snapshots of one parity run and the machine's load average as it started."""
    cfg = load_config(config, only=only, output=config.parent / name)
    load = os.getloadavg()[0]
    results, _ = run_parity(cfg, progress=False)
    return snapshots(results), load


def _snap(backend: str, run: dict) -> Snapshot:
    """A snapshot of one run that holds only its speed (what the evaluation below compares)."""
    return Snapshot(backend=backend, kind="k", audio="talk_hb.wav", audio_sha256="a", mode="parity", options={},
                    frames=None, machine=None, fingerprint="this machine", machine_parts={}, inputs_sha256="i",
                    config_sha256=None, created=None, status="passed", profile=None, failures=[], reason=None,
                    thresholds={}, regions={}, features={}, bill=None, fitted=None, speed=run)


def _said(result, backend: str) -> str:
    """What the gate said of one backend's speed: "slower", "faster", "same", "busy" (not compared)."""
    found = [f for f in result.changes if f.backend == backend and f.check == "speed"]
    if found:
        return "slower" if found[0].regression else "faster"
    return "busy" if any(n.backend == backend and n.reason in ("busy", "few repeats") for n in result.notes) else "same"


def evaluate(rows: list[dict]) -> dict:
    """The gate at its defaults on the runs of every pair, two ways: against **one run** (a results file as
    the baseline: the run-to-run noise unknown), and against the **history** (as `--against branch:NAME`
    with a store: the noise from the quiet runs before, of that backend in this session); and the speed
    test **alone**, without the busy guard. Counts of A/A alarms and A/B detections."""
    settings = GateSettings()
    quiet: dict[str, list[float]] = {"ort_cpu": [], "port": []}
    out = {mode: {"aa_compared": 0, "aa_alarms": 0, "aa_failed_pairs": 0, "aa_busy": 0, "ab_compared": 0,
                  "ab_detected": 0} for mode in ("one_run", "history", "test_alone")}
    changes = {"aa": [], "ab": []}

    def gate(mode: str, backend: str, before: dict, after: dict) -> str:
        if mode == "test_alone":
            return speed_change(before["frame_ms"], after["frame_ms"]).verdict
        recent = quiet[backend][-NOISE_RUNS[1]:]
        noise = {} if mode == "one_run" else {("parity", backend, "a"): (run_noise(recent), len(recent))}
        return _said(compare([_snap(backend, before)], [_snap(backend, after)], settings, noise=noise), backend)

    for row in rows:
        runs = row["runs"]
        for backend in ("ort_cpu", "port"):
            a = runs["a"][backend]
            quiet[backend] += [m for m in [quiet_median(_snap(backend, a), settings)] if m is not None]
            if max(a["background_cpu"], runs["a_again"][backend]["background_cpu"]) <= settings.max_background:
                changes["aa"].append(speed_change(a["frame_ms"], runs["a_again"][backend]["frame_ms"]).change)
        for mode in out:
            said = [gate(mode, b, runs["a"][b], runs["a_again"][b]) for b in ("ort_cpu", "port")]
            out[mode]["aa_compared"] += sum(v != "busy" for v in said)
            out[mode]["aa_busy"] += said.count("busy")
            out[mode]["aa_alarms"] += sum(v in ("slower", "faster") for v in said)
            out[mode]["aa_failed_pairs"] += "slower" in said
        for backend in ("ort_cpu", "port"):
            again = runs["a_again"][backend]
            quiet[backend] += [m for m in [quiet_median(_snap(backend, again), settings)] if m is not None]
        before, after = runs["a_again"]["port"], runs["b"]["port"]
        if max(before["background_cpu"], after["background_cpu"]) <= settings.max_background:
            changes["ab"].append(speed_change(before["frame_ms"], after["frame_ms"]).change)
        for mode in out:
            said = gate(mode, "port", before, after)
            out[mode]["ab_compared"] += said != "busy"
            out[mode]["ab_detected"] += said == "slower"
    out["repeats"] = {size: _repeats(rows, settings, size) for size in (REPEATS, 2 * REPEATS)}
    out["quiet_changes"] = {"aa_abs_median": statistics.median(map(abs, changes["aa"])) if changes["aa"] else None,
                            "aa_abs_max": max(map(abs, changes["aa"]), default=None),
                            "ab_median": statistics.median(changes["ab"]) if changes["ab"] else None,
                            "ab_min": min(changes["ab"], default=None)}
    return out


def _repeats(rows: list[dict], settings: GateSettings, size: int) -> dict:
    """The gate at its defaults on repeated runs: the pairs taken `size` at a time (runs interleaved in time,
    as a pull request's job would make them): A/A the first runs against the runs just after them, A/B
    those against the slowed port's runs."""
    def side(group: list[dict], run: str, backend: str) -> list[dict]:
        return [_snap(backend, r["runs"][run][backend]) for r in group]

    out = {"groups": 0, "aa_compared": 0, "aa_alarms": 0, "aa_failed_groups": 0, "ab_compared": 0, "ab_detected": 0}
    for start in range(0, len(rows) - size + 1, size):
        group = rows[start:start + size]
        out["groups"] += 1
        said = [_said(compare(side(group, "a", b), side(group, "a_again", b), settings), b)
                for b in ("ort_cpu", "port")]
        out["aa_compared"] += sum(v != "busy" for v in said)
        out["aa_alarms"] += sum(v in ("slower", "faster") for v in said)
        out["aa_failed_groups"] += "slower" in said
        said = _said(compare(side(group, "a_again", "port"), side(group, "b", "port"), settings), "port")
        out["ab_compared"] += said != "busy"
        out["ab_detected"] += said == "slower"
    return out


def test_aa_false_alarms_and_ab_detection(benchmark, shared_data, tmp_path, monkeypatch):
    config = _config(tmp_path, shared_data)
    _run(config, "warm")  # builds the models, caches the reference, warms the page cache
    rows = []
    for k in range(PAIRS):
        waited = _wait_for_quiet()
        (first, first_load), (second, second_load) = _run(config, f"a{k}"), _run(config, f"a{k}-again")
        port = next(s for s in second if s.backend == "port")
        sleep_ms = SLOWDOWN * statistics.median(port.speed["frame_ms"])
        monkeypatch.setenv("DEFECT_PORT_SLEEP_MS", f"{sleep_ms:.2f}")
        slowed, slowed_load = _run(config, f"b{k}", only=["port"])
        monkeypatch.delenv("DEFECT_PORT_SLEEP_MS")
        rows.append({"pair": k + 1, "waited_s": waited, "sleep_ms": sleep_ms,
                     "load": [first_load, second_load, slowed_load],
                     "runs": {name: {s.backend: {"background_cpu": s.speed["background_cpu"],
                                                 "frame_ms": s.speed["frame_ms"]} for s in snaps}
                              for name, snaps in (("a", first), ("a_again", second), ("b", slowed))}})
        print(f"pair {k + 1}: load {rows[-1]['load'][0]:.1f}, waited {waited:.0f} s", flush=True)
    benchmark.pedantic(compare, args=(first, second), rounds=3)  # the gate itself, for the table
    summary = {"pairs": PAIRS, "frames": FRAMES, "cpu_cores": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M"),
               **evaluate(rows), "rows": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=1))
    if os.environ.get("GATE_STATS_OUT"):
        Path(os.environ["GATE_STATS_OUT"]).write_text(json.dumps(summary, indent=1))
    quiet = summary["quiet_changes"]
    assert quiet["ab_median"] is not None and quiet["ab_median"] > 0.05  # the injected slowdown shows
    assert quiet["aa_abs_median"] < quiet["ab_median"]


if __name__ == "__main__":  # the evaluation again, on the runs a measurement wrote ($GATE_STATS_OUT)
    import sys
    print(json.dumps(evaluate(json.loads(Path(sys.argv[1]).read_text())["rows"]), indent=1))
