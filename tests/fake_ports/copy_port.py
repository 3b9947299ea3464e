"""A well-behaved fake port: frame_%05d.jpg (1-based) copied from the pack's full_body_img.

Prints JSON stage-timing lines mixed with garbage. Extras: --dump writes the Go-style
debug_audio_go_frame{i}.bin (0-based, 32x16x16 float32) into the cwd (--dump-floats changes
the size); --npy writes audio_windows_{i}.npy and mel.npy into the output folder; --extra K
writes K frames more; --argv-out FILE records sys.argv as JSON; --env-out NAME writes
os.environ[NAME] into the output folder.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--sanders", required=True)
p.add_argument("--audio", required=True)
p.add_argument("--output", required=True)
p.add_argument("--frames", type=int, required=True)
p.add_argument("--pattern", default="frame_%05d.jpg")
p.add_argument("--index-base", type=int, default=1)
p.add_argument("--extra", type=int, default=0)
p.add_argument("--dump", action="store_true")
p.add_argument("--dump-floats", type=int, default=32 * 16 * 16)
p.add_argument("--npy", action="store_true")
p.add_argument("--argv-out")
p.add_argument("--env-out")
a = p.parse_args()

if a.argv_out:
    with open(a.argv_out, "w") as f:
        json.dump(sys.argv, f)
if not os.path.isfile(a.audio):
    sys.exit(f"no audio file {a.audio}")
images = os.path.join(a.sanders, "full_body_img")
count = len(os.listdir(images))
os.makedirs(a.output, exist_ok=True)
print("loading models ...")
print('{"stage": "audio_encoder", "ms": 12.5}')
print("{not json at all")
print('{"stage": 5, "ms": 1}')
print('[1, 2, 3]')
print('{"stage": "generator", "ms": "fast"}')
sys.stdout.flush()
sys.stdout.buffer.write(b"\xff\xfe binary garbage \x00\n")
for i in range(a.frames + a.extra):
    src = os.path.join(images, f"{i % count + 1}.jpg")
    shutil.copyfile(src, os.path.join(a.output, a.pattern % (i + a.index_base)))
    print(json.dumps({"stage": "generator", "ms": 40.0 + i}))
    print(json.dumps({"stage": "frame", "ms": 50.0 + i}))
    if a.dump:
        np.full(a.dump_floats, i, dtype="<f4").tofile(f"debug_audio_go_frame{i}.bin")
    if a.npy:
        np.save(os.path.join(a.output, f"audio_windows_{i}.npy"), np.full((32, 16, 16), i, np.float32))
if a.npy:
    np.save(os.path.join(a.output, "mel.npy"), np.zeros((50, 80), np.float32))
if a.env_out:
    with open(os.path.join(a.output, "env.txt"), "w") as f:
        f.write(os.environ.get(a.env_out, ""))
print("done", end="")  # no trailing newline
