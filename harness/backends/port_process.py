"""A started port, supervised in a thread: its exit (or time-out), its process group's kill, its reaping.

`PortProcess` does from a thread what the backend used to do blocking after the start, so that the
caller can read and compare frames while the port still writes: poll for the exit until the
time-out (then SIGTERM, the grace, and SIGKILL for the whole group), reap the port with
``os.wait4`` and stop the `FrameWatcher`. The wall time it records ends when the exit is seen,
however busy the caller is. `stop` (Ctrl-C, a failed comparison) kills the group at once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from harness.backends.frame_watch import FrameWatcher

READY_POLL_S = 0.003  # seconds between two looks for the next frame file


class Child:
    """Exit polling for the port process.

    With ``os.waitid`` (Linux) the exited port is left unreaped until the end, so its pid keeps
    its process-group id reserved while the group is killed; without it (some platforms) the
    port is reaped by ``os.wait4(WNOHANG)`` when it exits and its status kept.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._reaped: tuple[int, object] | None = None

    def exited(self) -> bool:
        if self._reaped is not None:
            return True
        if hasattr(os, "waitid"):
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self._reaped = (status, rusage)
        return True

    def wait_until(self, deadline: float, abort: threading.Event | None = None) -> bool:
        """Poll until the port has exited (True) or `deadline` (monotonic) passes or `abort` is set (False)."""
        delay = 0.001
        while True:
            if self.exited():
                return True
            now = time.monotonic()
            if now >= deadline or (abort is not None and abort.is_set()):
                return False
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.05)

    def reap(self) -> tuple[int, object]:
        """(wait status, rusage), waiting for the exit if needed."""
        if self._reaped is None:
            _, status, rusage = os.wait4(self.pid, 0)
            self._reaped = (status, rusage)
        return self._reaped


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_group_gone(pgid: int, seconds: float = 0.5) -> None:
    """Give a SIGKILLed group a moment to disappear (bounded: orphans that died stay in the group
    as zombies where PID 1 does not reap them, as in some containers)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


@dataclass
class PortExit:
    """How the port ended: wall seconds from its start, rusage, time-out, frame appearances (its exit code is on the Popen)."""

    elapsed: float
    rusage: object
    timed_out: bool
    appear: list[float | None]


class PortProcess:
    """Supervises `proc` (started at ``perf_counter`` `start`, leader of its own process group) in a thread."""

    def __init__(self, proc: subprocess.Popen, start: float, watcher: FrameWatcher, timeout: float,
                 kill_grace: float) -> None:
        self.proc, self.start, self.watcher = proc, start, watcher
        self.deadline, self.kill_grace = time.monotonic() + timeout, kill_grace
        self.exit: PortExit | None = None
        self._error: BaseException | None = None
        self._done, self._abort = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._supervise, name="port-supervisor", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        try:
            self.exit = self._wait_and_kill()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            self._error = exc
        finally:
            self._done.set()

    def _wait_and_kill(self) -> PortExit:
        pid = pgid = self.proc.pid  # start_new_session: the launcher leads the port's session and process group
        child, timed_out = Child(pid), False
        try:
            if not child.wait_until(self.deadline, self._abort) and not self._abort.is_set():
                timed_out = True
                killpg(pgid, signal.SIGTERM)
                child.wait_until(time.monotonic() + self.kill_grace, self._abort)
        finally:
            elapsed = time.perf_counter() - self.start
            # Kill whatever is left in the group (after a timeout, or processes the port left
            # running); the port itself is not reaped yet (with waitid), so its id cannot have
            # been reused by an unrelated process group.
            killpg(pgid, signal.SIGKILL)
            status, rusage = child.reap()
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            wait_group_gone(pgid)
            appear = self.watcher.finish()
        return PortExit(elapsed, rusage, timed_out, appear)

    def frame_ready(self, i: int) -> bool:
        """Wait until frame `i` is complete while the port runs (True: frame i + 1's file appeared) or the
        port has ended (False: its frames are read after the exit checks)."""
        nxt = i + 1
        while not self._done.is_set():
            if nxt < len(self.watcher.appear) and self.watcher.appear[nxt] is not None:
                return True
            self._done.wait(READY_POLL_S)
        return False

    def wait(self) -> PortExit:
        """Block until the port has ended and been reaped; interrupted (Ctrl-C), the group is killed first."""
        try:
            while not self._done.wait(0.05):
                pass
        except BaseException:
            self.stop()
            raise
        if self._error is not None:
            raise self._error
        assert self.exit is not None
        return self.exit

    def stop(self) -> None:
        """Kill the port's group now if it still runs, and wait until it is reaped."""
        self._abort.set()
        self._thread.join()
