"""Template frames of a SyncTalk_2D subject: the pre-cut pack and the raw dataset layout.

Two sources behind one small interface (``kind``, ``root``, ``n_images``, ``rect(t)``,
``frame(t, ...)``, ``paths(t, ...)``), chosen by ``open_source(path)`` from what the folder holds:

* ``Pack``: the pre-cut "ONNX distribution" pack the Python/Go/Swift ports read:
  ``full_body_img/K.jpg``, ``crops_328/K.jpg``, ``rois_320/K.jpg``, ``model_inputs/K.jpg``
  (1-based K), ``landmarks/N.lms`` (0-based) and ``cache/crop_rectangles.json``
  (``{"N": {"rect": [x1, y1, x2, y2]}}``, 0-based keys).
* ``Dataset``: the raw SyncTalk_2D training layout: ``full_body_img/K.jpg`` (1-based) and
  ``landmarks/N.lms`` (0-based); rects come from the landmarks and crops are computed.

Pairing (the pack quirk): dataset index ``t`` is image ``t+1.jpg``, landmarks ``t.lms`` and rect
key ``"t"``. On the Sanders data this pairing gives 31.4-39.4 dB PSNR between
``crop_face(full_body_img/K.jpg, rect K-1)`` and ``crops_328/K.jpg``; shifting it by one frame
gives a median of about 25 dB.

Images are read on demand with ``cv2.imread`` (BGR); nothing is cached here, the caller caches.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from reference.errors import InputError
from reference.image import CROP_SIZE, ROI_SIZE, Rect, check_rect, crop_face, roi_of

N_LANDMARKS = 110

CropSource = Literal["pack", "computed"]
MaskedSource = Literal["memory", "pack"]
TemplateOrder = Literal["pingpong", "linear"]

__all__ = [
    "N_LANDMARKS",
    "TemplateFrame",
    "TemplateSource",
    "Pack",
    "Dataset",
    "open_source",
    "read_landmarks",
    "rect_from_landmarks",
    "template_index",
    "read_image",
]


# --------------------------------------------------------------------------- landmarks


def read_landmarks(path: str | Path, expected: int | None = N_LANDMARKS) -> np.ndarray:
    """Read a SyncTalk ``.lms`` file: one "x y" per line -> (N, 2) int32.

    As SyncTalk does, each line is parsed as float32 and the array cast to int32, which
    truncates toward zero ("531.9 210.2" -> 531, 210). Blank lines are ignored. Raises
    InputError for a missing/empty file, an unparsable line, a line without exactly two
    columns, a non-finite value, or a point count other than ``expected`` (None: any count).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "landmark file not found", "check the landmarks/ folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read landmark file: {exc}") from None
    rows: list[list[str]] = []
    linenos: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise InputError(path, f"line {lineno}: expected 2 columns 'x y', got {len(fields)}: {line.strip()!r}")
        rows.append(fields)
        linenos.append(lineno)
    if not rows:
        raise InputError(path, "landmark file is empty", f"expected {expected or 'some'} lines 'x y'")
    try:
        with np.errstate(over="ignore"):  # 1e40 becomes inf, refused below as out of range
            values = np.array(rows, dtype=np.float32)
    except ValueError:
        for lineno, fields in zip(linenos, rows):
            try:
                np.array(fields, dtype=np.float32)
            except ValueError:
                raise InputError(path, f"line {lineno}: cannot parse {' '.join(fields)!r} as two numbers") from None
        raise  # pragma: no cover - the loop finds the line
    bad = ~np.isfinite(values) | (np.abs(values) >= 2**31)
    if bad.any():
        i = int(np.nonzero(bad.any(axis=1))[0][0])
        raise InputError(path, f"line {linenos[i]}: value out of range: {' '.join(rows[i])!r}")
    if expected is not None and len(rows) != expected:
        raise InputError(path, f"expected {expected} landmarks, got {len(rows)}")
    return values.astype(np.int32)


def rect_from_landmarks(lms: np.ndarray) -> Rect:
    """SyncTalk's face rect: xmin = lms[1].x, xmax = lms[31].x, ymin = lms[52].y, ymax = ymin + (xmax - xmin)."""
    lms = np.asarray(lms)
    if lms.ndim != 2 or lms.shape[1] != 2 or lms.shape[0] <= 52:
        raise ValueError(f"landmarks must be (N >= 53, 2), got shape {lms.shape}")
    xmin = int(lms[1, 0])
    xmax = int(lms[31, 0])
    ymin = int(lms[52, 1])
    ymax = ymin + (xmax - xmin)
    return xmin, ymin, xmax, ymax


# --------------------------------------------------------------------------- template order


def template_index(i: int, n_images: int, order: TemplateOrder = "pingpong") -> int:
    """Dataset index ``t`` used by output frame ``i`` with ``n_images`` templates.

    ``"pingpong"`` (canonical, SyncTalk ``inference_328.py``): the loop steps its index before
    using it, so t = 1, 2, ..., last, last-1, ..., 1, 0, 1, 2, ... (last = n_images - 1) -- frame 0
    uses index 1, and the period is 2 * last. Computed in O(1). With a single image SyncTalk's
    loop would index past the end; here every frame uses index 0.

    ``"linear"`` (a variant seen in ports): t(i) = i % n_images -- frame 0 uses index 0.
    """
    i = int(i)
    n_images = int(n_images)
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if i < 0:
        raise ValueError(f"frame index must be >= 0, got {i}")
    if order == "linear":
        return i % n_images
    if order != "pingpong":
        raise ValueError(f"unknown template order {order!r}: use 'pingpong' or 'linear'")
    last = n_images - 1
    if last == 0:
        return 0
    p = (i + 1) % (2 * last)
    return p if p <= last else 2 * last - p


# --------------------------------------------------------------------------- images


def read_image(path: str | Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an image with ``cv2.imread`` (BGR uint8); InputError naming the file when it is missing,
    undecodable, truncated (a JPEG whose last scan has no end-of-image marker, which OpenCV would
    silently decode with grey fill) or, when ``shape`` is given, of another shape."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "image not found", "the folder must hold every numbered image")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(path, f"cannot read image: {exc}") from None
        if not data.startswith(b"\xff\xd8"):
            raise InputError(path, "not a JPEG file (no start-of-image marker)", "re-extract or replace the file")
        sos = data.rfind(b"\xff\xda")
        eoi = data.rfind(b"\xff\xd9")
        if sos < 0 or eoi < sos:
            raise InputError(path, "truncated or corrupt JPEG (no end-of-image marker after the last scan)",
                             "re-extract or replace the file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(path, "cannot decode image (corrupt or unsupported)", "re-extract or replace the file")
    if shape is not None and image.shape != tuple(shape):
        raise InputError(path, f"image has shape {image.shape}, expected {tuple(shape)}")
    return image


def _numbered(folder: Path, suffix: str) -> list[int]:
    pattern = re.compile(r"^(\d+)" + re.escape(suffix) + r"$")
    numbers = []
    for entry in folder.iterdir():
        m = pattern.match(entry.name)
        if m:
            numbers.append(int(m.group(1)))
    return sorted(numbers)


def _check_numbering(folder: Path, suffix: str, first: int, what: str) -> int:
    """Count ``first.., first+n-1`` numbered files in ``folder``; InputError on a gap or a missing folder."""
    if not folder.is_dir():
        raise InputError(folder, f"{what} folder not found")
    numbers = _numbered(folder, suffix)
    if not numbers:
        raise InputError(folder, f"no {what} files '<n>{suffix}' found")
    expected = range(first, first + len(numbers))
    if numbers[0] != first:
        raise InputError(folder, f"{what} files are numbered from {numbers[0]}, expected from {first}"
                         + (" (images are 1-based, landmarks 0-based)" if first in (0, 1) else ""))
    if numbers != list(expected):
        present = set(numbers)
        missing = next((k for k in expected if k not in present), None)
        if missing is not None:
            raise InputError(folder / f"{missing}{suffix}", f"missing: {what} must be numbered "
                             f"{first}..{first + len(numbers) - 1} without gaps")
        raise InputError(folder, f"{what} files must be numbered from {first} without gaps; found {numbers[0]}..{numbers[-1]}")
    return len(numbers)


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class TemplateFrame:
    """One template frame at dataset index ``t`` (image ``t+1.jpg``)."""

    t: int
    full: np.ndarray
    rect: Rect
    crop_328: np.ndarray
    roi_320: np.ndarray
    masked_320: np.ndarray | None = None


class TemplateSource:
    """The interface both sources implement."""

    kind: str = ""
    root: Path
    n_images: int
    default_crop_source: CropSource = "computed"

    def rect(self, t: int) -> Rect:  # pragma: no cover - abstract
        raise NotImplementedError

    def image_path(self, t: int) -> Path:
        """The full frame of dataset index ``t``: ``full_body_img/{t+1}.jpg``."""
        self._check_index(t)
        return self.root / "full_body_img" / f"{t + 1}.jpg"

    def frame(self, t: int, crop_source: CropSource | None = None, masked_source: MaskedSource = "memory") -> TemplateFrame:
        raise NotImplementedError  # pragma: no cover - abstract

    def paths(self, t: int, crop_source: CropSource | None = None, masked_source: MaskedSource = "memory") -> list[Path]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _check_index(self, t: int) -> None:
        if not 0 <= int(t) < self.n_images:
            raise IndexError(f"dataset index {t} out of range 0..{self.n_images - 1} ({self.root})")

    def _checked_rect(self, t: int, full: np.ndarray, rect_file: Path) -> Rect:
        rect = self.rect(t)
        try:
            return check_rect(rect, full.shape)
        except ValueError as exc:
            raise InputError(rect_file, f"rect for index {t} ({self.image_path(t).name}): {exc}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, n_images={self.n_images})"


def _existing_dir(root: str | Path, missing: str) -> Path:
    """`root` as a Path; InputError with `missing` when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, missing)
    return root


class Pack(TemplateSource):
    """The pre-cut pack (1-based images, 0-based landmarks and rect keys)."""

    kind = "pack"
    default_crop_source: CropSource = "pack"

    def __init__(self, root: str | Path, n_images: int | None = None) -> None:
        """`n_images` opens a partial copy (a golden's stored inputs): the rects of all `n_images`
        templates but the image files of only some; their numbering is not checked."""
        self.root = _existing_dir(root, "pack folder not found")
        self.rects_path = self.root / "cache" / "crop_rectangles.json"
        self.has_model_inputs = (self.root / "model_inputs").is_dir()
        self.has_landmarks = (self.root / "landmarks").is_dir()
        if n_images is not None:
            self._rects = self._load_rects(n_images)
            self.n_images = n_images
            return
        n = _check_numbering(self.root / "full_body_img", ".jpg", 1, "full-frame image")
        counts = {"full_body_img": n}
        for name in ("crops_328", "rois_320"):
            counts[name] = _check_numbering(self.root / name, ".jpg", 1, f"{name} image")
        if self.has_model_inputs:
            counts["model_inputs"] = _check_numbering(self.root / "model_inputs", ".jpg", 1, "model_inputs image")
        if self.has_landmarks:
            counts["landmarks"] = _check_numbering(self.root / "landmarks", ".lms", 0, "landmark")
        self._rects = self._load_rects(n)
        counts["crop_rectangles.json"] = len(self._rects)
        if len(set(counts.values())) != 1:
            detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
            raise InputError(self.root, f"pack parts disagree on the frame count ({detail})",
                             "every folder must hold one file per frame")
        self.n_images = n

    def _load_rects(self, n: int) -> list[Rect]:
        path = self.rects_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(path, "crop rectangles file not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, f"cannot parse JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InputError(path, 'expected an object {"0": {"rect": [x1, y1, x2, y2]}, ...}')
        if len(data) != n:
            raise InputError(path, f"holds {len(data)} rects but full_body_img holds {n} images",
                             "every folder must hold one file per frame")
        rects = []
        for t in range(n):
            entry = data.get(str(t))
            if entry is None:
                raise InputError(path, f'missing key "{t}" (keys must be 0..{n - 1})')
            rect = entry.get("rect") if isinstance(entry, dict) else None
            if (
                not isinstance(rect, list)
                or len(rect) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in rect)
            ):
                raise InputError(path, f'key "{t}": "rect" must be four integers [x1, y1, x2, y2], got {rect!r}')
            x1, y1, x2, y2 = rect
            if x2 <= x1 or y2 <= y1 or x1 < 0 or y1 < 0:
                raise InputError(path, f'key "{t}": invalid rect {rect}')
            rects.append((x1, y1, x2, y2))
        return rects

    def rect(self, t: int) -> Rect:
        """The face rect of dataset index ``t`` (key ``str(t)`` of crop_rectangles.json)."""
        self._check_index(t)
        return self._rects[t]

    def _check_sources(self, crop_source: CropSource | None, masked_source: MaskedSource) -> CropSource:
        crop_source = crop_source or self.default_crop_source
        if crop_source not in ("pack", "computed"):
            raise ValueError(f"unknown crop_source {crop_source!r}: use 'pack' or 'computed'")
        if masked_source not in ("memory", "pack"):
            raise ValueError(f"unknown masked_source {masked_source!r}: use 'memory' or 'pack'")
        if masked_source == "pack" and not self.has_model_inputs:
            raise InputError(self.root / "model_inputs", "folder not found", "use masked_source='memory'")
        return crop_source

    def paths(self, t: int, crop_source: CropSource | None = None, masked_source: MaskedSource = "memory") -> list[Path]:
        """The files ``frame(t, crop_source, masked_source)`` reads."""
        crop_source = self._check_sources(crop_source, masked_source)
        self._check_index(t)
        k = f"{t + 1}.jpg"
        out = [self.root / "full_body_img" / k, self.rects_path]
        if crop_source == "pack":
            out += [self.root / "crops_328" / k, self.root / "rois_320" / k]
        if masked_source == "pack":
            out.append(self.root / "model_inputs" / k)
        return out

    def frame(self, t: int, crop_source: CropSource | None = None, masked_source: MaskedSource = "memory") -> TemplateFrame:
        """Template frame ``t``. ``crop_source``: "pack" (canonical: the pack's crops_328/rois_320 JPEGs)
        or "computed" (crop_face of the full frame). ``masked_source``: "memory" (canonical:
        ``masked_320`` is None, the pipeline masks the ROI) or "pack" (model_inputs JPEG)."""
        crop_source = self._check_sources(crop_source, masked_source)
        self._check_index(t)
        k = f"{t + 1}.jpg"
        full = read_image(self.root / "full_body_img" / k)
        rect = self._checked_rect(t, full, self.rects_path)
        if crop_source == "pack":
            crop = read_image(self.root / "crops_328" / k, (CROP_SIZE, CROP_SIZE, 3))
            roi = read_image(self.root / "rois_320" / k, (ROI_SIZE, ROI_SIZE, 3))
        else:
            crop = crop_face(full, rect)
            roi = roi_of(crop)
        masked = None
        if masked_source == "pack":
            masked = read_image(self.root / "model_inputs" / k, (ROI_SIZE, ROI_SIZE, 3))
        return TemplateFrame(t=t, full=full, rect=rect, crop_328=crop, roi_320=roi, masked_320=masked)


class Dataset(TemplateSource):
    """The raw SyncTalk_2D layout: full_body_img/K.jpg (1-based) and landmarks/N.lms (0-based)."""

    kind = "dataset"
    default_crop_source: CropSource = "computed"

    def __init__(self, root: str | Path, n_images: int | None = None) -> None:
        """`n_images` opens a partial copy (a golden's stored inputs): the files of only some of
        `n_images` templates; their numbering is not checked."""
        self.root = _existing_dir(root, "dataset folder not found")
        self._rects: dict[int, Rect] = {}
        if n_images is not None:
            self.n_images = n_images
            return
        if not (self.root / "landmarks").is_dir() and (self.root / "crops_328").is_dir():
            raise InputError(self.root, "a pre-cut pack without landmarks/, not a raw dataset",
                             "give it as a pack (--pack, or pack = ... in a config)")
        n = _check_numbering(self.root / "full_body_img", ".jpg", 1, "full-frame image")
        m = _check_numbering(self.root / "landmarks", ".lms", 0, "landmark")
        if n != m:
            raise InputError(self.root, f"full_body_img holds {n} images but landmarks holds {m} files",
                             "image K.jpg pairs with landmarks/(K-1).lms: the counts must match")
        self.n_images = n

    def landmarks_path(self, t: int) -> Path:
        self._check_index(t)
        return self.root / "landmarks" / f"{t}.lms"

    def rect(self, t: int) -> Rect:
        """The face rect of dataset index ``t`` from ``landmarks/t.lms`` (memoised: it is tiny)."""
        self._check_index(t)
        if t not in self._rects:
            self._rects[t] = rect_from_landmarks(read_landmarks(self.landmarks_path(t)))
        return self._rects[t]

    def _check_sources(self, crop_source: CropSource | None, masked_source: MaskedSource) -> None:
        crop_source = crop_source or self.default_crop_source
        if crop_source != "computed":
            raise ValueError(f"a raw dataset has no pre-cut crops: crop_source must be 'computed', got {crop_source!r}")
        if masked_source != "memory":
            raise ValueError(f"a raw dataset has no model_inputs: masked_source must be 'memory', got {masked_source!r}")

    def paths(self, t: int, crop_source: CropSource | None = None, masked_source: MaskedSource = "memory") -> list[Path]:
        """The files ``frame(t)`` reads: the full frame and its landmarks."""
        self._check_sources(crop_source, masked_source)
        return [self.image_path(t), self.landmarks_path(t)]

    def frame(self, t: int, crop_source: CropSource | None = None, masked_source: MaskedSource = "memory") -> TemplateFrame:
        """Template frame ``t``: full frame, rect from landmarks, crop and ROI computed."""
        self._check_sources(crop_source, masked_source)
        full = read_image(self.image_path(t))
        rect = self._checked_rect(t, full, self.landmarks_path(t))
        crop = crop_face(full, rect)
        return TemplateFrame(t=t, full=full, rect=rect, crop_328=crop, roi_320=roi_of(crop), masked_320=None)


def open_source(path: str | Path) -> Pack | Dataset:
    """Open a pre-cut pack (cache/crop_rectangles.json + crops_328/) or a raw dataset
    (full_body_img/ + landmarks/), detected by content."""
    root = Path(path)
    if not root.exists():
        raise InputError(root, "not found", "give a pre-cut pack or a raw SyncTalk_2D dataset folder")
    if not root.is_dir():
        raise InputError(root, "not a folder", "give a pre-cut pack or a raw SyncTalk_2D dataset folder")
    has_rects = (root / "cache" / "crop_rectangles.json").is_file()
    has_crops = (root / "crops_328").is_dir()
    if has_rects or has_crops:
        if has_rects and has_crops:
            return Pack(root)
        missing = "crops_328/" if has_rects else "cache/crop_rectangles.json"
        raise InputError(root, f"looks like a pre-cut pack but {missing} is missing")
    has_full = (root / "full_body_img").is_dir()
    has_lms = (root / "landmarks").is_dir()
    if has_full and has_lms:
        return Dataset(root)
    missing = [name for name, ok in (("full_body_img/", has_full), ("landmarks/", has_lms)) if not ok]
    raise InputError(
        root,
        "neither a pre-cut pack nor a raw dataset: missing " + " and ".join(missing),
        "a pack needs cache/crop_rectangles.json and crops_328/ (plus full_body_img/, rois_320/); "
        "a raw dataset needs full_body_img/ and landmarks/",
    )


def open_template_source(path: Path, kind: str) -> TemplateSource:
    """The pack or raw dataset at `path`."""
    return Dataset(path) if kind == "dataset" else open_source(path)
