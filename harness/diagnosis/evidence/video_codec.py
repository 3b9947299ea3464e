"""``video_codec``: each video's codec and colour tags, the share of the residual its loss accounts for,
and a colour matrix or range that the pixels do not follow.

The codec's loss is measured, not guessed: the other side's block of consecutive pairs
(`travel.BLOCK`) is encoded at the video's settings (libx264 at its CRF, read from the x264 SEI, or
at its bit rate for another encoder) and decoded; the squared error that round trip adds is the
codec's share of the residual, counted like ``jpeg``'s (both sides videos: both shares). The colour
reading fit reads the candidate's raw YUV planes on sampled slots under BT.601 and BT.709, full and
limited range, against the reference; a reading other than the stream's tags that lowers the error by
`MISMATCH_DB` or more is named: the app converted with one matrix or range and tagged another.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import cv2
import numpy as np

from harness.diagnosis.evidence.basis import Basis, maker
from harness.diagnosis.evidence.pixels import gain_db, sse
from harness.diagnosis.evidence.record import Finding, db_text
from harness.video import read, write

READINGS = [(m, r) for m in ("bt601", "bt709") for r in ("full", "limited")]
MISMATCH_DB = 0.5  # a reading must lower the error by this much over the tagged one


def tagged_reading(stream: read.VideoStream) -> tuple[str, str]:
    """How the decoder reads the planes: the tagged matrix (untagged: BT.601) and range (untagged: limited)."""
    matrix = stream.matrix if stream.matrix in ("bt601", "bt709") else "bt601"
    return matrix, "full" if stream.range == "full" else "limited"


def reencode_settings(stream: read.VideoStream) -> dict:
    """`write.encode` arguments that reproduce `stream`'s loss: its x264 CRF, else its bit rate."""
    matrix, rng = tagged_reading(stream)
    if stream.x264.get("rc") == "crf" and "crf" in stream.x264:
        return {"crf": float(stream.x264["crf"]), "preset": "medium", "matrix": matrix, "rng": rng}
    return {"bit_rate": int(stream.bit_rate or 2_000_000), "preset": "medium", "matrix": matrix, "rng": rng}


def roundtrip(frames: list[np.ndarray], settings: dict) -> list[np.ndarray]:
    """`frames` encoded at `settings` (`reencode_settings`) and decoded by `read.pictures`."""
    with tempfile.TemporaryDirectory(prefix="video-codec-") as tmp:
        path = write.encode(Path(tmp) / "block.mp4", frames, **settings)
        info = read.probe(path)
        return [p.bgr for p in read.pictures(info, info.timeline(slots=len(frames)))]


def _split(a: np.ndarray, b: np.ndarray, band) -> np.ndarray:
    """Squared error (outside the face band, inside it); all of it outside without a band."""
    whole = sse(a, b)
    inside = sse(a[band], b[band]) if band is not None else 0.0
    return np.array([whole - inside, inside])


def _loss(frames: list[np.ndarray], stream: read.VideoStream, band) -> tuple[np.ndarray, dict]:
    settings = reencode_settings(stream)
    back = roundtrip(frames, settings)
    return sum(_split(x, y, band) for x, y in zip(frames, back)), settings


def codec_share(resid: np.ndarray, loss: np.ndarray) -> float:
    """The codec's squared error in a residual split (outside, inside the face band), from the loss a round
    trip adds there: outside the band a composited frame is its template on both sides, so what differs
    there is the codec's alone, and the loss inside is scaled like the loss outside (two encodes of
    nearly the same pictures at the same settings lose nearly the same, and that cancels)."""
    scale = min(1.0, resid[0] / loss[0]) if loss[0] > 0 else 1.0
    return float(min(resid[0], loss[0]) + min(resid[1], loss[1] * scale))


def _psnr(loss: float, frames: list[np.ndarray]) -> float:
    count = sum(f.size for f in frames)
    return math.inf if loss <= 0 else 10.0 * math.log10(255.0 ** 2 * count / loss)


def colour_reading(raw: dict, stream: read.VideoStream) -> dict | None:
    """Mean squared error against the reference of the candidate's planes under each reading, at the
    chroma planes' size (the luma and the reference area-averaged to it); the tagged reading, the best
    and whether they differ (`mismatch`: "matrix", "range" or both)."""
    if not raw:
        return None
    errors = {f"{m} {r}": 0.0 for m, r in READINGS}
    count = 0
    for ref, (y, u, v) in raw.values():  # on the chroma grid: a reading tints every pixel alike
        half = (u.shape[1], u.shape[0])
        small, luma = cv2.resize(ref, half, interpolation=cv2.INTER_AREA), cv2.resize(y, half, interpolation=cv2.INTER_AREA)
        count += small.size
        for m, r in READINGS:
            errors[f"{m} {r}"] += sse(small, read.yuv_to_bgr(luma, u, v, m, r))
    tagged = " ".join(tagged_reading(stream))
    best = min(errors, key=errors.get)
    share = (errors[tagged] - errors[best]) / errors[tagged] if errors[tagged] > 0 else 0.0
    differs = best != tagged and gain_db(errors[tagged], errors[tagged] - errors[best]) >= MISMATCH_DB
    what = [name for name, i in (("matrix", 0), ("range", 1)) if best.split()[i] != tagged.split()[i]]
    return {"tagged": tagged, "fits": best, "mse": {k: round(v / count, 3) for k, v in errors.items()},
            "mismatch": " and ".join(what) if differs else None, "share": share if differs else 0.0}


@maker("video_codec")
def _video_codec(basis: Basis, before: list[Finding]) -> list[Finding]:
    video = basis.video
    if video is None or (video.info_a is None and video.info_b is None) or basis.total <= 0 or not video.block:
        return []
    slots = sorted(video.block)
    refs = [video.block[k][0] for k in slots]
    cands = [video.block[k][1] for k in slots]
    band = basis.ev.index.band if basis.ev is not None else None
    resid = sum(_split(a, b, band) for a, b in zip(refs, cands))
    fields: dict = {"codec_a": video.info_a.stream.to_dict() if video.info_a else None,
                    "codec_b": video.info_b.stream.to_dict() if video.info_b else None}
    noise, parts = np.zeros(2), []
    for side, info, frames, key, who, other in (  # each side's settings applied to the other side's block
            ("b", video.info_b, refs, "reference_psnr_db", "candidate", "reference"),
            ("a", video.info_a, cands, "candidate_psnr_db", "reference", "candidate")):
        if info is None:
            continue
        loss, fields[f"reencode_{side}"] = _loss(frames, info.stream, band)
        noise = noise + loss
        fields[key] = round(_psnr(loss.sum(), frames), 2)
        parts.append(f"the {who} is {info.stream.describe()}; the {other} encoded at its settings keeps "
                     f"{fields[key]:.1f} dB PSNR")
    codec_removed = basis.total * min(1.0, codec_share(resid, noise) / resid.sum()) if resid.sum() > 0 else 0.0
    fields["codec_db"] = gain_db(basis.total, codec_removed)
    removed = codec_removed
    reading = colour_reading(video.raw, video.info_b.stream) if video.info_b is not None else None
    if reading is not None:
        fields["colour_reading"] = {k: v for k, v in reading.items() if k != "share"}
        if reading["mismatch"]:
            colour_removed = basis.total * reading["share"]
            fields["colour_reading_db"] = gain_db(basis.total, colour_removed)
            removed = min(basis.total, codec_removed + colour_removed)
            parts.insert(0, f"colour {reading['mismatch']} mismatch: the candidate's pixels are {reading['fits']} but "
                            f"tagged {reading['tagged']}, so every pixel is off (mean squared error "
                            f"{reading['mse'][reading['tagged']]:.1f} as tagged, {reading['mse'][reading['fits']]:.1f} "
                            f"read as {reading['fits']})")
    explains = gain_db(basis.total, removed)
    parts.append(f"the codec's loss accounts for {db_text(fields['codec_db'])}")
    return [Finding("video_codec", "; ".join(parts), [k + 1 for k in slots], explains, fields)]
