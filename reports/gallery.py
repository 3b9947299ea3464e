"""Images for the report: the worst frames' saved face crops, an amplified difference heatmap, mouth
close-ups, and the crops the image evidence saved for its findings.

A parity run saves, per backend x audio, PNG face crops (reference and candidate) of its worst
frames with the crop box, face rect and mouth box in frame coordinates. Here they are copied into
the report's image folder under content-addressed names (the same reference crop shared by several
backends is written once) and the heatmap and close-ups are computed from them. A crop that is
missing, unreadable or outside its results folder becomes an entry with `src` None and a `missing`
text, so the page can say so instead of showing a broken image.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

MAX_GAIN = 64  # the difference is stretched so its peak fills the colour map, by at most x64 (1 level -> 64)
FACE_COLOUR = (200, 200, 200)  # BGR outline of the face rect on the heatmap
MOUTH_COLOUR = (255, 255, 0)  # BGR (cyan) outline of the mouth box


def _write_png(img: np.ndarray, img_dir: Path, prefix: str) -> str:
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise ValueError("PNG encoding failed")
    return _store(buf.tobytes(), img_dir, prefix)


def _store(data: bytes, img_dir: Path, prefix: str) -> str:
    """Write `data` once under a name derived from its content; the path relative to the report folder."""
    name = f"{prefix}-{hashlib.sha1(data).hexdigest()[:16]}.png"
    path = img_dir / name
    if not path.exists():
        img_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return f"{img_dir.name}/{name}"


def _read_crop(base: Path, rel) -> tuple[np.ndarray | None, bytes | None, str | None]:
    """(image, file bytes, None) or (None, None, why it is missing)."""
    if not isinstance(rel, str) or not rel:
        return None, None, "no image recorded"
    root = base.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        return None, None, f"{rel} lies outside the results folder"
    if not path.is_file():
        return None, None, f"{rel} not found"
    data = path.read_bytes()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None, None, f"{rel} is not a readable image"
    return img, data, None


def heatmap(ref: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, str]:
    """Colour-mapped |ref - cand| (max over channels) and its scale in words."""
    diff = cv2.absdiff(ref, cand).max(axis=2)
    peak = int(diff.max())
    gain = min(MAX_GAIN, 255.0 / peak) if peak else 1.0
    scaled = np.clip(diff.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO), f"|diff| × {gain:.3g}, max {peak} levels"


def _local_box(box, crop_box, shape) -> tuple[int, int, int, int] | None:
    """A frame-coordinate box (x1, y1, x2, y2) mapped into the crop, clipped; None if empty or malformed."""
    try:
        x1, y1, x2, y2 = (int(v) for v in box)
        cx, cy = int(crop_box[0]), int(crop_box[1])
    except (TypeError, ValueError, IndexError):
        return None
    h, w = shape[:2]
    x1, x2 = max(x1 - cx, 0), min(x2 - cx, w)
    y1, y2 = max(y1 - cy, 0), min(y2 - cy, h)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _entry(caption: str, src: str | None = None, missing: str | None = None, closeup: bool = False) -> dict:
    return {"caption": caption, "src": src, "missing": missing, "closeup": closeup}


def worst_frame_panels(worst_frames: list, base: Path, img_dir: Path) -> list[dict]:
    """One panel per worst frame: frame number, PSNR, scale note and six images (or why one is missing)."""
    panels = []
    for wf in worst_frames or []:
        if not isinstance(wf, dict):
            continue
        ref, ref_bytes, ref_missing = _read_crop(base, wf.get("reference"))
        cand, cand_bytes, cand_missing = _read_crop(base, wf.get("candidate"))
        images = [_entry("reference", _store(ref_bytes, img_dir, "ref") if ref is not None else None, ref_missing),
                  _entry("candidate", _store(cand_bytes, img_dir, "cand") if cand is not None else None,
                         cand_missing)]
        scale = None
        both = ref is not None and cand is not None
        if both and ref.shape != cand.shape:
            both, why = False, f"crops differ in size ({ref.shape[1]}x{ref.shape[0]} vs {cand.shape[1]}x{cand.shape[0]})"
        else:
            why = "needs both crops"
        crop_box = wf.get("crop_box") or [0, 0]
        heat_src = None
        if both:
            heat, scale = heatmap(ref, cand)
            mouth = _local_box(wf.get("mouth_box"), crop_box, heat.shape)
            outlined = heat.copy()
            face = _local_box(wf.get("rect"), crop_box, heat.shape)
            if face:
                cv2.rectangle(outlined, face[:2], (face[2] - 1, face[3] - 1), FACE_COLOUR, 1)
            if mouth:
                cv2.rectangle(outlined, mouth[:2], (mouth[2] - 1, mouth[3] - 1), MOUTH_COLOUR, 1)
            heat_src = _write_png(outlined, img_dir, "diff")
            images.append(_entry("difference (face rect grey, mouth box cyan)", heat_src))
        else:
            images.append(_entry("difference", None, why))
        shape = (ref if ref is not None else cand).shape if (ref is not None or cand is not None) else None
        mouth = _local_box(wf.get("mouth_box"), crop_box, shape) if shape else None
        for caption, img in (("mouth, reference", ref), ("mouth, candidate", cand),
                             ("mouth, difference", heat if both else None)):
            if img is None or mouth is None:
                images.append(_entry(caption, None, "no mouth box" if img is not None else "image missing",
                                     closeup=True))
            else:
                x1, y1, x2, y2 = mouth
                images.append(_entry(caption, _write_png(np.ascontiguousarray(img[y1:y2, x1:x2]), img_dir,
                                                         "mouth"), closeup=True))
        i = wf.get("i")
        panels.append({"frame": i + 1 if isinstance(i, int) else None, "i": i, "psnr": wf.get("psnr"),
                       "scale": scale, "images": images, "heatmap": heat_src})
    return panels


def finding_images(findings: list, base: Path, img_dir: Path) -> list[dict | None]:
    """Per finding, the image entry of its crop (reference | candidate, saved beside the results), or None
    for a finding without one."""
    out = []
    for found in findings or []:
        crop = found.get("crop") if isinstance(found, dict) else None
        if not isinstance(crop, dict):
            out.append(None)
            continue
        img, data, missing = _read_crop(base, crop.get("path"))
        caption = f"frame {crop.get('frame', '?')}: reference | candidate"
        out.append(_entry(caption, _store(data, img_dir, "evidence") if img is not None else None, missing))
    return out
