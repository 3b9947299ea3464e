"""Knobs fitted before any generator run, from what the pipeline reveals on its own.

* `fit_background`: outside the face rect a composited frame is its template frame, or that
  frame's round trip through the output codec. Comparing the candidate's background with each
  template pairing (`template_order`) and each codec (`output`: lossless, or OpenCV's or Pillow's
  JPEG encoder at quality 50..100, 4:2:0 or 4:4:4) finds both without the generator.
* `fit_audio`: a port that dumps its generator audio inputs (`audio_windows`) reveals every
  audio-side knob: the reference's windows are computed for each audio front end (STFT framing,
  window, mel scale: one encoder pass each) and each windowing (padding, window/tile, offset,
  audio source), and the exact match is kept. No generator call. Where none matches (an engine
  whose encoder computes in another precision), `nearest_audio` still says which windowing the
  dumps sit nearest, and how clearly.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from reference import audio as audio_mod, features
from reference.conventions import CHOICES, Conventions, JpegCodec
from reference.data import read_image, template_index
from reference.output import output_roundtrip

MCU = 16  # JPEG blocks of 4:2:0 are 16x16: blocks that touch the face rect are not background
MARGIN = 2 * MCU
QUALITIES = range(50, 101)
OFFSETS = range(-3, 4)
DIP = 0.8  # a requantisation error this far below the template's marks the candidate's JPEG quality
STRIP_ROWS, STRIP_COLS = 256, 512  # the largest background sample the codec fit round-trips
AUDIO_MATCH = 1e-3  # max abs over the dumped windows under which a windowing is a match
NEAR_SPREAD = 1.5  # windowings within this factor of the nearest RMS distance are one group
CLEAR_NEAREST = 0.5
"""Dumped audio windows that match no windowing (an encoder computing in another precision) still
narrow the audio alignment to their nearest group of windowings where that group's RMS distances are
at most this fraction of the next windowing's. Measured on the TorchScript export under OpenVINO's
bf16 (3 frames, 336 windowings): the group of the canonical windowing (with the symmetric STFT window
and reflect framing, which the dumps cannot tell apart) sat at 0.0407-0.0408, the next at 0.231.
Screening every combination frame by frame took 22 of the diagnosis's 39 s there."""


def background_mask(shape: tuple[int, ...], rects: list[tuple[int, int, int, int]]) -> np.ndarray:
    """True where a pixel lies outside every rect by more than MARGIN, on the JPEG block grid."""
    mask = np.ones(shape[:2], bool)
    for x1, y1, x2, y2 in rects:
        ya, xa = max(0, (y1 - MARGIN) // MCU * MCU), max(0, (x1 - MARGIN) // MCU * MCU)
        yb, xb = -(-(y2 + MARGIN) // MCU) * MCU, -(-(x2 + MARGIN) // MCU) * MCU
        mask[ya:yb, xa:xb] = False
    return mask


def _mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = a[mask].astype(np.int16) - b[mask].astype(np.int16)
    return float(np.mean(d.astype(np.float32) ** 2))


def background_strip(shape: tuple[int, ...], rects: list[tuple[int, int, int, int]]) -> tuple[slice, slice]:
    """The largest full-width or full-height strip of the frame, on the JPEG block grid from the
    top-left corner, that `background_mask` keeps whole (above, below, left or right of the rects)."""
    height, width = shape[:2]
    mask = background_mask(shape, rects)
    rows, cols = np.flatnonzero(~mask.all(axis=1)), np.flatnonzero(~mask.all(axis=0))
    if not len(rows):
        return slice(0, height), slice(0, width)
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    bottom_start, right_start = -(-bottom // MCU) * MCU, -(-right // MCU) * MCU
    strips = [(top * width, (slice(0, top), slice(0, width))),
              ((height - bottom_start) * width, (slice(bottom_start, height), slice(0, width))),
              (left * height, (slice(0, height), slice(0, left))),
              ((width - right_start) * height, (slice(0, height), slice(right_start, width)))]
    return max(strips, key=lambda s: s[0])[1]


def strip_window(strip: tuple[slice, slice], rows: int = STRIP_ROWS, cols: int = STRIP_COLS) -> tuple[slice, slice]:
    """At most `rows` x `cols` of a `background_strip`, from its middle, on the JPEG block grid: the
    codec fit's sample (a 1280x720 frame's strip of 720 x 528 costs 2.9 times as many round trips)."""
    def middle(part: slice, most: int) -> slice:
        length = part.stop - part.start
        if length <= most:
            return part
        start = part.start + (length - most) // 2 // MCU * MCU
        return slice(start, start + most)
    return middle(strip[0], rows), middle(strip[1], cols)


def _requantisation_error(img: np.ndarray, output: str) -> float:
    """MSE between `img` and its round trip through `output`, away from the strip's edges."""
    again = output_roundtrip(img, output)
    inner = (slice(MCU, -MCU or None), slice(MCU, -MCU or None))
    return float(np.mean((again[inner].astype(np.float32) - img[inner].astype(np.float32)) ** 2))


def fit_codec(strips: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The JPEG quality and chroma subsampling of a candidate, from (candidate, template) background strips.

    A decoded JPEG lies on its quantisation lattice, so re-encoding it at its own quality changes it
    far less than re-encoding its template does (the template being any other image of the same
    content): the ratio of the two requantisation errors dips at the candidate's quality (to about
    0.5 for another libjpeg-compatible encoder, near 0 for OpenCV's own) and stays near 1 elsewhere,
    whatever the content. No ratio below DIP: the candidate is lossless. A port that decodes its
    templates differently does not hide its codec this way.
    """
    best = None
    for sub, q in itertools.product(("420", "444"), QUALITIES):
        name = JpegCodec("cv2", q, sub).name
        ours = sum(_requantisation_error(cand, name) for cand, _ in strips)
        theirs = sum(_requantisation_error(tpl, name) for _, tpl in strips)
        ratio = ours / max(theirs, 1e-9)
        if ratio < DIP and (best is None or ratio < best[0]):
            best = (ratio, name)
    return {"output": best[1] if best else "lossless", "ratio": best[0] if best else None}


def fit_background(source, candidate: dict[int, np.ndarray]) -> dict:
    """The template pairing and output codec that best explain the candidate's pixels outside the face.

    `candidate` maps frame indices to candidate frames (two are enough): the pairing is the
    `template_order` whose templates are closest to the candidate's background; the codec comes from
    `fit_codec` on the first frame, and OpenCV's or Pillow's encoder at that quality is the one whose
    round trip of the template is closer (OpenCV's on a tie: both are libjpeg). A background equal to
    its templates' pixels is lossless without the codec search (408 JPEG round trips).
    """
    indices = sorted(candidate)
    orders = CHOICES["template_order"]
    templates = {(o, i): template_index(i, source.n_images, o) for o in orders for i in indices}
    rects = {i: [source.rect(templates[(o, i)]) for o in orders] for i in indices}
    masks = {i: background_mask(candidate[i].shape, rects[i]) for i in indices}
    if not all(m.any() for m in masks.values()):
        return {"knobs": {}, "text": "no background outside the face rect to fit"}
    full = {t: read_image(source.image_path(t)) for t in set(templates.values())}
    pairing = {o: float(np.mean([_mse(full[templates[(o, i)]], candidate[i], masks[i]) for i in indices]))
               for o in orders}
    order = min(orders, key=lambda o: pairing[o])
    first = indices[0]
    strips = [strip_window(background_strip(candidate[i].shape, rects[i])) for i in indices[:2]]
    if pairing[order] == 0.0:  # the background is its templates' own pixels: no codec touched them
        codec = {"output": "lossless", "ratio": None}
    else:
        codec = fit_codec([(candidate[i][s], full[templates[(order, i)]][s]) for i, s in zip(indices, strips)])
    output = codec["output"]
    if output != "lossless":
        tpl = full[templates[(order, first)]]
        pil = "pil_" + output
        if _mse(output_roundtrip(tpl, pil), candidate[first], masks[first]) < _mse(
                output_roundtrip(tpl, output), candidate[first], masks[first]):
            output = pil
    return {"knobs": {"template_order": order, "output": output}, "pairing_mse": pairing, "codec_ratio": codec["ratio"]}


AUDIO_SIDE = ("stft_framing", "stft_window", "mel_scale", "audio_source", "feature_padding", "audio_window",
              "audio_offset")


def _windowings(rows_of: dict, k: int):
    """(conventions, generator audio inputs of frames 0..k-1) for every windowing of every row set."""
    for (base, rows), mode, offset in itertools.product(rows_of.items(), CHOICES["audio_window"], OFFSETS):
        conv = replace(base, audio_window=mode, audio_offset=offset)
        yield conv, np.concatenate([features.audio_window(rows, i, mode, offset) for i in range(k)])


def nearest_audio(audio_path, models, dumped: np.ndarray, fixed_rows: np.ndarray | None = None) -> dict | None:
    """Where the candidate's generator audio inputs `dumped` ((k, 32, 16, 16): its first k frames) sit
    among the reference's windowings: {"knobs" (the audio-side knobs of the nearest by max abs; ties go
    to the fewest deviations from canonical, then the smallest offset), "max_abs", "frames", "near"}.
    "near" lists the knobs of every windowing within NEAR_SPREAD of the smallest RMS distance when that
    group is clearly apart (its distances at most CLEAR_NEAREST of the next one's; not all of them),
    else None.
    `fixed_rows` (the pack's aud_ave.bin) adds the audio_source=aud_ave hypothesis. None when no
    windowing can run."""
    dumped = np.asarray(dumped, np.float32).reshape(-1, 32, 16, 16)
    k = len(dumped)
    wav = audio_mod.load_wav(audio_path)
    rows_of: dict[Conventions, np.ndarray] = {}
    for framing, window, scale in itertools.product(CHOICES["stft_framing"], CHOICES["stft_window"], CHOICES["mel_scale"]):
        mel = audio_mod.melspectrogram(wav, framing=framing, window=window, mel_scale=scale)
        emb = models.encode(audio_mod.encoder_windows(mel)[:k + 8 + max(OFFSETS)])
        for padding in CHOICES["feature_padding"]:
            conv = Conventions(stft_framing=framing, stft_window=window, mel_scale=scale, feature_padding=padding)
            rows_of[conv] = features.pad_features(emb, padding)
    if fixed_rows is not None:
        rows_of[Conventions(audio_source="aud_ave")] = fixed_rows
    measured = [(float(np.max(np.abs(ours - dumped))), float(np.sqrt(np.mean((ours - dumped) ** 2))), conv)
                for conv, ours in _windowings(rows_of, k)]
    if not measured:
        return None
    max_abs, _, conv = min(measured, key=lambda m: (m[0], len(m[2].variants()), abs(m[2].audio_offset)))
    by_rms = sorted(measured, key=lambda m: m[1])
    nearest = by_rms[0][1]
    group = [m for m in by_rms if m[1] <= NEAR_SPREAD * nearest]
    clear = len(group) < len(by_rms) and group[-1][1] <= CLEAR_NEAREST * by_rms[len(group)][1]
    return {"knobs": _audio_knobs(conv), "max_abs": max_abs, "frames": k,
            "near": [_audio_knobs(m[2]) for m in group] if clear else None}


def _audio_knobs(conv: Conventions) -> dict:
    return {knob: getattr(conv, knob) for knob in AUDIO_SIDE}


def audio_match(nearest: dict | None) -> dict | None:
    """`nearest_audio`'s nearest windowing where it is a match (within AUDIO_MATCH): {"knobs", "max_abs",
    "frames"}; None otherwise."""
    if nearest is None or nearest["max_abs"] > AUDIO_MATCH:
        return None
    return {key: nearest[key] for key in ("knobs", "max_abs", "frames")}


def fit_audio(audio_path, models, dumped: np.ndarray, fixed_rows: np.ndarray | None = None) -> dict | None:
    """The audio-side knobs under which the reference's generator audio inputs equal `dumped` (within
    AUDIO_MATCH, `nearest_audio`), or None when no combination matches."""
    return audio_match(nearest_audio(audio_path, models, dumped, fixed_rows))
