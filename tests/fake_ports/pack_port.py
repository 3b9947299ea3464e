"""A fake port that reads its models from PACK/models and writes a cache into PACK/cache (as the Go ports do).

Writes report.json into the output folder: the pack folder it was given, the real paths of the
files in PACK/models and the entries of PACK/cache before it wrote anything; then creates
PACK/cache/port_cache/run.txt and writes frame_%05d.jpg (1-based) copied from PACK/full_body_img.
"""
import argparse
import json
import os
import shutil

p = argparse.ArgumentParser()
p.add_argument("--sanders", required=True)
p.add_argument("--audio", required=True)
p.add_argument("--output", required=True)
p.add_argument("--frames", type=int, required=True)
a = p.parse_args()

models = os.path.join(a.sanders, "models")
cache = os.path.join(a.sanders, "cache")
report = {
    "pack": a.sanders,
    "models": {name: os.path.realpath(os.path.join(models, name)) for name in sorted(os.listdir(models))},
    "cache": sorted(os.listdir(cache)),
}
os.makedirs(os.path.join(cache, "port_cache"))  # fails if an earlier run's cache is still there
with open(os.path.join(cache, "port_cache", "run.txt"), "w") as f:
    f.write("written by pack_port")
os.makedirs(a.output, exist_ok=True)
with open(os.path.join(a.output, "report.json"), "w") as f:
    json.dump(report, f)
images = os.path.join(a.sanders, "full_body_img")
for i in range(a.frames):
    shutil.copyfile(os.path.join(images, f"{i % len(os.listdir(images)) + 1}.jpg"),
                    os.path.join(a.output, "frame_%05d.jpg" % (i + 1)))
