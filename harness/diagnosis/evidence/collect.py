"""Observing pairs of frames, one at a time, for the image evidence.

`Evidence.observe` takes one reference frame and one candidate frame of the same index and keeps
only small things: each side's template and patch box, the squared error of the pair and of the
models that move the reference towards the candidate (its patch on the candidate's template, or at
the candidate's place), and, where both sides sit on the same template at the same place, the
statistics of the colour fit, the resize kernels (a sample of frames), the residual's noise and the
mouth's motion. Frames are never kept, so any number of pairs can be observed; `observe` may run
in several threads at once. `harness.diagnosis.evidence.findings` turns the observations into
findings.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from harness.diagnosis.evidence import codec
from harness.diagnosis.evidence.colour import ColourStats
from harness.diagnosis.evidence.mouth import motion, mouth_box
from harness.diagnosis.evidence.noise import NoiseStats
from harness.diagnosis.evidence.paste import Placement, patch_box, refine
from harness.diagnosis.evidence.pixels import Box, area, clip_box, inset, intersect, moved_patch, region, sse, within
from harness.diagnosis.evidence.resize import ResizeStats
from harness.diagnosis.evidence.templates import TemplateIndex
from reference.data import template_index

HOLE_SHARE = 0.25  # a mouth box up to this share of the rect is left out of the colour and kernel fits
SAMPLE = 12  # frames on which the costlier models (resize kernels, codec round trip) are run
CROP_MARGIN = 24


@dataclass
class Observation:
    """What one pair of frames showed."""

    i: int
    t_a: int | None
    t_b: int | None
    sse: float
    box_a: Box | None = None
    box_b: Box | None = None
    moved: tuple[float, float] | None = None  # the reference's patch content's displacement in the candidate
    template_sse: float | None = None  # the reference's patch on the candidate's template
    paste_sse: float | None = None  # the reference's patch at the candidate's place
    codec_sse: float | None = None  # the reference round-tripped through the candidate's codec
    background_sse: float | None = None  # outside the face band: the JPEG side against its template
    background_codec_sse: float | None = None  # ... against its template round-tripped through its settings
    mouth_sse: float | None = None  # the pair's squared error inside the mouth (comparable frames)
    comparable: bool = False  # same template, same place
    regions: tuple[float, int, float, int] | None = None  # squared error and values in the mouth, in the face rect
    values: int = 0  # values compared (height x width x channels)


class Evidence:
    """Observations of pairs (reference, candidate) of one run; see the module docstring.

    `frames` is about how many pairs will come (it spaces the sampled frames); `codec_a` and
    `codec_b` are the sides' codecs (`codec.settings` of their files), None when not known.
    """

    def __init__(self, source, frames: int, codec_a: codec.CodecSettings | None = None,
                 codec_b: codec.CodecSettings | None = None) -> None:
        self.source = source
        self.index = TemplateIndex(source)
        self.every = max(1, frames // SAMPLE)
        self.codec_a, self.codec_b = codec_a, codec_b
        self.obs: dict[int, Observation] = {}
        self.colour: list[ColourStats] = []  # one per comparable frame
        self.resize = ResizeStats()
        self.noise = NoiseStats()
        self.motion_a: dict[int, np.ndarray] = {}
        self.motion_b: dict[int, np.ndarray] = {}
        self.crops: dict[str, tuple[float, int, np.ndarray]] = {}  # kind -> (how telling, frame, image)
        self._lock = threading.Lock()
        self._mouths = lru_cache(maxsize=None)(lambda t: mouth_box(source, t))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.index.shape

    def observe(self, i: int, ref: np.ndarray, cand: np.ndarray, ref_template: int | None = None) -> None:
        """Observe pair `i` (0-based frame index); `ref_template`, when known, spares its search."""
        expected = template_index(i, self.index.n)
        t_a = ref_template if ref_template is not None else self.index.match(ref, [expected])[0]
        t_b = self.index.match(cand, [t_a, expected])[0] if ref.shape == cand.shape else None
        ob = Observation(i, t_a, t_b, sse(ref, cand) if ref.shape == cand.shape else 0.0,
                         values=ref.size if ref.shape == cand.shape else 0)
        if t_a is not None and ref.shape == cand.shape:
            ob.regions = self._regions(ref, cand, t_a)
        if t_a is not None and t_b is not None:
            self._geometry(ob, ref, cand)
        if i % self.every == 0 and ref.shape == cand.shape:
            self._codec_model(ob, ref, cand)
        with self._lock:
            self.obs[i] = ob

    def _regions(self, ref: np.ndarray, cand: np.ndarray, t: int) -> tuple[float, int, float, int]:
        """The pair's squared error and number of values in the mouth of template `t` and in its face rect
        (the mouth clipped to the rect)."""
        rect = self.index.rects[t]
        mouth = intersect(clip_box(self._mouths(t), ref.shape) or rect, rect)
        mouth_sse = sse(region(ref, mouth), region(cand, mouth)) if mouth else 0.0
        channels = ref.shape[2]
        return mouth_sse, area(mouth) * channels, sse(region(ref, rect), region(cand, rect)), area(rect) * channels

    def _background_sse(self, a: np.ndarray, b: np.ndarray) -> float:
        """Squared error outside the face band (where a composited frame is its template)."""
        ys, xs = self.index.band
        return sse(a, b) - sse(a[ys, xs], b[ys, xs])

    def _codec_model(self, ob: Observation, ref: np.ndarray, cand: np.ndarray) -> None:
        """The reference round-tripped through the candidate's codec (or the other way); and, outside the
        face band, the JPEG side against its own template round-tripped through its settings by OpenCV's
        libjpeg: what that leaves is another encoder. Both JPEG at the same settings: their backgrounds on
        a shared template."""
        a, b = self.codec_a, self.codec_b
        if a is None or b is None or (not a.jpeg and not b.jpeg):
            return
        if a.same(b):
            if ob.t_a is not None and ob.t_a == ob.t_b:
                ob.background_sse = ob.background_codec_sse = self._background_sse(ref, cand)
            return
        if b.jpeg:
            ob.codec_sse = sse(codec.roundtrip(ref, b), cand)
            frame, t, settings = cand, ob.t_b, b
        else:  # a lossless candidate of a JPEG reference: the candidate round-tripped the other way
            ob.codec_sse = sse(ref, codec.roundtrip(cand, a))
            frame, t, settings = ref, ob.t_a, a
        if t is not None:
            template = self.index.full(t)
            ob.background_sse = self._background_sse(template, frame)
            ob.background_codec_sse = self._background_sse(codec.roundtrip(template, settings), frame)

    def _geometry(self, ob: Observation, ref: np.ndarray, cand: np.ndarray) -> None:
        tpl_a, tpl_b = self.index.full(ob.t_a), self.index.full(ob.t_b)
        ob.box_a, ob.box_b = patch_box(ref, tpl_a), patch_box(cand, tpl_b)
        if ob.box_a is None or ob.box_b is None:
            return
        place = Placement(ob.i, ob.box_a, self.index.rects[ob.t_a], ob.box_b, self.index.rects[ob.t_b])
        content = np.ascontiguousarray(region(ref, ob.box_a))
        if ob.t_a != ob.t_b:
            ob.template_sse = sse(moved_patch(tpl_b, content, place.expected_b()), cand)
        if not place.agrees():
            ob.moved = refine(ref, cand, ob.box_a, ob.box_b)
            place = replace(place, moved=ob.moved)
        if not place.agrees():
            ob.paste_sse = sse(moved_patch(tpl_b, content, ob.box_b), cand)
            dx, dy, _ = place.offset()
            self._keep_crop("paste_position", abs(dx) + abs(dy), ob.i, ref, cand, _union(ob.box_a, ob.box_b))
        elif ob.t_a == ob.t_b:
            ob.comparable = True
            self._comparable(ob, ref, cand, tpl_a)

    def _comparable(self, ob: Observation, ref: np.ndarray, cand: np.ndarray, template: np.ndarray) -> None:
        mouth = clip_box(self._mouths(ob.t_a), ref.shape)
        rect = self.index.rects[ob.t_a]
        hole = mouth if mouth and area(mouth) <= HOLE_SHARE * area(rect) else None  # the lips, not a mask box
        colour = ColourStats()
        colour.add(ob.i, *_outside(ref, cand, inset(ob.box_a, 4), hole))
        noise = NoiseStats()
        noise.add(ob.i, ref, cand, ob.box_a)
        motions = (motion(ref, template, mouth), motion(cand, template, mouth)) if mouth else None
        ob.mouth_sse = sse(region(ref, mouth), region(cand, mouth)) if mouth else None
        resize = None
        if ob.i % self.every == 0:
            resize = ResizeStats()
            resize.add(ob.i, ref, cand, rect, hole)
            self._keep_crop("resize_kernel", -ob.i, ob.i, ref, cand, rect, zoom=2)
        with self._lock:
            self.colour.append(colour)
            self.noise.merge(noise)
            if resize is not None:
                self.resize.merge(resize)
            if motions is not None:
                self.motion_a[ob.i], self.motion_b[ob.i] = motions

    def _keep_crop(self, kind: str, score: float, i: int, ref: np.ndarray, cand: np.ndarray, box: Box,
                   zoom: int = 1) -> None:
        """Keep the reference | candidate crop around `box` of the most telling frame of `kind`."""
        with self._lock:
            if kind in self.crops and self.crops[kind][0] >= score:
                return
        x1, y1, x2, y2 = clip_box((box[0] - CROP_MARGIN, box[1] - CROP_MARGIN, box[2] + CROP_MARGIN,
                                   box[3] + CROP_MARGIN), ref.shape)
        pair = np.concatenate([ref[y1:y2, x1:x2], cand[y1:y2, x1:x2]], axis=1)
        if zoom > 1:
            pair = np.repeat(np.repeat(pair, zoom, axis=0), zoom, axis=1)
        with self._lock:
            if kind not in self.crops or self.crops[kind][0] < score:
                self.crops[kind] = (score, i, pair)


def _outside(ref: np.ndarray, cand: np.ndarray, box: Box, hole: Box | None) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' pixels in `box` but not in `hole` (the mouth, which the audio moves), as (N, 3) arrays."""
    a, b = region(ref, box), region(cand, box)
    inside = intersect(hole, box) if hole is not None else None
    if inside is None:
        return a, b
    keep = np.ones(a.shape[:2], bool)
    keep[within(inside, box)] = False
    return a[keep], b[keep]


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def observe_all(ev: Evidence, pairs, workers: int = 2) -> None:
    """Observe every ``(i, load_ref, load_cand[, ref_template])`` of `pairs` (loaders return the frames)
    on `workers` threads; the first error raised by a loader or an observation is raised here."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item) -> None:
        i, load_a, load_b, *known = item
        ev.observe(i, load_a(), load_b(), *known)

    with ThreadPoolExecutor(workers, thread_name_prefix="evidence") as pool:
        for _ in pool.map(one, pairs):
            pass
