"""A fake port with injectable defects: the reference pipeline run under --conventions (any
conventions-table variant), its frames written --offset frames late (frame i is the reference's
frame i + offset), as lossless frame_%05d.png (1-based). --dump-stages writes its mel, embeddings
and per-frame audio windows as .npy files into that folder."""
import argparse
import os

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
p.add_argument("--conventions", default="")
p.add_argument("--offset", type=int, default=0, choices=range(0, 4))
p.add_argument("--dump-stages")
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
        cv2.imwrite(os.path.join(a.output, f"frame_{result.index - a.offset + 1:05d}.png"), result.frame)
        windows.append(result.audio[0])
if a.dump_stages:
    os.makedirs(a.dump_stages, exist_ok=True)
    for name, array in (("mel", feats.mel), ("embeddings", feats.embeddings), ("audio_windows", np.stack(windows))):
        np.save(os.path.join(a.dump_stages, f"{name}.npy"), array)
