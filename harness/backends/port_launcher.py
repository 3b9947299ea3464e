"""Start a port from a small process and report the port's own resource usage (run as a script).

On Linux a process's peak RSS (``ru_maxrss``) starts at the RSS of the process it was forked from
(exec keeps the high-water mark), so a port started directly by the harness would report at least
the harness's own peak. This launcher, a bare interpreter of a few MB, spawns the port, waits for
it with ``os.wait4`` and writes the port's ``ru_maxrss`` and CPU times as JSON to REPORT; it then
exits with the port's exit status (or dies of the port's signal). SIGINT and SIGTERM are ignored
here (the port gets them through its process group) so that the launcher outlives the port.

Usage: python -I -S port_launcher.py REPORT EXECUTABLE [ARG ...]
"""
import json
import os
import signal
import sys


def _write(path: str, doc: dict) -> None:
    with open(path, "w") as fh:
        json.dump(doc, fh)


def main() -> int:
    report, argv = sys.argv[1], sys.argv[2:]
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, setsigdef=(signal.SIGINT, signal.SIGTERM))
    except OSError as exc:
        _write(report, {"error": f"{type(exc).__name__}: {exc}"})
        return 127
    _, status, usage = os.wait4(pid, 0)
    _write(report, {"ru_maxrss": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime})
    code = os.waitstatus_to_exitcode(status)
    if code < 0:  # die of the port's signal, so the harness sees what the port saw
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP: always the default
            pass
        os.kill(os.getpid(), -code)
    return code & 0xFF


if __name__ == "__main__":
    sys.exit(main())
