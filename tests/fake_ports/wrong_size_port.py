"""A fake port that writes all N frames at 640x360 instead of the pack's size."""
import argparse
import os

import cv2

p = argparse.ArgumentParser()
for name in ("--sanders", "--audio", "--output"):
    p.add_argument(name, required=True)
p.add_argument("--frames", type=int, required=True)
a = p.parse_args()
os.makedirs(a.output, exist_ok=True)
for k in range(1, a.frames + 1):
    img = cv2.imread(os.path.join(a.sanders, "full_body_img", f"{k}.jpg"))
    cv2.imwrite(os.path.join(a.output, f"frame_{k:05d}.jpg"), cv2.resize(img, (640, 360), interpolation=cv2.INTER_AREA))
