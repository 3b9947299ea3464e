"""Probes of this process: peak RSS and thread count from ``/proc/self`` (None off Linux), CPU time; and
of the machine: how much CPU other processes used while a run ran (`BackgroundProbe`, Linux)."""
from __future__ import annotations

import os
import time
from pathlib import Path


def _status_fields() -> dict[str, str]:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs``); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """This process's RSS high-water mark (``VmHWM``) in MiB; None off Linux."""
    value = _status_fields().get("VmHWM")
    return int(value.split()[0]) / 1024.0 if value else None


def os_threads() -> int | None:
    """Threads of this process now (``/proc/self/status``); None off Linux."""
    value = _status_fields().get("Threads")
    return int(value.strip()) if value else None


def cores() -> int:
    """CPU cores of the machine (1 when unknown)."""
    return os.cpu_count() or 1


def cpu_seconds(before: os.times_result, after: os.times_result) -> float:
    """User + system CPU seconds of this process between two `os.times()`."""
    return (after.user - before.user) + (after.system - before.system)


def machine_busy_seconds() -> float | None:
    """CPU seconds every core of the machine has spent busy since boot (``/proc/stat``: user, nice,
    system, irq, softirq and steal); None off Linux."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class BackgroundProbe:
    """The share of the machine's CPU that *other* processes used between `__init__` and `share()`: the
    machine's busy time (`machine_busy_seconds`) less this process's and its waited-for children's (a
    port and everything it waited for), over cores x wall time. A run whose latencies grew while the
    machine was busy with other work says so. None off Linux."""

    def __init__(self) -> None:
        self.busy, self.own, self.wall = machine_busy_seconds(), _own_seconds(), time.perf_counter()

    def share(self) -> float | None:
        busy = machine_busy_seconds()
        wall = time.perf_counter() - self.wall
        if busy is None or self.busy is None or wall <= 0:
            return None
        others = (busy - self.busy) - (_own_seconds() - self.own)
        return min(max(others / (cores() * wall), 0.0), 1.0)
