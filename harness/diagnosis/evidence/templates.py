"""Which pack image a composited frame was made on, found by matching outside the face.

Outside its face rect a composited frame is its template frame (or that frame's round trip through
an output codec), so the template is the pack image whose pixels around the face agree with the
frame's. `TemplateIndex.match` ranks every image of the pack on 1/8-scale grey thumbnails outside
the union of all face rects (one matrix product), then scores the best few, and the images the
caller expects, at half resolution over the face band (the bounding box of all rects, with a
margin): squared differences clipped at `CLIP` levels, leaving out the pixels that differ from
every image scored (the generated patch, wherever it was pasted). Ties (two images with the same
background) go to the first hint, else to the image nearest to it.

`template_sequence` then compares two sequences of matched templates: the constant offset, the loop
style of each side (ping-pong or wrap around the pack, as `reference.data.template_index` names
them), and the frames where one side repeats or drops a template that the other advances by one.
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import cv2
import numpy as np

from harness.diagnosis.evidence.pixels import channel_max, half_size
from harness.system.images import decoded_image
from harness.system.lru import LRU
from reference.data import read_image, template_index

THUMB = 8  # thumbnail scale: cv2 decodes JPEGs at 1/8 size cheaply
COARSE_TOP = 6  # images scored at full resolution after the thumbnail ranking
BAND_MARGIN = 48  # pixels around the union of the face rects
CLIP = 32  # grey levels: larger differences count as this much
FOREIGN = 8  # grey levels: a pixel this far from every image scored is not the template's
TWIN = 1.0  # mean clipped squared difference under which two images are the same around the face
NO_MATCH = 200.0  # mean clipped squared difference above which no pack image is the template
BAND_CACHE = 96  # templates' half-resolution face bands kept
EXACT = 0.05  # a first hint within this score over EXACT_SHARE of the band is taken without a search (lossless)
EXACT_SHARE = 0.5
TIE = 0.05  # scores within 5 % (and 0.05) of the lowest are a tie, which the first hint wins


_THUMBNAILS = LRU(2)  # the thumbnails of the last packs seen: every run of a parity run matches the same pack


def _union_box(rects: Sequence[tuple[int, int, int, int]], margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    h, w = shape
    x1 = max(0, min(r[0] for r in rects) - margin)
    y1 = max(0, min(r[1] for r in rects) - margin)
    x2 = min(w, max(r[2] for r in rects) + margin)
    y2 = min(h, max(r[3] for r in rects) + margin)
    return slice(y1, y2), slice(x1, x2)


class TemplateIndex:
    """The pack's images, ready to be matched against composited frames (see the module docstring)."""

    def __init__(self, source) -> None:
        self.source = source
        self.n = source.n_images
        self.rects = [source.rect(t) for t in range(self.n)]
        self.shape = self.full(0).shape
        thumbs = _THUMBNAILS.get(self._files_key(), lambda: [self._thumb_of_file(t) for t in range(self.n)])
        th, tw = thumbs[0].shape
        mask = np.ones((th, tw), bool)
        for x1, y1, x2, y2 in self.rects:
            mask[max(0, (y1 - BAND_MARGIN) // THUMB):(y2 + BAND_MARGIN) // THUMB + 1,
                 max(0, (x1 - BAND_MARGIN) // THUMB):(x2 + BAND_MARGIN) // THUMB + 1] = False
        if mask.sum() < 16:  # the face covers the frame: use all of it
            mask[:] = True
        sparse = np.zeros_like(mask)
        sparse[::2, ::2] = True  # every other thumbnail pixel ranks the images well enough, 4x faster
        self._mask = mask & sparse if (mask & sparse).sum() >= 16 else mask
        self._thumbs = np.stack([t[self._mask] for t in thumbs]).astype(np.float32)
        self._norms = np.einsum("ij,ij->i", self._thumbs, self._thumbs)
        self.band = _union_box(self.rects, BAND_MARGIN, self.shape[:2])
        self._twins: dict[tuple[int, int], bool] = {}
        self._bands = LRU(BAND_CACHE)

    def _files_key(self) -> tuple:
        """The pack's image files as they are now (path, size, modification time): the thumbnails' key."""
        stats = [(path, path.stat()) for path in (self.source.image_path(t) for t in range(self.n))]
        return tuple((str(path), st.st_size, st.st_mtime_ns) for path, st in stats)

    def _thumb_of_file(self, t: int) -> np.ndarray:
        path = self.source.image_path(t)
        thumb = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if thumb is None:
            return self.thumb(read_image(path))
        return thumb

    def thumb(self, frame: np.ndarray) -> np.ndarray:
        """A frame's grey thumbnail at the templates' thumbnail size."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        h, w = -(-frame.shape[0] // THUMB), -(-frame.shape[1] // THUMB)
        return cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)

    def full(self, t: int) -> np.ndarray:
        """Template image `t` (BGR uint8, read-only), from the run's shared cache of decoded images."""
        return decoded_image(self.source.image_path(t))

    def _band(self, t: int) -> np.ndarray:
        """Template `t`'s face band at half resolution (kept while among the last BAND_CACHE used)."""
        ys, xs = self.band
        return self._bands.get(t, lambda: half_size(self.full(t)[ys, xs]))

    def _difference(self, band: np.ndarray, t: int) -> np.ndarray:
        """The clipped difference of a frame's half-resolution face band to template `t`'s."""
        return np.minimum(channel_max(cv2.absdiff(band, self._band(t))), CLIP).astype(np.float32)

    def match(self, frame: np.ndarray, hints: Sequence[int] = ()) -> tuple[int | None, float]:
        """The template of `frame` and its score (the mean clipped squared difference over the face band,
        less the pixels that differ from every image scored: the generated patch, wherever it was
        pasted); (None, score) when no pack image comes within NO_MATCH. `hints` (images the caller
        expects) are always scored; ties go to the first hint, else to the image nearest to it."""
        if frame.shape != self.shape:
            return None, float("inf")
        ys, xs = self.band
        band = half_size(frame[ys, xs])
        hinted = [t for t in dict.fromkeys(hints) if t is not None and 0 <= t < self.n]
        if hinted:  # a hint that matches all but the patch needs no search
            first = self._difference(band, hinted[0])
            keep = first < FOREIGN
            if keep.mean() >= EXACT_SHARE and float(np.mean(first[keep] ** 2)) <= EXACT:
                return hinted[0], float(np.mean(first[keep] ** 2))
        f = self.thumb(frame)[self._mask].astype(np.float32)
        coarse = self._norms - 2.0 * np.einsum("ij,j->i", self._thumbs, f)  # no BLAS threads: they wait on a busy machine
        order = np.argpartition(coarse, COARSE_TOP)[:COARSE_TOP] if self.n > COARSE_TOP else range(self.n)
        candidates = list(dict.fromkeys(hinted + [int(t) for t in order]))
        diffs = {t: self._difference(band, t) for t in candidates}
        keep = np.min(np.stack(list(diffs.values())), axis=0) < FOREIGN
        scores = {t: float(np.mean(d[keep] ** 2)) if keep.any() else float(np.mean(d ** 2)) for t, d in diffs.items()}
        lowest = min(scores.values())
        tied = [t for t in candidates if scores[t] <= lowest * (1 + TIE) + TIE]
        anchor = hinted[0] if hinted else tied[0]
        best = min(tied, key=lambda t: (t != anchor, abs(t - anchor)))
        return (best if scores[best] <= NO_MATCH else None), scores[best]


    def twins(self, t: int, u: int) -> bool:
        """Whether images `t` and `u` are the same around their face rects (a held pose: a composited
        frame, whose rect holds the generated patch, cannot tell them apart)."""
        if t == u:
            return True
        key = (min(t, u), max(t, u))
        if key not in self._twins:
            ys, xs = self.band
            d = np.minimum(channel_max(cv2.absdiff(half_size(self.full(t)[ys, xs]), half_size(self.full(u)[ys, xs]))),
                           CLIP).astype(np.float32)
            keep = np.ones(d.shape, bool)
            for x1, y1, x2, y2 in (self.rects[t], self.rects[u]):
                keep[max(0, (y1 - ys.start) // 2):(y2 - ys.start) // 2 + 1,
                     max(0, (x1 - xs.start) // 2):(x2 - xs.start) // 2 + 1] = False
            self._twins[key] = float(np.mean(d[keep] ** 2)) <= TWIN
        return self._twins[key]


def loop_style(sequence: dict[int, int | None], n_images: int) -> dict:
    """How a side steps through the pack: the order of `reference.data.template_index` ("ping-pong" or
    "wrap", its "linear"; "not seen" when the run does not reach the pack's last image) and the
    constant frame offset under which it fits the most frames."""
    frames = [i for i, t in sequence.items() if t is not None]
    best = None
    for order in ("pingpong", "linear"):
        for offset in range(-3, 4):
            fits = sum(template_index(max(i + offset, 0), n_images, order) == sequence[i] for i in frames)
            key = (fits, offset == 0, order == "pingpong")
            if best is None or key > best[0]:
                best = (key, order, offset)
    (fits, _, _), order, offset = best
    seen = bool(frames) and max(frames) + abs(offset) + 1 >= n_images  # the run reaches the pack's end
    return {"order": ("ping-pong" if order == "pingpong" else "wrap") if seen else "not seen", "offset": offset,
            "fits": fits, "frames": len(frames)}


def template_sequence(seq_a: dict[int, int | None], seq_b: dict[int, int | None], n_images: int,
                      twins: Callable[[int, int], bool] = lambda t, u: t == u) -> dict | None:
    """How the candidate's templates (`seq_b`, frame index -> template) differ from the reference's
    (`seq_a`); None when they agree on every frame both have. Images that `twins` says are the same
    count as one. Against the most common offset, a frame that is off repeats its previous template
    (a repeat) or skips ahead (a drop)."""
    common = sorted(i for i in seq_a.keys() & seq_b.keys())
    same = lambda t, u: t is not None and u is not None and twins(t, u)  # noqa: E731
    differ = [i for i in common if not same(seq_a[i], seq_b[i])]
    if not differ:
        return None
    known = [i for i in common if seq_a[i] is not None and seq_b[i] is not None]
    shifts = Counter(seq_b[i] - seq_a[i] for i in known)
    offset, count = shifts.most_common(1)[0] if shifts else (0, 0)
    repeats, drops = [], []
    for prev, i in zip(common, common[1:]):
        a, b, b_prev = seq_a[i], seq_b[i], seq_b[prev]
        if i != prev + 1 or None in (a, b, b_prev) or not 0 <= a + offset < n_images or same(b, a + offset):
            continue
        if same(b, b_prev):
            repeats.append(i)
        elif abs(b - b_prev) >= 2:
            drops.append(i)
    return {"differ": differ, "offset": offset, "offset_frames": count, "frames_compared": len(common),
            "unmatched": [i for i in common if seq_b[i] is None],
            "loop_a": loop_style(seq_a, n_images), "loop_b": loop_style(seq_b, n_images),
            "repeats": repeats, "drops": drops}
