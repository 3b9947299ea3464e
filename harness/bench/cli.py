"""`synctalk-parity bench` as a command: run the sweep, write bench.json, print the tables."""
from __future__ import annotations

from pathlib import Path

from harness.bench.sweep import run_bench
from harness.bench.table import bench_table
from harness.config import load_config
from harness.parity import exit_code
from harness.terminal import colour_enabled


def bench_main(config: str | Path, backends: list[str] | None = None, threads: list[int] | None = None,
               frames: list[int] | None = None, warmup: int | None = None, repeats: int | None = None,
               output: str | Path | None = None, progress: bool = True, overhead: bool = True) -> int:
    """`synctalk-parity bench`: run the bench, write ``OUTPUT/bench.json`` (default: the config's
    ``[run].output``), print the table (and, with `overhead`, each backend's parity overhead). 0 when every backend ran, 3 when one was skipped or failed;
    a config error raises ConfigError (exit 2 in the CLI)."""
    cfg = load_config(config, only=backends or None, output=output)
    path = cfg.output / "bench.json"
    results = run_bench(cfg, warmup, repeats, threads, frames, progress, results_path=path, overhead=overhead)
    print(bench_table(results, colour_enabled()))
    for name in results["bench"]["not_timed"]:
        print(f"{name}: not timed (frames made elsewhere: nothing runs here)")
    print(f"\nbench -> {path}")
    return exit_code(results)
