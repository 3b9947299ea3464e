"""`synctalk-parity compare DIR_A DIR_B`: two folders of frames, paired by name, measured properly."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from harness import metrics
from reference.data import open_source, read_image, template_index
from reference.errors import InputError

_NUMBER = re.compile(r"(\d+)")


def _natural(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(path.name))


def pair_frames(dir_a: Path, dir_b: Path, pattern: str) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Pairs of files with the same name (natural order), and the names only one side has."""
    for folder in (dir_a, dir_b):
        if not folder.is_dir():
            raise InputError(folder, "not a folder of frames")
    a = {p.name: p for p in dir_a.glob(pattern) if p.is_file()}
    b = {p.name: p for p in dir_b.glob(pattern) if p.is_file()}
    common = sorted((a[n] for n in a.keys() & b.keys()), key=_natural)
    if not common:
        raise InputError(dir_b, f"no frame file matching {pattern!r} is in both folders",
                         "check --pattern and the frame names")
    return [(p, b[p.name]) for p in common], sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())


def compare_folders(dir_a: Path, dir_b: Path, pattern: str = "frame_*.*", pack: Path | None = None,
                    json_out: Path | None = None) -> int:
    """Print per-folder statistics (and the worst frames); regions when the pack is given."""
    pairs, only_a, only_b = pair_frames(dir_a, dir_b, pattern)
    source = open_source(pack) if pack else None
    rows = []
    for i, (pa, pb) in enumerate(pairs):
        ref, cand = read_image(pa), read_image(pb)
        if ref.shape != cand.shape:
            raise InputError(pb, f"is {cand.shape[1]}x{cand.shape[0]}, {pa} is {ref.shape[1]}x{ref.shape[0]}")
        if source is not None:
            rect = source.rect(template_index(i, source.n_images))
            rows.append({"file": pa.name, **metrics.frame_metrics(ref, cand, rect)})
        else:
            rows.append({"file": pa.name, "full": {**metrics.pixel_stats(ref, cand), "psnr": metrics.psnr(ref, cand),
                                                   "ssim": metrics.ssim(ref, cand)}})
    regions = [r for r in ("full", "face", "mouth", "outside_face") if r in rows[0]]
    print(f"{len(rows)} frame pairs ({dir_a} vs {dir_b})")
    if only_a or only_b:
        print(f"unpaired: {len(only_a)} only in {dir_a}, {len(only_b)} only in {dir_b}")
    print(f"{'region':13s} {'identical %':>11s} {'+-1 %':>7s} {'+-2 %':>7s} {'+-8 %':>7s} {'MAE':>7s} "
          f"{'max':>4s} {'PSNR min':>8s} {'SSIM min':>8s}")
    for region in regions:
        col = lambda k: np.array([r[region][k] for r in rows], float)  # noqa: E731
        psnr_min = col("psnr").min()
        print(f"{region:13s} {col('identical_pct').mean():11.3f} {col('within_1_pct').mean():7.2f} "
              f"{col('within_2_pct').mean():7.2f} {col('within_8_pct').mean():7.2f} {col('mae').mean():7.3f} "
              f"{int(col('max_abs').max()):4d} {'inf' if math.isinf(psnr_min) else f'{psnr_min:.2f}':>8s} "
              f"{col('ssim').min():8.5f}")
    worst = sorted(rows, key=lambda r: r["full"]["psnr"])[:5]
    if not math.isinf(worst[0]["full"]["psnr"]):
        print("worst frames: " + ", ".join(f"{r['file']} ({r['full']['psnr']:.2f} dB)" for r in worst))
    if json_out:
        from harness.results import _to_json
        json_out.write_text(json.dumps(_to_json({"pairs": rows, "only_a": only_a, "only_b": only_b}), indent=1))
    return 0
