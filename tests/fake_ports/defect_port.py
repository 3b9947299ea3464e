"""A fake port with injectable defects: the reference pipeline run under --conventions (any
conventions-table variant), its frames written --offset frames late (frame i is the reference's
frame i + offset), as lossless frame_%05d.png (1-based). --dump-stages writes its mel, embeddings
and per-frame audio windows as .npy files into that folder. --sleep-ms sleeps that long before writing
each frame. $DEFECT_PORT_CONVENTIONS and $DEFECT_PORT_SLEEP_MS are the defaults of --conventions and
--sleep-ms: a defect or a slowdown injected without changing the port's configured command, as a new
build of a port would bring it."""
import argparse
import os
import time

import cv2
import numpy as np

from reference.conventions import Conventions
from reference.data import open_source
from reference.models import ModelFiles, Models
from reference.pipeline import ReferencePipeline, audio_features

p = argparse.ArgumentParser()
p.add_argument("--sanders", required=True)
p.add_argument("--audio", required=True)
p.add_argument("--models", required=True)
p.add_argument("--output", required=True)
p.add_argument("--frames", type=int, required=True)
p.add_argument("--conventions", default=os.environ.get("DEFECT_PORT_CONVENTIONS", ""))
p.add_argument("--offset", type=int, default=0, choices=range(0, 4))
p.add_argument("--dump-stages")
p.add_argument("--sleep-ms", type=float, default=float(os.environ.get("DEFECT_PORT_SLEEP_MS") or 0))
a = p.parse_args()

conv = Conventions.parse(a.conventions)
models = Models(ModelFiles.from_dir(a.models))
n = a.frames + a.offset
feats = audio_features(a.audio, models, conv, n)
pipeline = ReferencePipeline(open_source(a.sanders), models, conv)
os.makedirs(a.output, exist_ok=True)
windows = []
for result in pipeline.frames(feats, n):
    if result.index >= a.offset:
        time.sleep(a.sleep_ms / 1000)
        cv2.imwrite(os.path.join(a.output, f"frame_{result.index - a.offset + 1:05d}.png"), result.frame)
        windows.append(result.audio[0])
if a.dump_stages:
    os.makedirs(a.dump_stages, exist_ok=True)
    for name, array in (("mel", feats.mel), ("embeddings", feats.embeddings), ("audio_windows", np.stack(windows))):
        np.save(os.path.join(a.dump_stages, f"{name}.npy"), array)
