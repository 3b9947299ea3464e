"""A fake port that writes 2 frames, complains on stderr and exits with code 3."""
import argparse
import os
import shutil
import sys

p = argparse.ArgumentParser()
for name in ("--sanders", "--audio", "--output", "--frames"):
    p.add_argument(name, required=True)
a = p.parse_args()
os.makedirs(a.output, exist_ok=True)
for k in (1, 2):
    shutil.copyfile(os.path.join(a.sanders, "full_body_img", f"{k}.jpg"), os.path.join(a.output, f"frame_{k:05d}.jpg"))
print("generating ...")
print("warning: something odd", file=sys.stderr)
print("fatal: generator.onnx: invalid protobuf", file=sys.stderr)
sys.exit(3)
