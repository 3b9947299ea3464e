"""A fake port that kills itself with a signal (--signal KILL or SEGV; default KILL)."""
import argparse
import os
import resource
import signal

p = argparse.ArgumentParser()
for name in ("--sanders", "--audio", "--output", "--frames"):
    p.add_argument(name, required=True)
p.add_argument("--signal", default="KILL", choices=("KILL", "SEGV"))
a = p.parse_args()
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
if a.signal == "SEGV":
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
os.kill(os.getpid(), getattr(signal, "SIG" + a.signal))
