"""Writing output frames: `frame_00001.png`, 1-based, as the existing ports name them."""
from __future__ import annotations

import io
import re
import struct
import threading
import zlib
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from isal import isal_zlib
from PIL import Image

from reference.conventions import jpeg_codec
from reference.errors import InputError

FORMATS = ("png", "jpg")
PNG_FAST = "fast"
PngLevel = int | Literal["fast"]
PNG_LEVEL: PngLevel = PNG_FAST
"""`infer`'s PNG: "fast" (`_fast_png`: every row "up"-filtered, deflated by ISA-L at its level 1), or
a zlib level 0-9 through OpenCV. Written with `write_frame`, one 1280x720 frame of the pack costs
3.9 ms of CPU and 0.38 MB "fast", against 4.4 ms and 2.8 MB at level 0 and 13.9 ms and 0.37 MB at
level 1 (OpenCV's fastest level 1, the RLE strategy, 12.6 ms and 0.46 MB); median of 60 frames of
`infer`, the writers interleaved, load 6 on 2 cores. Every one is lossless."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {1: (0, None), 3: (2, cv2.COLOR_BGR2RGB), 4: (6, cv2.COLOR_BGRA2RGBA)}  # channels -> PNG colour type
JPEG_BLOCK = 16  # the largest JPEG block of pixels coded together (a 4:2:0 MCU), in pixels
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


def _codec(fmt: str, png_level: PngLevel, jpeg_quality: int) -> tuple[str, list[int]] | None:
    """OpenCV's file extension and parameters for a frame format: PNG (lossless, zlib level
    `png_level`; the "up" row filter, one filter for every row and cheaper to encode than OpenCV's
    adaptive choice per row, or none at level 0, whose stored bytes no filter shrinks) or JPEG; None
    for the "fast" PNG, which `_fast_png` encodes."""
    if fmt == "png" and png_level == PNG_FAST:
        return None
    if fmt == "png":
        row_filter = cv2.IMWRITE_PNG_FILTER_NONE if png_level == 0 else cv2.IMWRITE_PNG_FILTER_UP
        return ".png", [cv2.IMWRITE_PNG_COMPRESSION, png_level, cv2.IMWRITE_PNG_FILTER, row_filter]
    if fmt == "jpg":
        return ".jpg", [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    raise ValueError(f"unknown frame format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


_buffers = threading.local()


def _png_buffers(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """This thread's (pixels, filtered rows) work arrays for a frame of `shape`, kept between frames:
    the colour swap and the "up" filter of a 1280x720 frame of the pack took 1.00 ms of CPU in kept
    arrays against 2.64 ms in new ones (fresh pages; median of 5 x 30 frames)."""
    h, row = shape[0], int(np.prod(shape[1:]))
    kept = getattr(_buffers, "png", None)
    if kept is None or kept[0].shape != (h, row):
        kept = _buffers.png = (np.empty((h, row), np.uint8), np.empty((h, row + 1), np.uint8))
    return kept


def _fast_png(img: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit grey, BGR or BGRA image: every row "up"-filtered (minus the row above),
    the rows deflated by ISA-L at level 1, far faster than zlib's level 1 (see PNG_LEVEL)."""
    channels = img.shape[2] if img.ndim == 3 else 1 if img.ndim == 2 else 0
    if img.dtype != np.uint8 or channels not in _PNG_COLOUR or img.size == 0:
        raise ValueError(f"a PNG frame is a non-empty 8-bit grey, BGR or BGRA image, not {img.dtype} {img.shape}")
    colour, to_rgb = _PNG_COLOUR[channels]
    h, w = img.shape[:2]
    pixels, rows = _png_buffers(img.shape)
    if to_rgb is None:
        pixels[:] = img.reshape(h, -1)
    else:
        cv2.cvtColor(img, to_rgb, dst=pixels.reshape(img.shape))
    rows[:, 0] = 2  # PNG's "up" filter type
    rows[0, 1:] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=rows[1:, 1:])
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _png_chunk(b"IHDR", header),
                     _png_chunk(b"IDAT", isal_zlib.compress(rows, 1)), _png_chunk(b"IEND", b"")))


def encode_frame(img: np.ndarray, fmt: str, png_level: PngLevel = PNG_LEVEL, jpeg_quality: int = 95) -> bytes:
    """PNG or JPEG (`jpeg_quality`) bytes of a BGR frame (see `_codec`)."""
    codec = _codec(fmt, png_level, jpeg_quality)
    if codec is None:
        return _fast_png(img)
    ok, buf = cv2.imencode(codec[0], img, codec[1])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {img.shape} frame as {fmt}")
    return buf.tobytes()


def write_frame(path: Path, img: np.ndarray, fmt: str, png_level: PngLevel = PNG_LEVEL) -> None:
    """Encode and write one frame, the same bytes as `encode_frame`'s. OpenCV writes the file as it
    encodes: 4.7 ms of CPU for a 1280x720 PNG at level 0, against 7.7 ms for `encode_frame` (whose
    buffer grows by copies) and Python's write (median of 150, load 2.5 on 2 cores). The "fast" PNG,
    and a frame OpenCV cannot write, Python writes, so that a failure raises its own error (no space,
    no permission)."""
    codec = _codec(fmt, png_level, 95)
    if codec is not None:
        try:
            if cv2.imwrite(str(path), img, codec[1]):
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


def _block_part(box: tuple[slice, slice], shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The part of an image of `shape` whose JPEG round trip gives `box`'s pixels exactly: `box`
    widened to whole JPEG_BLOCK blocks, plus one block on every side that is not the image's edge.
    A JPEG encodes each block alone (colour conversion, 2x2 chroma averaging, DCT, quantisation) and
    decoding's chroma upsampling reads one neighbouring chroma sample, so pixels a block or more
    inside the part decode as in the whole image."""
    def widen(part: slice, size: int) -> slice:
        start, stop, _ = part.indices(size)
        start = max(0, start // JPEG_BLOCK * JPEG_BLOCK - JPEG_BLOCK)
        stop = min(size, -(-stop // JPEG_BLOCK) * JPEG_BLOCK + JPEG_BLOCK)
        return slice(start, stop)
    return widen(box[0], shape[0]), widen(box[1], shape[1])


def output_roundtrip(img: np.ndarray, output: str, box: tuple[slice, slice] | None = None) -> np.ndarray:
    """`img` through the codec of an `output` convention ("lossless": `img` itself); with `box` (row
    and column slices), only `img[box]` after the round trip, from the round trip of the smallest
    part that decodes it exactly (`_block_part`): the same values, for a fraction of the work."""
    codec = jpeg_codec(output)
    if box is None:
        return img if codec is None else jpeg_roundtrip(img, codec.quality, codec.library, codec.subsampling)
    if codec is None:
        return img[box]
    rows, cols = _block_part(box, img.shape)
    part = jpeg_roundtrip(np.ascontiguousarray(img[rows, cols]), codec.quality, codec.library, codec.subsampling)
    (r0, r1, _), (c0, c1, _) = box[0].indices(img.shape[0]), box[1].indices(img.shape[1])
    return part[r0 - rows.start:r1 - rows.start, c0 - cols.start:c1 - cols.start]
