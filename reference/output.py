"""Writing output frames: `frame_00001.png`, 1-based, as the existing ports name them."""
from __future__ import annotations

import re
from pathlib import Path

import io

import cv2
import numpy as np
from PIL import Image

from reference.conventions import jpeg_codec
from reference.errors import InputError

FORMATS = ("png", "jpg")
PNG_LEVEL = 0
"""`infer`'s PNG zlib level: 0 (stored) costs the least CPU per 1280x720 frame (about 5 ms to encode and
write its 2.8 MB with `write_frame`, against about 15 ms for level 1's 0.4 MB, on a shared 2-core
machine); every level is lossless."""
_FRAME_FILE = re.compile(r"^frame_\d{5,}\.(png|jpg)$")


def frame_path(folder: Path, i: int, fmt: str) -> Path:
    """Path of 0-based frame `i`: `folder/frame_{i+1:05d}.{fmt}`."""
    return folder / f"frame_{i + 1:05d}.{fmt}"


def prepare_output(folder: str | Path) -> Path:
    """Create `folder` and remove frame files a previous run left there, so no stale frame survives."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "output path exists and is not a folder", "choose another --output")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if _FRAME_FILE.match(old.name):
            old.unlink()
    return folder


def _codec(fmt: str, png_level: int, jpeg_quality: int) -> tuple[str, list[int]]:
    """OpenCV's file extension and parameters for a frame format: PNG (lossless, zlib level
    `png_level`; the "up" row filter, one filter for every row and cheaper to encode than OpenCV's
    adaptive choice per row, or none at level 0, whose stored bytes no filter shrinks) or JPEG."""
    if fmt == "png":
        row_filter = cv2.IMWRITE_PNG_FILTER_NONE if png_level == 0 else cv2.IMWRITE_PNG_FILTER_UP
        return ".png", [cv2.IMWRITE_PNG_COMPRESSION, png_level, cv2.IMWRITE_PNG_FILTER, row_filter]
    if fmt == "jpg":
        return ".jpg", [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    raise ValueError(f"unknown frame format {fmt!r}; choose one of {', '.join(FORMATS)}")


def encode_frame(img: np.ndarray, fmt: str, png_level: int = PNG_LEVEL, jpeg_quality: int = 95) -> bytes:
    """PNG or JPEG (`jpeg_quality`) bytes of a BGR frame (see `_codec`)."""
    ext, params = _codec(fmt, png_level, jpeg_quality)
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {img.shape} frame as {fmt}")
    return buf.tobytes()


def write_frame(path: Path, img: np.ndarray, fmt: str, png_level: int = PNG_LEVEL) -> None:
    """Encode and write one frame, the same bytes as `encode_frame`'s. OpenCV writes the file as it
    encodes: 4.7 ms of CPU for a 1280x720 PNG at level 0, against 7.7 ms for `encode_frame` (whose
    buffer grows by copies) and Python's write (median of 150, load 2.5 on 2 cores). Where OpenCV
    cannot write, Python writes the bytes, so that a failure raises its own error (no space, no
    permission)."""
    params = _codec(fmt, png_level, 95)[1]
    try:
        if cv2.imwrite(str(path), img, params):
            return
    except cv2.error:
        pass
    path.write_bytes(encode_frame(img, fmt, png_level))


def jpeg_bytes(img: np.ndarray, quality: int, library: str = "cv2", subsampling: str = "420") -> bytes:
    """JPEG bytes of a BGR frame from OpenCV's or Pillow's encoder, 4:2:0 or 4:4:4 chroma."""
    if library == "pil":
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img[..., ::-1])).save(
            buf, format="JPEG", quality=quality, subsampling=0 if subsampling == "444" else 2)
        return buf.getvalue()
    sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if subsampling == "444" else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {img.shape} frame as JPEG")
    return buf.tobytes()


def jpeg_roundtrip(img: np.ndarray, quality: int, library: str = "cv2", subsampling: str = "420") -> np.ndarray:
    """`img` as OpenCV decodes it (as the harness reads a port's frames) from a JPEG of `quality`
    (1..100) made by `library` ("cv2" or "pil") with `subsampling` ("420" or "444"): the
    `output=[pil_]jpeg<q>[_444]` convention."""
    data = np.frombuffer(jpeg_bytes(img, quality, library, subsampling), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def output_roundtrip(img: np.ndarray, output: str) -> np.ndarray:
    """`img` through the codec of an `output` convention ("lossless": `img` itself)."""
    codec = jpeg_codec(output)
    return img if codec is None else jpeg_roundtrip(img, codec.quality, codec.library, codec.subsampling)
