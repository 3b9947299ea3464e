"""A port with a known speed: sleeps --startup seconds (an interpreter and model load), then writes
frame_%05d.jpg (1-based, copied from the pack's full_body_img) one every --per-frame seconds. It
prints no timing lines, so the harness must time it from the files it writes. With --crash-after K
it exits with code 3 (a complaint on stderr) after writing K frames. $SLOW_PORT_PER_FRAME is the
default of --per-frame: a slowdown injected without changing the port's configured command."""
import argparse
import os
import shutil
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--sanders", required=True)
p.add_argument("--audio", required=True)
p.add_argument("--output", required=True)
p.add_argument("--frames", type=int, required=True)
p.add_argument("--startup", type=float, default=1.0)
p.add_argument("--per-frame", type=float, default=float(os.environ.get("SLOW_PORT_PER_FRAME") or 0.05))
p.add_argument("--crash-after", type=int, default=None)
a = p.parse_args()

images = os.path.join(a.sanders, "full_body_img")
count = len(os.listdir(images))
os.makedirs(a.output, exist_ok=True)
time.sleep(a.startup)
for i in range(a.frames):
    if i == a.crash_after:
        print("fatal: generator.onnx: out of memory", file=sys.stderr)
        sys.exit(3)
    time.sleep(a.per_frame)
    shutil.copyfile(os.path.join(images, f"{i % count + 1}.jpg"), os.path.join(a.output, "frame_%05d.jpg" % (i + 1)))
