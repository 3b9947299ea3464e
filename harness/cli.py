"""The `synctalk-parity` command line."""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.cli_args import build_parser
from harness.terminal import progress_wanted
from reference.errors import ParityError


def _source(args: argparse.Namespace):
    from reference.data import Dataset, Pack, open_source
    if args.pack is not None:
        source = open_source(args.pack)
        if not isinstance(source, Pack):
            from reference.errors import InputError
            raise InputError(args.pack, "this is a raw dataset, not a pre-cut pack", "use --dataset instead")
        return source
    return Dataset(args.dataset)


def _models(folder: Path, threads: int):
    from reference.models import ModelFiles, Models
    return Models(ModelFiles.from_dir(folder), threads=threads)


def _conventions(text: str):
    from reference.conventions import Conventions
    try:
        return Conventions.parse(text)
    except ValueError as exc:
        raise UsageError(f"--conventions: {exc}") from None


class UsageError(ParityError):
    """A command-line argument is wrong."""


def cmd_infer(args: argparse.Namespace) -> int:
    from reference.infer import infer
    conv = _conventions(args.conventions)
    result = infer(_source(args), args.audio, _models(args.models, args.threads), args.output, args.frames,
                   args.format, conv, args.dump_stages, args.dump_frames, args.png_level, progress_wanted(args))
    print(f"{result.frames} frames -> {result.output}/frame_00001.{args.format} ... "
          f"({result.fps:.2f} FPS end to end, {result.seconds:.1f} s)")
    if result.stage_dump:
        print(f"stages -> {result.stage_dump}/index.json")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.demo import run_demo
    return run_demo(args.frames, args.threads, args.output, args.size, args.parity_frames, progress_wanted(args))


def cmd_fixtures(args: argparse.Namespace) -> int:
    if args.what == "models":
        from fixtures.models import build_models
        paths = build_models(args.out, args.size, args.seed)
        for path in paths.values():
            print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    else:
        from fixtures.pack import build_pack
        print(build_pack(args.out, frames=args.frames, seed=args.seed))
    return 0


def cmd_golden(args: argparse.Namespace) -> int:
    from reference.golden import write_golden
    path = write_golden(args.out, _source(args), args.audio, _models(args.models, args.threads), args.frames,
                        _conventions(args.conventions), force=args.force, store_models=args.store_models)
    print(f"golden -> {path}")
    return 0


def cmd_check_golden(args: argparse.Namespace) -> int:
    from harness.golden_check import check_golden
    from reference.models import ModelFiles
    check = check_golden(args.golden, ModelFiles.from_dir(args.models) if args.models else None, args.profile,
                         args.threads)
    print("\n".join(check.lines()))
    return 0 if check.ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    from harness.config import load_config
    from harness.console import golden_notes, results_table
    from harness.parity import exit_code, run_parity
    from harness.terminal import colour_enabled
    cfg = load_config(args.config, only=args.backend, output=args.output, frames=args.frames)
    cfg.video = cfg.video or args.video
    cfg.explain = cfg.explain and not args.no_explain
    cfg.cache = cfg.cache and not args.no_cache
    results, path = run_parity(cfg, progress=progress_wanted(args))
    print(results_table(results, colour_enabled()))
    for note in golden_notes(results):
        print(note)
    print(f"\nresults -> {path}")
    print(report_line(path, args.report or cfg.report))
    return exit_code(results)


def report_line(results: Path, folder: Path | None) -> str:
    """With `folder`: render the HTML report there, "report -> DIR/index.html"; else the one `report`
    command that renders it."""
    if folder is None:
        command = ["synctalk-parity", "report", str(results), "--out", str(results.parent / "report")]
        return "report: " + shlex.join(command)
    from reports.html import render_html
    return f"report -> {render_html([results], folder)}"


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench.cli import bench_main
    return bench_main(args.config, args.backend, args.threads, args.frames, args.warmup, args.repeats,
                      args.output, progress_wanted(args), overhead=not args.no_overhead)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import compare_folders
    from harness.tolerances import Thresholds
    given = {"psnr_min": args.psnr_min, "ssim_min": args.ssim_min, "identical_pct_min": args.identical_pct_min}
    thresholds = Thresholds.for_profile(args.profile).override({k: v for k, v in given.items() if v is not None})
    return compare_folders(args.dir_a, args.dir_b, args.pattern, args.pack, args.json, thresholds,
                           args.index_base, args.profile, args.stages_a, args.stages_b, progress_wanted(args))


def cmd_report(args: argparse.Namespace) -> int:
    from harness.results import read_results
    from reports.html import render_html
    from reports.junit import render_junit
    from reports.markdown import render_markdown
    documents = [read_results(path) for path in args.results]  # InputError (exit 2) names a bad file
    index = render_html(args.results, args.out)
    print(f"report -> {index}", file=sys.stderr)
    if args.junit:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(render_junit(documents))
        print(f"junit -> {args.junit}", file=sys.stderr)
    if args.markdown:
        print(render_markdown(documents))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """With a config: run it with every diagnosis on; with a results.json: read it. Print the causes."""
    from harness.diagnosis.explain import explain_text
    from harness.parity import exit_code
    if args.path.suffix == ".json":
        from harness.results import read_results
        results, path = read_results(args.path), args.path
    else:
        from harness.config import load_config
        from harness.parity import run_parity
        cfg = load_config(args.path, only=args.backend, output=args.output, frames=args.frames)
        cfg.explain = True
        results, path = run_parity(cfg, progress=progress_wanted(args))
    print(explain_text(results, args.backend))
    print(f"\nresults -> {path}")
    return exit_code(results)


def cmd_explain_layers(args: argparse.Namespace) -> int:
    from harness.diagnosis.layers import first_divergent_layer, frame_inputs
    models = _models(args.models, args.threads)
    inputs = frame_inputs(_source(args), args.audio, models, args.frame - 1, _conventions(args.conventions))
    options = {"INFERENCE_PRECISION_HINT": args.precision} if args.precision else None
    result = first_divergent_layer(models.files.generator, inputs, args.candidate, args.tolerance, options)
    print(f"{result['nodes_compared']} tensors compared, frame {args.frame}, candidate {args.candidate}; "
          f"final output max abs {result['final_max_abs']:.3g}")
    if result["node"] is None:
        print(f"no layer leaves the tolerance {args.tolerance:g}")
    else:
        print(f"first divergent layer: {result['node']} ({result['op_type']}, node {result['index']} in graph "
              f"order): max abs {result['max_abs']:.3g} > {args.tolerance:g}, relative L2 {result['rel_l2']:.3g}")
    for item in result["largest"]:
        print(f"  largest: {item['node']} ({item['op_type']}): max abs {item['max_abs']:.3g}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    if args.action == "report":
        from harness.history.store import default_store
        from reports.history import render_history
        print(f"history -> {render_history(args.store or default_store(), args.out)}")
        return 0
    from harness.history.cli import history_main
    return history_main(args)


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.history.cli import gate_main
    return gate_main(args)


COMMANDS = {"explain": cmd_explain, "explain-layers": cmd_explain_layers, "report": cmd_report, "infer": cmd_infer, "demo": cmd_demo, "fixtures": cmd_fixtures, "golden": cmd_golden,
            "check-golden": cmd_check_golden,
            "run": cmd_run, "bench": cmd_bench, "compare": cmd_compare, "history": cmd_history, "gate": cmd_gate}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (temporary files, port process groups) runs."""

    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated("SIGTERM")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises Terminated (main thread only; the old handler is restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (an unexpected exception is exit 3
    with one line on stderr and its traceback in a log file)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except Exception as exc:  # argparse itself failing (not a usage error: those exit 2 through SystemExit)
        from harness.crashlog import report_crash
        return report_crash(argv[0] if argv else "synctalk-parity", argv, exc)
    if isinstance(getattr(args, "frames", None), int) and args.frames < 1:
        print("error: --frames must be at least 1", file=sys.stderr)
        return 2
    try:
        with sigterm_as_interrupt():
            if hasattr(args, "handler"):  # a command whose parser names its handler (harness/convert/cli.py)
                return args.handler(args)
            return COMMANDS[args.command](args)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'SIGINT'}): files written before stay intact; a parity run's "
              "results.json keeps the runs that finished, marked partial", file=sys.stderr)
        return getattr(exc, "exit_code", 128 + signal.SIGINT)
    except Exception as exc:  # a bug or an engine's own error: never a bare traceback, never exit 1
        from harness.crashlog import report_crash
        return report_crash(args.command, argv, exc)


if __name__ == "__main__":
    sys.exit(main())
