"""`synctalk-parity history add|list` and `synctalk-parity gate`: their options and what they do.

(`history report` renders with `reports.history`, a layer above: `reports.cli` adds that action.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the CLI's start-up stays light
    from harness.history.gate import GateSettings
    from harness.history.snapshot import Snapshot

from harness.text.args import command

BRANCH_PREFIX = "branch:"
GATE_EXIT = ("exit codes: 0 no regression, 1 a regression the data supports, 2 nothing could be compared (other "
             "machine, backend, audio or inputs: the message says why) or bad input, 3 an unexpected crash.")


def add_parsers(sub):
    """The `history` and `gate` subcommands; returns the history command's actions, to which
    `reports.cli` adds `report`."""
    from harness.history.stats import REPEATS
    p = command(sub, "history", None,
                help="file runs into the history store, list them, render the history page",
                description="A history of parity and speed per commit and machine, in one SQLite file "
                            "(default $SYNCTALK_PARITY_HISTORY, else ~/.local/share/synctalk-parity/history.sqlite).")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("add", help="file every run of results.json / bench.json files under a commit",
                           description="File every run of the given results.json or bench.json files under the "
                                       "commit (git HEAD of the current folder, or --commit), the machine "
                                       "fingerprint (CPU model and count, OS, library versions), the backend, "
                                       "audio and config hash. Adding a run again changes nothing; a bad file is "
                                       "refused and the store is left as it was.")
    a.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json", help="results.json or bench.json files")
    store_arg(a)
    a.add_argument("--commit", metavar="HASH", help="the commit the runs belong to (default: git HEAD of this folder)")
    a.add_argument("--branch", metavar="NAME",
                   help="the branch to file them under (default: the checkout's branch; none when detached or "
                        "with --commit); `gate --against branch:NAME` compares with a branch's latest runs")
    a.set_defaults(handler=history_main)
    a = actions.add_parser("list", help="the runs in the store, oldest commit first")
    a.set_defaults(handler=history_main)
    store_arg(a)

    p = command(sub, "gate", gate_main,
                help="compare a run with its baseline: exit 1 only on a regression the data supports",
                description="Compare every run of RESULTS.json with the baseline's run of the same backend and "
                            "audio on an alike machine: the verdict, worst PSNR, identical %, feature drift per "
                            "stage, the bill of deviations (on the latest run of each side), and speed: with "
                            "several runs a side (repeats, best interleaved with the baseline's), Mann-Whitney U on "
                            "the runs' median latencies; with one run a side, on the per-frame latencies, counted "
                            "only past the run-to-run noise (from the branch's runs in the store, or --noise). "
                            "Prints one line per regression, then the improvements, then how many comparisons did "
                            "not change. " + GATE_EXIT)
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json",
                   help="the run to judge (results.json or bench.json); several files are repeats, and with "
                        f"{REPEATS} or more quiet runs a side speed is judged on the runs' medians")
    p.add_argument("--against", required=True, nargs="+", metavar="BASELINE",
                   help="results.json (or bench.json) files, or branch:NAME for the store's runs of each backend "
                        "and audio of that branch's latest commit with this machine's fingerprint")
    store_arg(p, "the store that branch:NAME reads")
    add_gate_settings(p)
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the result as a markdown table "
                   "(append it to $GITHUB_STEP_SUMMARY)")
    return actions


def store_arg(p: argparse.ArgumentParser, what: str = "the history store") -> None:
    p.add_argument("--store", type=Path, metavar="PATH",
                   help=f"{what} (default $SYNCTALK_PARITY_HISTORY, else ~/.local/share/synctalk-parity/history.sqlite)")


def add_gate_settings(p: argparse.ArgumentParser) -> None:
    """The gate's thresholds as options."""
    from harness.history.gate import GateSettings
    add = p.add_argument
    d = GateSettings()
    add("--alpha", type=float, default=d.alpha, metavar="P",
        help=f"speed: the Mann-Whitney test's significance level (default {d.alpha:g})")
    add("--min-effect", type=float, default=d.min_effect, metavar="R",
        help=f"speed: the smallest change of the median frame latency that counts (default {d.min_effect:g} = "
             f"{100 * d.min_effect:g} %%)")
    add("--psnr-drop", type=float, default=d.psnr_drop_db, metavar="DB",
        help=f"the fall of the worst PSNR that counts (default {d.psnr_drop_db:g} dB)")
    add("--identical-drop", type=float, default=d.identical_drop_pct, metavar="PCT",
        help=f"the fall of identical %% that counts, in points (default {d.identical_drop_pct:g}: any fall)")
    add("--noise", type=float, metavar="R",
        help="speed: the run-to-run noise of the backends on this machine (e.g. 0.12 = 12 %%, from A/A runs): only a "
             "larger change counts (default: from the baseline branch's latest quiet runs in the store, else unknown)")
    add("--max-background", type=float, default=d.max_background, metavar="SHARE",
        help=f"speed: compared only when other processes used at most this share of the CPU during both runs "
             f"(default {d.max_background:g}: a busier machine measures their work as much as this one)")


def settings_of(values: argparse.Namespace):
    """GateSettings from parsed options (`add_gate_settings`)."""
    from harness.history.gate import GateSettings
    return GateSettings(values.alpha, values.min_effect, values.psnr_drop, values.identical_drop,
                        values.max_background, values.noise)


def _store(args: argparse.Namespace) -> Path:
    from harness.history.store import default_store
    return args.store or default_store()


def read_complete(path: Path) -> dict:
    """A results (or bench) file, read and validated; InputError for a partial one."""
    from harness.verdicts.results import read_results
    from reference.errors import InputError
    results = read_results(path)
    if results.get("partial"):
        raise InputError(path, "a partial results file (the run did not finish)", "run it again to the end")
    return results


def history_main(args: argparse.Namespace) -> int:
    """`history add` and `history list`."""
    from harness.history.store import add_results, load_runs
    store = _store(args)
    if args.action == "add":
        from harness.history.commits import find_commit
        documents = [(path, read_complete(path)) for path in args.results]  # every file checked before a write
        commit = find_commit(Path.cwd(), args.commit, args.branch)
        done = add_results(store, documents, commit)
        print(f"{done.added} run(s) filed, {done.already} already there, under {commit.sha[:12]}"
              f"{' on ' + commit.branch if commit.branch else ''} -> {store}")
        return 0
    from harness.text.tables import grid
    rows = [("commit", "branch", "machine", "fingerprint", "mode", "backend", "audio", "status", "created")]
    rows += [(r.commit.sha[:12], r.commit.branch or "-", r.machine or "-", r.fingerprint, r.mode, r.backend,
              r.audio, r.status, r.created[:19]) for r in load_runs(store)]
    print("\n".join(grid(rows)) if len(rows) > 1 else f"{store}: no runs")
    return 0


def baseline_of(against: list[str], store: Path, after: list[Snapshot], settings: GateSettings
                ) -> tuple[list[Snapshot], str, dict, dict]:
    """The baseline snapshots for `after`, a description of them, why some have none and the run-to-run
    noise of each (both by `pair_key`): from results files (noise unknown), or (``branch:NAME``) the
    store's runs of each on that branch with its fingerprint (`baseline.branch_baseline`)."""
    from harness.history.baseline import branch_baseline
    from harness.history.gate import pair_key
    from harness.history.snapshot import snapshots
    from reference.errors import InputError
    branches = [a for a in against if a.startswith(BRANCH_PREFIX)]
    if not branches:
        for path in against:
            if not Path(path).is_file():
                raise InputError(path, "baseline not found",
                                 f"give a results.json, or {BRANCH_PREFIX}NAME for the store's latest runs on a branch")
        return [s for path in against for s in snapshots(read_complete(Path(path)))], ", ".join(against), {}, {}
    if len(against) > 1:
        raise InputError(branches[0], f"{BRANCH_PREFIX}NAME is the whole baseline", "give it alone, or results files")
    branch = branches[0][len(BRANCH_PREFIX):]
    if not branch:
        raise InputError(branches[0], "no branch name after branch:", "e.g. --against branch:main")
    found, missing, noise = [], {}, {}
    for snap in after:
        if pair_key(snap) in noise or pair_key(snap) in missing:
            continue
        runs, noise_of = branch_baseline(store, branch, snap, settings)
        if not runs:
            missing[pair_key(snap)] = (f"no {snap.mode} run on branch {branch} with this machine's fingerprint "
                                       f"{snap.fingerprint} in the store")
            continue
        found += runs
        noise[pair_key(snap)] = noise_of
    commits = sorted({b.commit.sha[:12] for b in found})
    return found, f"branch {branch} ({', '.join(commits) or 'no run'}) in {store}", missing, noise


def run_gate(results: list[Path], against: list[str], store: Path | None = None, settings=None):
    """The gate of the results files `results` (repeats when several) against `against` (results files, or
    ``branch:NAME`` of `store`, default `default_store()`): (GateResult, a description of the baseline)."""
    from harness.history.gate import GateSettings, compare
    from harness.history.snapshot import snapshots
    from harness.history.store import default_store
    after = [s for path in results for s in snapshots(read_complete(path))]
    settings = settings or GateSettings()
    before, described, missing, noise = baseline_of(against, store or default_store(), after, settings)
    return compare(before, after, settings, missing, noise), described


def gate_main(args: argparse.Namespace) -> int:
    """`synctalk-parity gate`: the text on stdout, the markdown table with --markdown; the exit code."""
    result, described = run_gate(args.results, args.against, args.store, settings_of(args))
    print(result.text(described))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(result.markdown(described))
        print(f"markdown -> {args.markdown}", file=sys.stderr)
    return result.exit_code
