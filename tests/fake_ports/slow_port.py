"""A port with a known speed: sleeps --startup seconds (an interpreter and model load), then writes
frame_%05d.jpg (1-based, copied from the pack's full_body_img) one every --per-frame seconds. It
prints no timing lines, so the harness must time it from the files it writes."""
import argparse
import os
import shutil
import time

p = argparse.ArgumentParser()
p.add_argument("--sanders", required=True)
p.add_argument("--audio", required=True)
p.add_argument("--output", required=True)
p.add_argument("--frames", type=int, required=True)
p.add_argument("--startup", type=float, default=1.0)
p.add_argument("--per-frame", type=float, default=0.05)
a = p.parse_args()

images = os.path.join(a.sanders, "full_body_img")
count = len(os.listdir(images))
os.makedirs(a.output, exist_ok=True)
time.sleep(a.startup)
for i in range(a.frames):
    time.sleep(a.per_frame)
    shutil.copyfile(os.path.join(images, f"{i % count + 1}.jpg"), os.path.join(a.output, "frame_%05d.jpg" % (i + 1)))
