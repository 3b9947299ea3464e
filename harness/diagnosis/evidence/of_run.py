"""The image evidence of one parity run (a backend against the canonical reference of one audio).

The reference side is the run's reference (its frames rebuilt from their templates, which are known);
the candidate's frames are read again from its files when the backend wrote files (a port, a folder
of frames: every frame, and their codec is part of the evidence), else they are the first frames the
comparison kept for the diagnosis. Crops of the most telling frame of ``paste_position`` and
``resize_kernel`` are written beside the results for the report (``crop`` in the finding).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.backends.frame_files import FrameFiles
from harness.diagnosis.evidence import codec
from harness.diagnosis.evidence.collect import Evidence, observe_all
from harness.diagnosis.evidence.findings import findings
from harness.diagnosis.evidence.record import Finding
from reference.data import open_template_source
from reference.output import encode_frame

CROP_KINDS = ("paste_position", "resize_kernel")


def _files(info: dict, frames: int) -> tuple[FrameFiles | None, list[int]]:
    """The backend's frame files (None when it wrote none) and the frames of the run among them."""
    spec = info.get("frame_files") or {}
    if not spec:
        return None, []
    files = FrameFiles.from_info(spec)
    return files, [i for i in files.indices() if 0 <= i < frames]


def run_findings(ref, inputs, info: dict, first: list, missing: list[int], ref_stages: dict, stages: dict,
                 crops_dir: Path, base: Path) -> list[Finding]:
    """The ranked findings of a run (`ref` the reference's frames, `inputs` the run's inputs, `info` the
    backend's, `first` the candidate frames kept, `missing` the indices it did not make, the stage
    arrays of both sides); crops go to `crops_dir`, their paths relative to `base`."""
    source = open_template_source(inputs.source, inputs.source_kind)
    if info.get("video"):
        ev, found = _video_findings(ref, inputs, Path(info["video"]), source, missing, ref_stages, stages)
        return _with_crops(found, ev, crops_dir, base)
    files, present = _files(info, inputs.frames)
    cand_codec = codec.settings(files.path(present[0])) if present else None
    ev = Evidence(source, len(present) or len(first), codec.LOSSLESS if cand_codec else None, cand_codec)
    if present:  # the reference's templates are known
        pairs = [(i, lambda i=i: ref.frame(i), lambda i=i: files.read(i), ref.templates[i]) for i in present]
    else:
        pairs = [(i, lambda i=i: ref.frame(i), lambda f=frame: f, ref.templates[i])
                 for i, frame in enumerate(first) if frame is not None]
    observe_all(ev, pairs)
    return _with_crops(findings(ev, missing, [], inputs.frames, ref_stages, stages), ev, crops_dir, base)


def _with_crops(found: list[Finding], ev: Evidence, crops_dir: Path, base: Path) -> list[Finding]:
    """`found`, each finding of `CROP_KINDS` with the crop of its most telling frame saved in `crops_dir`."""
    for f in found:
        if f.kind in CROP_KINDS and f.kind in ev.crops:
            crops_dir.mkdir(parents=True, exist_ok=True)
            path = crops_dir / f"{f.kind}.png"
            _, i, image = ev.crops[f.kind]
            path.write_bytes(encode_frame(np.ascontiguousarray(image), "png", 3))
            f.crop = {"path": path.relative_to(base).as_posix(), "frame": i + 1}
    return found


def _video_findings(ref, inputs, path: Path, source, missing: list[int], ref_stages: dict,
                    stages: dict) -> tuple[Evidence, list[Finding]]:
    """A `frames` backend's video: its pictures by presentation time against the reference's frames, in
    batches (a video is decoded once, in order), with its timing, sound and codec."""
    from harness.diagnosis.evidence.travel import VideoEvidence
    from harness.video.read import pictures, probe
    video_info = probe(path)
    line = video_info.timeline()
    video = VideoEvidence(None, video_info, None, line, inputs.frames, Path(inputs.audio) if inputs.audio else None)
    ev = Evidence(source, inputs.frames)
    batch: list = []
    for p in pictures(video_info, line, raw=True):
        if p.slot >= inputs.frames:
            break
        reference = ref.frame(p.slot)
        if video.take(p.slot, reference, p.bgr, p.yuv, p.frame):
            batch.append((p.slot, lambda r=reference: r, lambda f=p.bgr: f, ref.templates[p.slot]))
        if len(batch) >= 16:
            observe_all(ev, batch)
            batch = []
    observe_all(ev, batch)
    dropped = set(video.dropped_b)
    return ev, findings(ev, [i for i in missing if i not in dropped], [], inputs.frames, ref_stages, stages, video=video)
