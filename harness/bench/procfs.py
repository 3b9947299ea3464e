"""Probes of this process: peak RSS and thread count from ``/proc/self`` (None off Linux), CPU time."""
from __future__ import annotations

import os
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
