"""The commit a run belongs to: from git in a folder, or given by the user (``--commit``)."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from reference.errors import ParityError


class CommitError(ParityError):
    """No commit could be found for a run (exit 2)."""


@dataclass(frozen=True)
class Commit:
    """A commit: its hash (as git spells it, or as given), its committer time (Unix seconds, None when git
    does not know it) and the branch the run is filed under (None: none)."""

    sha: str
    time: int | None
    branch: str | None


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def find_commit(folder: Path, commit: str | None = None, branch: str | None = None) -> Commit:
    """The commit of `folder`'s git checkout (HEAD), or `commit` as given (expanded to the full hash, with
    its time, when `folder`'s git knows it); the branch is `branch`, else the checkout's current branch
    (None when detached). CommitError when there is neither a checkout nor `commit`."""
    if commit is not None and not commit.strip():
        raise CommitError("--commit is empty: give a commit hash or leave --commit out inside a git checkout")
    full = _git(folder, "rev-parse", "--verify", "--quiet", f"{commit or 'HEAD'}^{{commit}}")
    if full is None and commit is None:
        raise CommitError(f"{folder}: not in a git checkout (or git is not installed), so the run's commit is "
                          "unknown: give it with --commit HASH")
    when = _git(folder, "show", "-s", "--format=%ct", full) if full else None
    if branch is None and commit is None:
        current = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
        branch = current if current and current != "HEAD" else None
    return Commit(full or commit.strip(), int(when) if when else None, branch)
