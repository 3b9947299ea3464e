"""A fake port that starts a sleeping child, writes "<own pid> <child pid>" to --pidfile, then hangs.

--ignore-term: both ignore SIGTERM, so only SIGKILL ends them.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
for name in ("--sanders", "--audio", "--output", "--frames"):
    p.add_argument(name, required=True)
p.add_argument("--pidfile", required=True)
p.add_argument("--ignore-term", action="store_true")
a = p.parse_args()
if a.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child (ignored stays ignored across exec)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(a.pidfile + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(a.pidfile + ".tmp", a.pidfile)
print("working ...", flush=True)
while True:
    time.sleep(60)
