"""Each folder's codec, from its files: lossless, or JPEG with its IJG-equivalent quality and chroma
subsampling, read from the quantisation tables.

libjpeg (and every encoder built on its tables: OpenCV, Pillow, Go's image/jpeg) scales the IJG
example tables of the JPEG standard (Annex K) by the quality q: factor 5000 / q below 50, 200 - 2q
from 50, each entry (t * factor + 50) // 100 clamped to 1..255. A file whose two tables equal the
scaled ones for some q has that quality; otherwise its tables are "non-IJG" and `estimate` is the q
whose luminance table is closest. The subsampling is read from the frame header (Pillow).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
CHROMA = np.array([17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                   47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32)
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """libjpeg's table for `quality` (1..100), natural order."""
    factor = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * factor + 50) // 100, 1, 255)


_TABLES = {q: (ijg_table(LUMA, q), ijg_table(CHROMA, q)) for q in range(1, 101)}


@dataclass(frozen=True)
class CodecSettings:
    """A folder's codec: ``format`` "jpeg" (with its IJG ``quality`` when ``ijg``, else None, the closest
    quality as ``estimate``, and the chroma ``subsampling``), "lossless", or a lossless file format."""

    format: str
    quality: int | None = None
    ijg: bool | None = None
    estimate: int | None = None
    subsampling: str | None = None

    @property
    def jpeg(self) -> bool:
        return self.format == "jpeg"

    def describe(self) -> str:
        """"JPEG q95 4:2:0", "JPEG non-IJG tables (about q87) 4:4:4" or "lossless png"."""
        if not self.jpeg:
            return f"lossless {self.format}" if self.format != "lossless" else "lossless"
        quality = f"q{self.quality}" if self.ijg else f"non-IJG tables (about q{self.estimate})"
        return f"JPEG {quality} {self.subsampling}"

    def same(self, other: CodecSettings) -> bool:
        """Both lossless, or both JPEG with the same tables and subsampling."""
        if not self.jpeg or not other.jpeg:
            return not self.jpeg and not other.jpeg
        return (self.quality, self.estimate, self.subsampling) == (other.quality, other.estimate, other.subsampling)

    def to_dict(self) -> dict:
        """As results.json stores it."""
        return asdict(self)


LOSSLESS = CodecSettings("lossless")


def settings(path: Path) -> CodecSettings:
    """The codec of a JPEG file, or a lossless one for a PNG or any other format Pillow does not read as JPEG."""
    from PIL import Image, JpegImagePlugin
    with Image.open(path) as im:
        if im.format != "JPEG":
            return CodecSettings((im.format or "unknown").lower())
        tables = {k: np.array(v) for k, v in im.quantization.items()}
        sampling = SUBSAMPLING.get(JpegImagePlugin.get_sampling(im), "other")
    luma, chroma = tables.get(0), tables.get(1)
    exact = [q for q, (lt, ct) in _TABLES.items()
             if luma is not None and np.array_equal(lt, luma) and (chroma is None or np.array_equal(ct, chroma))]
    estimate = min(_TABLES, key=lambda q: float(np.abs(_TABLES[q][0] - luma).sum())) if luma is not None else None
    return CodecSettings("jpeg", exact[-1] if exact else None, bool(exact), estimate, sampling)


def roundtrip(img: np.ndarray, s: CodecSettings) -> np.ndarray:
    """`img` encoded by OpenCV's libjpeg at the settings `s` (its quality or estimate, 4:4:4 or 4:2:0)
    and decoded; unchanged for a lossless `s`."""
    if not s.jpeg:
        return img
    factor = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if s.subsampling == "4:4:4" else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(s.quality or s.estimate),
                                          cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)
