"""The command-line pieces every command shares: the epilog, the common options and what they open.

Each package that owns commands has a `cli.py` with `add_parsers(sub)`: it adds its subcommands
with `command` and sets each one's `handler` (args -> exit code); `harness.cli_args` only assembles
them. Handlers import what they run inside their body, so that building the whole parser stays cheap
(`tests/test_imports.py`).
"""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Callable

from reference.errors import ParityError

PROFILE_NAMES = ("exact", "desktop", "mobile", "lossy")  # harness.verdicts.tolerances.PROFILES, not imported: a slow import

EPILOG = """exit codes: 0 success, 1 parity/perf threshold failed (only that), 2 usage, config or input error,
3 infrastructure error (a backend could not run, an engine error, an unexpected crash: the traceback
goes to a log file under $SYNCTALK_PARITY_CACHE/logs, default ~/.cache/synctalk-parity/logs).
Docs: README.md and docs/ (pipeline, conventions, metrics, results, ports, coreml)."""

Handler = Callable[[argparse.Namespace], int]


class UsageError(ParityError):
    """A command-line argument is wrong."""


def command(sub, name: str, handler: Handler | None, help: str | None = None,
            description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand's parser with the common epilog, dispatching to `handler` (None: its subcommands do).
    Its help (the line in the command list) and description are `help` and `description`, by default the
    first line of the handler's docstring and the paragraphs after it."""
    if help is None:
        doc = inspect.cleandoc(getattr(handler, "func", handler).__doc__)  # a functools.partial's function
        summary, _, details = doc.partition("\n\n")
        help, description = (summary[0].lower() + summary[1:].rstrip(".")).replace("%", "%%"), details or None
    p = sub.add_parser(name, help=help, description=description, epilog=EPILOG)
    if handler is not None:
        p.set_defaults(handler=handler)
    return p


def add_source_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--pack", "--sanders", dest="pack", type=Path, metavar="DIR",
                       help="pre-cut pack (full_body_img/, crops_328/, rois_320/, cache/crop_rectangles.json); "
                            "--sanders is the alias the existing ports use")
    group.add_argument("--dataset", type=Path, metavar="DIR",
                       help="raw SyncTalk_2D dataset (full_body_img/, landmarks/); rects come from landmarks")


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The inputs of one reference run: source, audio, models, frames, threads, conventions."""
    add_source_args(p)
    p.add_argument("--audio", type=Path, required=True, metavar="WAV",
                   help="input audio; any rate, channel count and sample format soundfile reads")
    p.add_argument("--models", type=Path, required=True, metavar="DIR",
                   help="folder with audio_encoder.onnx and generator.onnx (or a models/ subfolder): "
                        "the synthetic ones or the real trained models")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="first N frames (default: all, one per padded audio feature row)")
    p.add_argument("--threads", type=int, default=0, metavar="T",
                   help="cores for ONNX Runtime (default 0: all); infer and golden run one single-threaded "
                        "generator session per core (at most 8), consecutive frames in parallel")
    p.add_argument("--conventions", default="", metavar="KNOB=VALUE,...",
                   help="run a convention variant instead of the canonical pipeline, e.g. "
                        "'audio_window=tile,template_order=linear' (see docs/conventions.md)")


def add_backend_args(p: argparse.ArgumentParser, only: str = "only this backend (repeatable)",
                     output: str = "override [run].output") -> None:
    """``--backend`` (repeatable) and ``--output``, as the commands that take a parity config have them."""
    p.add_argument("--backend", action="append", metavar="NAME", help=only)
    p.add_argument("--output", type=Path, metavar="DIR", help=output)


def add_progress_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: only when stderr is a terminal, never in a CI log)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (same as --no-progress)")


def progress_wanted(args: argparse.Namespace) -> bool:
    from harness.text.terminal import progress_enabled
    return False if getattr(args, "quiet", False) else progress_enabled(getattr(args, "progress", None))


def source_of(args: argparse.Namespace):
    """The pack (``--pack``) or raw dataset (``--dataset``) the arguments name."""
    from reference.data import Dataset, Pack, open_source
    if args.pack is not None:
        source = open_source(args.pack)
        if not isinstance(source, Pack):
            from reference.errors import InputError
            raise InputError(args.pack, "this is a raw dataset, not a pre-cut pack", "use --dataset instead")
        return source
    return Dataset(args.dataset)


def models_of(args: argparse.Namespace, frames_in_parallel: bool = True):
    """The models of ``--models`` on ``--threads`` cores: with `frames_in_parallel` the reference's engine
    (one single-threaded generator session per core, `reference_models`), else one session on that many
    intra-op threads."""
    from reference.models import ModelFiles, Models, reference_models
    files = ModelFiles.from_dir(args.models)
    return reference_models(files, args.threads) if frames_in_parallel else Models(files, threads=args.threads)


def conventions_of(text: str):
    """``--conventions`` parsed; UsageError naming the option."""
    from reference.conventions import Conventions
    try:
        return Conventions.parse(text)
    except ValueError as exc:
        raise UsageError(f"--conventions: {exc}") from None
