"""Process-group checks shared by the fault tests: no process of a killed port may be left running."""
from __future__ import annotations

import os
import time
from pathlib import Path


def live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that are not zombies (a dead orphan waiting for PID 1 runs nothing)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def group_gone(pgid: int, seconds: float = 5.0) -> bool:
    """Whether process group `pgid` is gone: `os.killpg(pgid, 0)` raises ProcessLookupError within `seconds`.
    Killed orphans are reparented to PID 1, which may take a moment to reap them."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def assert_port_group_gone(pidfile: Path) -> None:
    """The hang port wrote "<port pid> <child pid>" to `pidfile`; the port led its own process group
    (start_new_session): that group, the child included, must be gone."""
    port_pid, child_pid = (int(p) for p in pidfile.read_text().split())
    if not group_gone(port_pid):
        assert live_members(port_pid) == [], f"process group {port_pid} of the port survived"
    assert child_pid not in live_members(port_pid)
