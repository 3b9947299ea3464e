"""The `synctalk-parity` argument parser, assembled from the commands' own `cli` modules.

Each package that owns commands adds them with its `add_parsers` (options, help and handler together,
see `harness.text.args`); this module only puts them in one parser, in the order `--help` lists them.
"""
from __future__ import annotations

import argparse

from fixtures import cli as fixtures_cli
from harness import demo
from harness.bench import cli as bench_cli
from harness.convert import cli as convert_cli
from harness.diagnosis import cli as diagnosis_cli
from harness.history import cli as history_cli
from harness.runs import cli as runs_cli
from harness.text.args import EPILOG
from reports import cli as reports_cli


def _render_report(results, folder):
    """`run --report DIR`'s renderer, handed down to the runs from the reports layer above them."""
    from reports.cli import render_report
    return render_report(results, folder)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; each subcommand's `handler` runs it."""
    parser = argparse.ArgumentParser(
        prog="synctalk-parity",
        description="Prove that ports of the SyncTalk_2D lip-sync pipeline produce the same frames, "
                    "find out why they do not, and measure how fast each one is.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parsers(sub)
    runs_cli.add_parsers(sub, _render_report)
    bench_cli.add_parsers(sub)
    diagnosis_cli.add_parsers(sub)
    convert_cli.add_parsers(sub)
    fixtures_cli.add_parsers(sub)
    history_actions = history_cli.add_parsers(sub)
    reports_cli.add_parsers(sub, history_actions)
    return parser
