"""The `synctalk-parity` command line: parse, run the subcommand's handler, turn every fault into its exit
code (docs/results.md)."""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from harness.cli_args import build_parser
from reference.errors import ParityError


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
        from harness.system.crashlog import report_crash
        return report_crash(argv[0] if argv else "synctalk-parity", argv, exc)
    if isinstance(getattr(args, "frames", None), int) and args.frames < 1:
        print("error: --frames must be at least 1", file=sys.stderr)
        return 2
    try:
        with sigterm_as_interrupt():
            return args.handler(args)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'SIGINT'}): files written before stay intact; a parity run's "
              "results.json keeps the runs that finished, marked partial", file=sys.stderr)
        return getattr(exc, "exit_code", 128 + signal.SIGINT)
    except Exception as exc:  # a bug or an engine's own error: never a bare traceback, never exit 1
        from harness.system.crashlog import report_crash
        return report_crash(args.command, argv, exc)


if __name__ == "__main__":
    sys.exit(main())
