"""A fake port that copies the pack's frames and writes stages into $SYNCTALK_PARITY_DUMP_DIR.

audio_windows/<i>.f32 (frame i, 32x16x16 float32 of value i) for every frame, mel/<k>.npy (80
values of k) for 5 rows; --stale-mel writes mel/0.npy with an mtime an hour old; --twin writes
audio_windows/0.npy beside 0.f32; --no-row0 skips audio_windows/0.f32.
"""
import argparse
import os
import shutil

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--sanders", required=True)
p.add_argument("--audio", required=True)
p.add_argument("--output", required=True)
p.add_argument("--frames", type=int, required=True)
p.add_argument("--stale-mel", action="store_true")
p.add_argument("--twin", action="store_true")
p.add_argument("--no-row0", action="store_true")
a = p.parse_args()

dumps = os.environ["SYNCTALK_PARITY_DUMP_DIR"]
os.makedirs(os.path.join(dumps, "audio_windows"))
os.makedirs(os.path.join(dumps, "mel"))
os.makedirs(os.path.join(dumps, "notes"))  # not a stage: ignored
for k in range(5):
    np.save(os.path.join(dumps, "mel", f"{k}.npy"), np.full(80, k, np.float32))
if a.stale_mel:
    os.utime(os.path.join(dumps, "mel", "0.npy"), (0, 0))
for i in range(a.frames):
    shutil.copyfile(os.path.join(a.sanders, "full_body_img", f"{i + 1}.jpg"),
                    os.path.join(a.output, f"frame_{i + 1:05d}.jpg"))
    if not (a.no_row0 and i == 0):
        np.full((32, 16, 16), i, "<f4").tofile(os.path.join(dumps, "audio_windows", f"{i}.f32"))
if a.twin:
    np.save(os.path.join(dumps, "audio_windows", "0.npy"), np.zeros((32, 16, 16), np.float32))
print('{"stage": "generator", "ms": 7.5}')
