"""`synctalk-parity bench` as a command: its options; run the sweep, write bench.json, print the tables."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.text.args import (
    add_backend_args,
    add_progress_args,
    command,
    progress_wanted,
)


def int_list(text: str) -> list[int]:
    """argparse type of --threads / --frames sweeps: "1,2,4" -> [1, 2, 4]."""
    from harness.bench.settings import parse_int_list
    return parse_int_list(text)


def add_parsers(sub) -> None:
    """The `bench` subcommand."""
    p = command(sub, "bench", cmd_bench)
    p.add_argument("--config", type=Path, required=True, metavar="TOML", help="parity config (see examples/)")
    add_backend_args(p)
    p.add_argument("--threads", type=int_list, metavar="T,T,...", help="thread sweep, e.g. 1,2")
    p.add_argument("--frames", type=int_list, metavar="N,N,...", help="frames sweep, e.g. 50,100,250")
    p.add_argument("--warmup", type=int, metavar="N", help="warm-up frames per run (default [bench].warmup or 5)")
    p.add_argument("--repeats", type=int, metavar="N", help="repeats per run (default [bench].repeats or 1)")
    p.add_argument("--no-overhead", action="store_true",
                   help="skip the parity overhead (one more run per backend: a `run` of it alone with the "
                        "reference cached, over the backend's own time)")
    add_progress_args(p)


def cmd_bench(args: argparse.Namespace) -> int:
    """Benchmark every backend of a config: FPS, stage times, latency, RSS, CPU.

    Run each backend of the config on the first audio with warm-up frames (reported, excluded), repeats,
    a bare-generator baseline at the same thread count, and optional thread and frame-count sweeps.
    Writes OUTPUT/bench.json (results.json schema) and prints a table. [bench] in the config sets
    defaults.
    """
    return bench_main(args.config, args.backend, args.threads, args.frames, args.warmup, args.repeats,
                      args.output, progress_wanted(args), overhead=not args.no_overhead)


def bench_main(config: str | Path, backends: list[str] | None = None, threads: list[int] | None = None,
               frames: list[int] | None = None, warmup: int | None = None, repeats: int | None = None,
               output: str | Path | None = None, progress: bool = True, overhead: bool = True) -> int:
    """`synctalk-parity bench`: run the bench, write ``OUTPUT/bench.json`` (default: the config's
    ``[run].output``), print the table (and, with `overhead`, each backend's parity overhead). 0 when every
    backend ran, 3 when one was skipped or failed; a config error raises ConfigError (exit 2 in the CLI)."""
    from harness.bench.sweep import run_bench
    from harness.bench.table import bench_table
    from harness.runs.config import load_config
    from harness.runs.parity import exit_code
    from harness.text.terminal import colour_enabled
    cfg = load_config(config, only=backends or None, output=output)
    path = cfg.output / "bench.json"
    results = run_bench(cfg, warmup, repeats, threads, frames, progress, results_path=path, overhead=overhead)
    print(bench_table(results, colour_enabled()))
    for name in results["bench"]["not_timed"]:
        print(f"{name}: not timed (frames made elsewhere: nothing runs here)")
    print(f"\nbench -> {path}")
    return exit_code(results)
