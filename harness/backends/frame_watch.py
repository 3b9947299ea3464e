"""Timing a port from what it writes: a thread that watches the output folder while the port runs.

`FrameWatcher` polls ``os.scandir`` of the frames folder every few milliseconds and records when
each expected frame file first appears (``time.perf_counter``, seconds after the port's start);
`harness.verdicts.timing.steady_from_appearances` turns those times into the time to first frame, the
steady-state FPS and the per-frame interval percentiles. A file's ``st_mtime_ns`` is
kept beside it as a cross-check (the last write, so a little later than the appearance).
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

POLL_S = 0.003  # seconds between two scans of the output folder


class FrameWatcher:
    """Records the first appearance of each of `names` (frame i is ``names[i]``) in `folder`."""

    def __init__(self, folder: Path, names: list[str], poll_s: float = POLL_S) -> None:
        self.folder = str(folder)
        self.index = {name: i for i, name in enumerate(names)}
        self.appear: list[float | None] = [None] * len(names)
        self.mtime_ns: list[int | None] = [None] * len(names)
        self.poll_s = poll_s
        self.start = time.perf_counter()
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="frame-watch", daemon=True)

    def begin(self, start: float) -> None:
        """Start watching; appearance times are relative to `start` (``perf_counter`` of the port's start)."""
        self.start = start
        self._thread.start()

    def _scan(self) -> None:
        now = time.perf_counter() - self.start
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        for entry in entries:
            i = self.index.get(entry.name)
            if i is None or self.appear[i] is not None:
                continue
            self.appear[i] = now
            self._seen += 1
            try:
                self.mtime_ns[i] = entry.stat().st_mtime_ns
            except OSError:
                pass

    def _loop(self) -> None:
        while not self._stop.is_set() and self._seen < len(self.appear):
            self._scan()
            self._stop.wait(self.poll_s)

    def finish(self) -> list[float | None]:
        """Stop the thread (after one last scan) and return the appearance times (None: never seen)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._seen < len(self.appear):
            self._scan()
        return list(self.appear)

    def mtime_span_s(self) -> float | None:
        """Seconds between the first and the last frame's ``st_mtime_ns`` (the cross-check), if both known."""
        first, last = self.mtime_ns[0] if self.mtime_ns else None, self.mtime_ns[-1] if self.mtime_ns else None
        return None if first is None or last is None else (last - first) / 1e9
