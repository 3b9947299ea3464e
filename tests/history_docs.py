"""Hand-made results.json documents for the history and gate tests: runs with chosen verdicts, metrics,
bills and per-frame latencies, written through the real schema (`harness.verdicts.results.write_results`)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from harness.verdicts.results import new_results, write_results

MACHINE = {"name": "box", "os": "Linux-6.1-x86_64", "cpu": "Test CPU 3000", "cores": 2, "python": "3.11",
           "libraries": {"numpy": "2.0.0", "onnxruntime": "1.20.0"}}
INPUTS = {"source": {"path": "pack", "kind": "pack", "sha256": "p" * 64},
          "models": {"audio_encoder": "e" * 64, "generator": "g" * 64},
          "audio": [{"name": "talk.wav", "sha256": "a" * 64}, {"name": "silence_3s.wav", "sha256": "s" * 64}],
          "frames": 40}


def latencies(median_ms: float = 70.0, n: int = 40, seed: int = 0, sigma: float = 0.05) -> list[float]:
    """n per-frame latencies in ms, log-normal around `median_ms` (the first 4 a slower start-up)."""
    values = np.random.default_rng(seed).lognormal(math.log(median_ms), sigma, n)
    values[:4] *= 3
    return values.tolist()


def run(backend: str = "ort_cpu", audio: str = "talk.wav", status: str = "passed", psnr: float = math.inf,
        identical: float = 100.0, frame_ms: list[float] | None = None, bill: list[tuple] | None = None,
        features: dict | None = None, background: float | None = 0.02, **extra) -> dict:
    """A parity run record; `bill` as (knob, value, weight_db) triples makes a diagnosis with that bill;
    `background` is the share of the CPU other processes used during it."""
    frame_ms = latencies() if frame_ms is None else frame_ms
    record = {"backend": backend, "kind": "onnxruntime", "audio": audio, "status": status,
              "failures": [] if status == "passed" else [f"PSNR {psnr:.2f} dB on frame 2 < 45 dB"],
              "frames": len(frame_ms), "thresholds": {"psnr_min": 45.0, "feature_max_abs": 1e-4},
              "options": {"provider": "cpu"},
              "summary": {region: {"psnr": {"min": psnr, "mean": psnr, "max": psnr},
                                   "identical_pct": {"min": identical, "mean": identical, "max": identical},
                                   "ssim": {"min": 1.0, "mean": 1.0, "max": 1.0}}
                          for region in ("full", "face", "mouth", "outside_face")},
              "features": features if features is not None else {"mel": {"max_abs": 0.0}, "embeddings": {"max_abs": 0.0}},
              "timings": {"fps": 12.0, "steady_fps": 14.0, "ttff_s": 0.5, "p50_ms": float(np.median(frame_ms)),
                          "p99_ms": float(np.percentile(frame_ms, 99)), "frame_ms": frame_ms,
                          "steady": {"skipped_frames": 4}, "background_cpu": background},
              **extra}
    if bill is not None:
        record["diagnosis"] = {"conventions": {
            "fitted": f"reference[{','.join(f'{k}={v}' for k, v, _ in bill)}]",
            "deviations": [{"knob": k, "value": v, "canonical": "?", "weight_db": w} for k, v, w in bill]}}
    return record


def results(runs: list[dict], created: str = "2025-01-01T00:00:00+00:00", machine: dict | None = None,
            inputs: dict | None = None) -> dict:
    doc = new_results(dict(machine or MACHINE), dict(inputs or INPUTS), "desktop",
                      {"path": "parity.toml", "sha256": "c" * 64, "text": ""})
    doc.update(partial=False, runs=runs, created=created)
    return doc


def write(path: Path, runs: list[dict], **kwargs) -> Path:
    """A results.json at `path` with these runs (see `results`)."""
    return write_results(results(runs, **kwargs), path)


def _toml(value) -> str:
    """A TOML value: a dict as an inline table, anything else as JSON writes it (strings, numbers, booleans)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(v)}" for key, v in value.items()) + " }"
    return json.dumps(value)


def port_table(name: str, script: Path, *args: str, **options) -> str:
    """The [backends.NAME] table of a fake port run by this Python with the ports' command line (`args`
    after it); `options` become its other keys."""
    argv = [sys.executable, str(script), "--sanders", "{pack}", "--audio", "{audio}", "--output", "{output}",
            "--frames", "{frames}", *args]
    lines = [f'[backends.{name}]', 'kind = "subprocess"', f"command = {json.dumps(argv)}"]
    lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def parity_config(path: Path, pack: Path, models: str | Path, audio: Path, frames: int, backends: str,
                  **run) -> Path:
    """A parity config at `path` of one audio; `run` adds [run] keys (output "out" below it by default)."""
    run = {"output": "out", **run}
    lines = ["[data]", f'pack = "{pack}"', f'models = "{models}"', f'audio = ["{audio}"]', f"frames = {frames}", "[run]"]
    lines += [f"{key} = {_toml(value)}" for key, value in run.items()]
    path.write_text("\n".join(lines) + "\n" + backends)
    return path
