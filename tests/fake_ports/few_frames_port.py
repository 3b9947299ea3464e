"""A fake port that writes only N-2 frames (frame_%05d.jpg, 1-based) and exits 0."""
import argparse
import os
import shutil

p = argparse.ArgumentParser()
for name in ("--sanders", "--audio", "--output"):
    p.add_argument(name, required=True)
p.add_argument("--frames", type=int, required=True)
a = p.parse_args()
os.makedirs(a.output, exist_ok=True)
for k in range(1, a.frames - 1):
    shutil.copyfile(os.path.join(a.sanders, "full_body_img", f"{k}.jpg"), os.path.join(a.output, f"frame_{k:05d}.jpg"))
