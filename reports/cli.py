"""`synctalk-parity report` and `history report`: their options and handlers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.text.args import command


def add_parsers(sub, history_actions) -> None:
    """`report`, and the `report` action of `history` (`history_actions`, the history command's actions)."""
    p = command(sub, "report", cmd_report)
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json", help="results files to merge")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="report folder")
    p.add_argument("--markdown", action="store_true",
                   help="also print a markdown summary to stdout (fits $GITHUB_STEP_SUMMARY)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the verdicts as JUnit XML")

    from harness.history.cli import store_arg
    a = history_actions.add_parser(
        "report", help="render the history page: trend charts per backend and metric",
        description="Render the store into a self-contained HTML page (DIR/index.html, charts beside it): per "
                    "backend, worst PSNR, identical %, steady FPS over the bare generator, p99 latency and RSS "
                    "over commits, one line per machine and branch (a branch drawn from the main commit it was "
                    "gated against), change points marked where the gate found a change against a run's "
                    "baseline, and the bill of deviations per commit.")
    a.set_defaults(handler=cmd_history_report)
    store_arg(a)
    a.add_argument("--out", type=Path, required=True, metavar="DIR", help="report folder")


def render_report(results: list[Path], folder: Path) -> Path:
    """The HTML report of `results` in `folder`; its index.html."""
    from reports.html import render_html
    return render_html(results, folder)


def cmd_report(args: argparse.Namespace) -> int:
    """Render results.json files (several machines merge) into an HTML report.

    Render one or more results.json files into a self-contained HTML report (DIR/index.html, images
    beside it; opens offline). Nothing is re-run.
    """
    from harness.verdicts.results import read_results
    from reports.junit import render_junit
    from reports.markdown import render_markdown
    documents = [read_results(path) for path in args.results]  # InputError (exit 2) names a bad file
    index = render_report(args.results, args.out)
    print(f"report -> {index}", file=sys.stderr)
    if args.junit:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        args.junit.write_text(render_junit(documents))
        print(f"junit -> {args.junit}", file=sys.stderr)
    if args.markdown:
        print(render_markdown(documents))
    return 0


def cmd_history_report(args: argparse.Namespace) -> int:
    from harness.history.store import default_store
    from reports.history import render_history
    print(f"history -> {render_history(args.store or default_store(), args.out)}")
    return 0
