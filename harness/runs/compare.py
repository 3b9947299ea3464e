"""`synctalk-parity compare A B`: two folders of frames, paired by name (up to the extension), or videos
(either side or both, paired by presentation time: `compare_video`), measured, explained and judged.

The verdict uses a tolerance profile (and threshold overrides) like a parity run: exit 0 when every
criterion holds for every frame, 1 when one fails or a frame is missing or extra, 2 for bad input.
With a pack, each frame's rect comes from the frame number in its file name (``frame_00012.png`` is
frame 12, 1-based unless `index_base` is 0), so a missing frame does not shift the rects after it.
"""
from __future__ import annotations

import json
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from harness.backends.frame_files import frame_number, read_frame
from harness.backends.port_files import DumpError, find_stage_dumps
from harness.diagnosis.evidence import codec
from harness.diagnosis.evidence.collect import Evidence
from harness.diagnosis.evidence.findings import findings
from harness.text.terminal import colour_enabled, paint
from harness.verdicts import metrics
from harness.verdicts.tolerances import Thresholds, evaluate
from reference.data import open_source, template_index
from reference.errors import InputError

_NUMBER = re.compile(r"(\d+)")
LISTED = 10  # missing / extra frames named before "... and N more"


def _natural(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(path.name))


def _by_stem(folder: Path, pattern: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in folder.glob(pattern):
        if path.is_file():
            if path.stem in files:
                raise InputError(path, f"and {files[path.stem].name} are two files of one frame",
                                 "keep one of them, or narrow --pattern")
            files[path.stem] = path
    return files


def pair_frames(dir_a: Path, dir_b: Path, pattern: str) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Pairs of files with the same name up to the extension (``frame_00001.png`` pairs with
    ``frame_00001.jpg``), in natural order, and the names only one side has."""
    for folder in (dir_a, dir_b):
        if not folder.is_dir():
            raise InputError(folder, "not a folder of frames")
    a, b = _by_stem(dir_a, pattern), _by_stem(dir_b, pattern)
    common = sorted((a[n] for n in a.keys() & b.keys()), key=_natural)
    if not common:
        raise InputError(dir_b, f"no frame file matching {pattern!r} is in both folders",
                         "check --pattern and the frame names")
    by_name = lambda paths: sorted((p.name for p in paths), key=lambda n: _natural(Path(n)))  # noqa: E731
    return ([(p, b[p.stem]) for p in common], by_name(a[k] for k in a.keys() - b.keys()),
            by_name(b[k] for k in b.keys() - a.keys()))


def _listing(names: list[str]) -> str:
    more = f" ... and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def _rect(source, path: Path, index_base: int) -> tuple:
    number = frame_number(path)
    if number is None or number < index_base:
        raise InputError(path, "no frame number in the file name to take its rect from",
                         "name frames like frame_00001.png, or compare without --pack")
    return source.rect(template_index(number - index_base, source.n_images))


def _index(path: Path, index_base: int) -> int | None:
    number = frame_number(path)
    return None if number is None or number < index_base else number - index_base


def _measure_pair(pa: Path, pb: Path, source, index_base: int, evidence: Evidence | None) -> dict:
    ref, cand = read_frame(pa), read_frame(pb)
    if ref.shape != cand.shape:
        raise InputError(pb, f"is {cand.shape[1]}x{cand.shape[0]}, {pa} is {ref.shape[1]}x{ref.shape[0]}")
    if evidence is not None and _index(pa, index_base) is not None:
        evidence.observe(_index(pa, index_base), ref, cand)
    return row(pa.name, ref, cand, _rect(source, pa, index_base) if source is not None else None)


def row(name: str, ref: np.ndarray, cand: np.ndarray, rect: tuple | None) -> dict:
    """One pair's table row: the metrics per region with the face `rect`, else over the full frame."""
    if rect is not None:
        return {"file": name, "rect": list(rect), **metrics.frame_metrics(ref, cand, rect)}
    return {"file": name, "full": {**metrics.pixel_stats(ref, cand), "psnr": metrics.psnr(ref, cand),
                                   "ssim": metrics.ssim(ref, cand)}}


def measure(pairs: list[tuple[Path, Path]], source, index_base: int, evidence: Evidence | None = None,
            progress: bool = False) -> list[dict]:
    """Metrics of every pair (per region with a pack source), in pair order; each pair is read once and
    also observed by `evidence` when given. Pairs are measured on a thread per core."""
    with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="compare") as pool:
        jobs = pool.map(lambda pair: _measure_pair(*pair, source, index_base, evidence), pairs)
        return list(tqdm(jobs, total=len(pairs), desc="compare", unit="pair", disable=not progress, leave=False))


def verdict(rows: list[dict], thresholds: Thresholds, missing: list[str], extra: list[str]) -> list[str]:
    """Failed criteria in words (frames named by the number in their file name), missing and extra frames."""
    worst = {}
    for key in ("identical_pct", "psnr", "ssim"):
        row = min(rows, key=lambda r: r["full"][key])
        number = frame_number(Path(row["file"]))
        worst[key] = (row["full"][key], (number if number is not None else rows.index(row) + 1) - 1)
    failures = evaluate(thresholds, worst, {}, None)
    if missing:
        failures.append(f"{len(missing)} frame(s) missing from the candidate: {_listing(missing)}")
    if extra:
        failures.append(f"{len(extra)} extra frame(s) in the candidate: {_listing(extra)}")
    return failures


def _print_table(rows: list[dict]) -> None:
    regions = [r for r in ("full", "face", "mouth", "outside_face") if r in rows[0]]
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


def read_stages(folder: Path, frames: int) -> dict[str, np.ndarray]:
    """The stage dumps a folder holds (`port_files.find_stage_dumps`); InputError when it holds none or
    one is malformed."""
    if not folder.is_dir():
        raise InputError(folder, "not a folder of stage dumps")
    found = find_stage_dumps(folder, frames)
    if not found:
        raise InputError(folder, "holds no stage dumps", "give a folder with <stage>.npy files (infer --dump-stages), "
                         "<stage>/<row>.f32 files (the standard dump folder) or debug_audio_<name>_frame<k>.bin")
    try:
        return {stage: load() for stage, (_, load) in found.items()}
    except DumpError as exc:
        raise InputError(folder, str(exc)) from None


def _codec(path: Path) -> codec.CodecSettings:
    try:
        return codec.settings(path)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read its header: {exc}") from None


def _video_pairs(path_a: Path, path_b: Path, pattern: str, source, index_base: int, audio: Path | None,
                 progress: bool):
    """Both sides paired by slot when one of them is a video (`compare_video`)."""
    from harness.runs.compare_video import compare_sides, label, open_side
    a, b = open_side(path_a, pattern, index_base), open_side(path_b, pattern, index_base)
    first = lambda side: _codec(side.files[min(side.files)]) if side.files else None  # noqa: E731
    evidence = Evidence(source, len(a.slots & b.slots), first(a), first(b)) if source else None

    def measure_pair(k: int, ref: np.ndarray, cand: np.ndarray) -> dict:
        return row(label(k), ref, cand, source.rect(template_index(k, source.n_images)) if source else None)

    paired = compare_sides(a, b, measure_pair, evidence, audio, progress)
    video = paired.video
    lost = [f"{len(k)} frame(s) {what} in the candidate video: {_listing([label(i) for i in k])}"
            for what, k in (("dropped", video.dropped_b), ("duplicated", video.duplicated)) if k]
    return (paired.rows, [label(k) for k in paired.missing], [label(k) for k in paired.extra], paired.missing,
            paired.extra, paired.span, evidence, video, lost)


def _folder_pairs(dir_a: Path, dir_b: Path, pattern: str, source, index_base: int, progress: bool):
    pairs, missing, extra = pair_frames(dir_a, dir_b, pattern)
    evidence = Evidence(source, len(pairs), _codec(pairs[0][0]), _codec(pairs[0][1])) if source else None
    rows = measure(pairs, source, index_base, evidence, progress)
    indices = lambda names: [i for i in (_index(Path(n), index_base) for n in names) if i is not None]  # noqa: E731
    return rows, missing, extra, indices(missing), indices(extra), len(pairs) + len(missing), evidence, None, []


def compare_folders(dir_a: Path, dir_b: Path, pattern: str = "frame_*.*", pack: Path | None = None,
                    json_out: Path | None = None, thresholds: Thresholds | None = None,
                    index_base: int = 1, profile: str = "desktop", stages_a: Path | None = None,
                    stages_b: Path | None = None, progress: bool = False, audio: Path | None = None) -> int:
    """Print per-region statistics, the worst frames, missing and extra frames, the image evidence (with
    a pack: findings from the pack and the frames alone; with both stage folders: their stages compared)
    and the verdict under `thresholds` (default: the `profile`'s); 0 when it holds, 1 when it does not.
    Either side may be a video file (.mp4 .mov .m4v .mkv): its pictures are taken by presentation time,
    and its timing, sound (against `audio`, the run's input, else the reference video's) and codec are
    evidence too."""
    from harness.video.read import is_video
    thresholds = thresholds if thresholds is not None else Thresholds.for_profile(profile)
    source = open_source(pack) if pack else None
    if is_video(dir_a) or is_video(dir_b):
        paired = _video_pairs(dir_a, dir_b, pattern, source, index_base, audio, progress)
    else:
        paired = _folder_pairs(dir_a, dir_b, pattern, source, index_base, progress)
    rows, missing, extra, missing_i, extra_i, expected, evidence, video, lost = paired
    dumps = [read_stages(folder, expected) if folder else None for folder in (stages_a, stages_b)]
    print(f"{len(rows)} frame pairs ({dir_a} vs {dir_b})")
    if missing:
        print(f"missing in {dir_b}: {_listing(missing)}")
    if extra:
        print(f"extra in {dir_b}: {_listing(extra)}")
    _print_table(rows)
    found = findings(evidence, missing_i, extra_i, expected, *dumps, video=video)
    if found:
        print("findings (from the pack, the frames and the dumps, no models), by the share of the residual each explains:")
        for f in found:
            print(f"  - {f.line()}")
    elif source is None and not all(dumps) and video is None:
        print("findings: none looked for (give --pack for the image evidence, --stages-a and --stages-b for the stages)")
    else:
        print("findings: none")
    failures = verdict(rows, thresholds, missing, extra) + lost
    limits = ", ".join(f"{k}={v:g}" for k, v in thresholds.to_dict().items() if k != "feature_max_abs")
    word = paint("FAILED" if failures else "PASSED", colour_enabled())
    print(f"verdict: {word} (profile {profile}: {limits})")
    for failure in failures:
        print(f"  violated: {failure}")
    if json_out:
        from harness.verdicts.results import to_json
        doc = {"pairs": rows, "only_a": missing, "only_b": extra, "thresholds": thresholds.to_dict(),
               "passed": not failures, "failures": failures, "findings": [f.to_dict() for f in found],
               "residual": next((f.to_dict() for f in found if f.kind == "residual"), None)}
        json_out.write_text(json.dumps(to_json(doc), indent=1))
    return 1 if failures else 0
