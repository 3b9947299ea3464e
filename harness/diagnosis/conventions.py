"""Convention fit: the variant of the reference that reproduces a candidate over all knobs at once,
and its bill of deviations.

1. Fitted without the generator (harness/diagnosis/fit.py): the template pairing and the output
   codec from the candidate's pixels outside the face; the audio-side knobs from the candidate's
   dumped generator audio inputs, when it dumps them.
2. Forward selection on `SCREEN_FRAMES` frames (every move on one of them, the `PROBE_TOP` best on
   both): from that start, add the knob value that raises the PSNR (over the face region) most (the other fitted knobs may still change), until no move gains
   `MIN_GAIN_DB`; when no single move gains, the pairs of the `PAIR_TOP` best single moves are tried
   (two knobs that only help together: input and output channel order). Without audio dumps, the
   knobs that decide which audio a frame reads are then tried jointly (`align_audio`) and the
   steps resume.
   On `CONFIRM_FRAMES` frames, each fitted knob may then switch to another of its values (`refine`).
3. Backward pass on `CONFIRM_FRAMES` frames: a knob whose reversion to canonical costs less than
   `MIN_WEIGHT_DB` is dropped, the weakest first, until every knob left earns its place. Each
   knob's weight is the PSNR lost when it alone is reverted.
4. The bill: the fitted variant as a re-runnable `reference[...]` name, the match it reaches on every
   candidate frame given (per region), the deviations by weight and the residual, named by where it
   lies and what it is consistent with.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from harness.diagnosis.fit import OFFSETS, audio_match, fit_background, nearest_audio
from harness.diagnosis.render import Renderer
from harness.verdicts.metrics import psnr_from_mse
from reference import features
from reference.conventions import ALIASES, CHOICES, Conventions, JpegCodec, jpeg_codec
from reference.data import template_index
from reference.features import FEATURES_FILE, read_features_file
from reference.image import rect_mouth_box

SCREEN_FRAMES = 2
CONFIRM_FRAMES = 8
MIN_GAIN_DB = 0.1
MIN_WEIGHT_DB = 0.5
PAIR_TOP = 4
PROBE_TOP = 8  # moves scored on every screening frame after a first pass on one
MAX_ROUNDS = 24
EXPLAINED_PSNR = 45.0  # dB, worst frame: a fitted variant this close explains the candidate
AUDIO_BLOCK = ("audio_window", "stft_framing", "mel_scale", "feature_padding", "audio_offset")
ALIGN_TOP = 3
# The values the search moves between (output: the fitted codec or lossless; crop "pack" is "default").
SEARCH_VALUES = {**{k: v for k, v in CHOICES.items() if k not in ("output", "crop_source")},
                 "crop_source": ("default", "computed"), "audio_offset": (0,) + tuple(d for d in OFFSETS if d)}


@dataclass(frozen=True)
class Score:
    """Squared error and identical values of a variant against the candidate over some frames."""

    sse: float
    identical: int
    values: int

    @property
    def psnr(self) -> float:
        return psnr_from_mse(self.sse / self.values)

    @property
    def identical_pct(self) -> float:
        return 100.0 * self.identical / self.values


def spread(indices: list[int], k: int) -> list[int]:
    """`k` of `indices`, evenly spread (all of them when there are no more than `k`)."""
    if len(indices) <= k:
        return list(indices)
    return [indices[round(j * (len(indices) - 1) / (k - 1))] for j in range(k)] if k > 1 else [indices[len(indices) // 2]]


class Scorer:
    """Scores of conventions against the candidate's frames, each (variant, frames) computed once,
    over each frame's face region (the bounding box of its face rects under every template pairing):
    every knob acts there, and the background's decoder noise, which no knob explains, stays out."""

    def __init__(self, render: Renderer, candidate: dict[int, np.ndarray]) -> None:
        self.render, self.candidate = render, candidate
        self._seen: dict = {}
        source = render.source
        self.boxes = {}
        for i in candidate:
            rects = [source.rect(template_index(i, source.n_images, o)) for o in CHOICES["template_order"]]
            self.boxes[i] = (slice(min(r[1] for r in rects), max(r[3] for r in rects)),
                             slice(min(r[0] for r in rects), max(r[2] for r in rects)))

    @property
    def variants(self) -> int:
        """How many distinct conventions were scored."""
        return len({conv for conv, _ in self._seen})

    def __call__(self, conv: Conventions, indices: list[int]) -> Score | None:
        """The score, or None when the variant cannot run on this input."""
        key = (conv, tuple(indices))
        if key not in self._seen:
            self._seen[key] = self._score(conv, indices)
        return self._seen[key]

    def _score(self, conv: Conventions, indices: list[int]) -> Score | None:
        sse, identical, values = 0.0, 0, 0
        for i in indices:
            try:
                frame = self.render.frame(conv, i, self.boxes[i])
            except Exception:  # a variant that cannot run here (a file it needs, a clip too short) explains nothing
                return None
            diff = frame.astype(np.int16) - self.candidate[i][self.boxes[i]].astype(np.int16)
            flat = diff.ravel().astype(np.float64)
            sse += float(flat @ flat)
            identical += int(np.count_nonzero(diff == 0))
            values += diff.size
        return Score(sse, identical, values)


def _moves(conv: Conventions, output: str) -> list[Conventions]:
    """Every single-knob change of `conv` over the searched values (output: lossless or `output`)."""
    values = {**SEARCH_VALUES, "output": tuple(dict.fromkeys(("lossless", output)))}
    singles = [replace(conv, **{knob: value}) for knob, options in values.items() for value in options
               if value != getattr(conv, knob)]
    # a knob spelled as several (channel_order: input and output channels) moves them together too
    joint = [replace(conv, **dict.fromkeys(knobs, value)) for knobs in ALIASES.values()
             for value in SEARCH_VALUES[knobs[0]] if any(getattr(conv, k) != value for k in knobs)]
    return singles + [m for m in joint if m not in singles]


def _changed(a: Conventions, b: Conventions) -> dict:
    return {k: v for k, v in b.variants().items() if getattr(a, k) != v} | {
        k: getattr(b, k) for k in a.variants() if k not in b.variants()}


def forward(score: Scorer, start: Conventions, screen: list[int], output: str) -> Conventions:
    """Forward selection from `start` (see the module docstring)."""
    current, best = start, score(start, screen)
    if best is None:
        current, best = Conventions(), score(Conventions(), screen)
    for _ in range(MAX_ROUNDS):
        # every move on one frame, the most promising on all the screening frames
        probed = [(s, m) for m in _moves(current, output) if (s := score(m, screen[-1:])) is not None]
        probed.sort(key=lambda t: t[0].psnr, reverse=True)
        tried = [(s, m) for _, m in probed[:PROBE_TOP] if (s := score(m, screen)) is not None]
        tried.sort(key=lambda t: t[0].psnr, reverse=True)
        if tried and tried[0][0].psnr - best.psnr >= MIN_GAIN_DB:
            best, current = tried[0]
            continue
        top: dict[str, Conventions] = {}
        for _, move in tried:
            top.setdefault(next(iter(_changed(current, move))), move)
        pairs = [replace(a, **_changed(current, b)) for n, a in enumerate(list(top.values())[:PAIR_TOP])
                 for b in list(top.values())[n + 1:PAIR_TOP]]
        paired = [(s, m) for m in pairs if (s := score(m, screen)) is not None]
        if not paired or max(s.psnr for s, _ in paired) - best.psnr < MIN_GAIN_DB:
            return current
        best, current = max(paired, key=lambda t: t[0].psnr)
    return current


def align_audio(score: Scorer, conv: Conventions, screen: list[int], near: list[dict] | None = None) -> Conventions:
    """The best joint choice of the knobs that decide which audio a frame reads (`AUDIO_BLOCK`): one
    alone moves away from a match that needs several of them (no centring shifts the features by 0.6
    of a frame, no padding by one, an offset by whole frames, tiling drops the neighbours), so greedy
    steps cannot reach it. Every combination is screened on one frame (one per distinct audio input:
    no padding at offset 0 reads what edge padding reads at offset +1), the best few on all of `screen`.
    `near` (the audio-side knobs of the windowings the stage dumps clearly sit nearest,
    `nearest_audio`) narrows the combinations to theirs."""
    combinations = (itertools.product(*(SEARCH_VALUES[k] for k in AUDIO_BLOCK)) if near is None
                    else dict.fromkeys(tuple(knobs[k] for k in AUDIO_BLOCK) for knobs in near))
    probe = [screen[-1]]
    tried, seen = [], set()
    for values in combinations:
        other = replace(conv, **dict(zip(AUDIO_BLOCK, values)))
        try:
            rows = score.render.features(other).padded
        except Exception:  # a front end this clip is too short for
            continue
        heard = features.audio_window(rows, probe[0], other.audio_window, other.audio_offset).tobytes()
        if heard in seen:  # the same generator audio input as a combination already tried
            continue
        seen.add(heard)
        found = score(other, probe)
        if found is not None:
            tried.append((found.psnr, other))
    best_conv, best = conv, score(conv, screen)
    for _, other in sorted(tried, key=lambda t: t[0], reverse=True)[:ALIGN_TOP]:
        found = score(other, screen)
        if found is not None and found.psnr - best.psnr >= MIN_GAIN_DB:
            best_conv, best = other, found
    return best_conv


def backward(score: Scorer, conv: Conventions, confirm: list[int]) -> tuple[Conventions, dict]:
    """Drop the knobs that no longer earn their place; the kept knobs with their `weigh` entries."""
    while True:
        weights = weigh(score, conv, confirm)
        weak = min(weights, key=lambda k: weights[k][0], default=None)
        if weak is None or weights[weak][0] >= MIN_WEIGHT_DB:
            return conv, weights
        conv = replace(conv, **{weak: getattr(Conventions(), weak)})


def weigh(score: Scorer, conv: Conventions, confirm: list[int]) -> dict[str, tuple[float, float | None]]:
    """Each non-canonical knob's weight, the PSNR lost on `confirm` when it alone is reverted, and the
    PSNR without it ((inf, None): the variant cannot run without it)."""
    full = score(conv, confirm)
    out = {}
    for knob in conv.variants():
        reverted = score(replace(conv, **{knob: getattr(Conventions(), knob)}), confirm)
        out[knob] = (math.inf, None) if reverted is None else (full.psnr - reverted.psnr, reverted.psnr)
    return out


def refine(score: Scorer, conv: Conventions, confirm: list[int]) -> Conventions:
    """On the confirmation frames, each fitted knob may switch to another of its values (kernels or
    codecs that look the same on the screening frames: cv2's nearest and nearest_floor, say)."""
    best = score(conv, confirm)
    for knob in conv.variants():
        options = SEARCH_VALUES.get(knob, ())
        if knob == "output":
            codec = jpeg_codec(conv.output)
            options = [JpegCodec(lib, codec.quality, sub).name for lib in ("cv2", "pil") for sub in ("420", "444")]
        for value in options:
            if value in (getattr(conv, knob), getattr(Conventions(), knob)):
                continue
            other = replace(conv, **{knob: value})
            found = score(other, confirm)
            if found is not None and found.psnr - best.psnr >= MIN_GAIN_DB:
                conv, best = other, found
    return conv


def _regions(source, conv: Conventions, i: int, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Boolean masks of frame `i`'s regions: mouth box, face rect around it, outside the face."""
    x1, y1, x2, y2 = source.rect(template_index(i, source.n_images, conv.template_order))
    mx1, my1, mx2, my2 = rect_mouth_box((x1, y1, x2, y2))
    face = np.zeros(shape[:2], bool)
    face[y1:y2, x1:x2] = True
    mouth = np.zeros(shape[:2], bool)
    mouth[my1:my2, mx1:mx2] = True
    return {"mouth": mouth, "face": face, "face_around_mouth": face & ~mouth, "outside_face": ~face}


def match(render: Renderer, conv: Conventions, candidate: dict[int, np.ndarray]) -> dict:
    """How closely `conv` reproduces every candidate frame: identical %, within +-2 %, max abs, and
    per region the worst frame's PSNR, the mean abs and the share of differing values."""
    per_region = {r: {"sse": 0.0, "values": 0, "abs": 0.0, "differ": 0, "max_abs": 0, "psnr_min": math.inf}
                  for r in ("full", "face", "mouth", "face_around_mouth", "outside_face")}
    identical = within2 = values = 0
    for i, cand in candidate.items():
        diff = np.abs(render.frame(conv, i).astype(np.int16) - cand.astype(np.int16))
        identical += int(np.count_nonzero(diff == 0))
        within2 += int(np.count_nonzero(diff <= 2))
        values += diff.size
        masks = {"full": np.ones(diff.shape[:2], bool), **_regions(render.source, conv, i, diff.shape)}
        for name, mask in masks.items():
            d = diff[mask]
            if not d.size:
                continue
            acc = per_region[name]
            sse = float(np.sum(d.astype(np.int64) ** 2))
            acc["sse"] += sse
            acc["values"] += d.size
            acc["abs"] += float(d.sum())
            acc["differ"] += int(np.count_nonzero(d))
            acc["max_abs"] = max(acc["max_abs"], int(d.max()))
            acc["psnr_min"] = min(acc["psnr_min"], psnr_from_mse(sse / d.size))
    regions = {name: {"psnr_min": acc["psnr_min"], "psnr": psnr_from_mse(acc["sse"] / acc["values"]),
                      "max_abs": acc["max_abs"], "mean_abs": acc["abs"] / max(acc["values"], 1),
                      "differ_pct": 100.0 * acc["differ"] / max(acc["values"], 1), "sse": acc["sse"]}
               for name, acc in per_region.items() if acc["values"]}
    return {"frames": len(candidate), "identical_pct": 100.0 * identical / values,
            "within_2_pct": 100.0 * within2 / values, "max_abs": regions["full"]["max_abs"], "regions": regions}


def residual(found: dict, conv: Conventions) -> dict:
    """Where the difference left by the fitted variant lies, how large it is and what it fits."""
    regions = found["regions"]
    if regions["full"]["max_abs"] == 0:
        return {"region": None, "max_abs": 0, "text": "none: the fitted variant reproduces every pixel"}
    parts = []
    outside, mouth, ring = regions.get("outside_face"), regions["mouth"], regions["face_around_mouth"]
    if outside and outside["max_abs"]:
        parts.append(f"±{outside['max_abs']} levels spread over the whole frame, outside the face too "
                     f"({outside['differ_pct']:.1f} % of those values differ, mean {outside['mean_abs']:.2f}): "
                     f"a different JPEG {'encoder or decoder' if conv.output != 'lossless' else 'decoder'} "
                     f"(outside the face a frame is its template)")
    floor = outside["max_abs"] if outside else 0
    if mouth["max_abs"] > floor:
        parts.append(f"up to ±{mouth['max_abs']} in the mouth box (mean {mouth['mean_abs']:.2f}): the generator's "
                     f"numbers (its inputs decoded differently, its engine or precision)")
    if ring["max_abs"] > floor and ring["mean_abs"] > 2 * (outside["mean_abs"] if outside else 0):
        parts.append(f"up to ±{ring['max_abs']} in the face rect around the mouth (mean {ring['mean_abs']:.2f}): "
                     f"the generator's numbers, or the paste and resize")
    largest = max(("mouth", "face_around_mouth", "outside_face"), key=lambda r: regions.get(r, {}).get("sse", 0))
    return {"region": largest, "max_abs": regions["full"]["max_abs"],
            "text": "; ".join(parts) or f"±{regions['full']['max_abs']} levels in the {largest.replace('_', ' ')}"}


def _label(conv: Conventions) -> str:
    return f"reference[{conv.label()}]" if conv.variants() else "reference"


def bill_deviations(fitted: Conventions, weights: dict, evidenced: dict, heard: dict | None) -> tuple[list, list]:
    """The bill's deviations (`weights`: knob -> (weight dB, PSNR without it)) and minor deviations
    (`evidenced`: knob -> weight dB; seen in the stage dumps when `heard`'s knobs hold it, else in the
    background's JPEG lattice), each list heaviest first."""
    canonical = Conventions()
    deviations = [{"knob": k, "value": getattr(fitted, k), "canonical": getattr(canonical, k),
                   "weight_db": weight, "psnr_without": without}
                  for k, (weight, without) in sorted(weights.items(), key=lambda kv: kv[1][0], reverse=True)]
    minor = [{"knob": k, "value": getattr(fitted, k), "canonical": getattr(canonical, k), "weight_db": w,
              "evidence": "stage dumps" if heard and k in heard["knobs"] else "JPEG lattice of the background"}
             for k, w in sorted(evidenced.items(), key=lambda kv: kv[1], reverse=True)]
    return deviations, minor


def fit_conventions(source, audio, models, candidate: dict[int, np.ndarray], n: int,
                    dumps: dict | None = None, render: Renderer | None = None) -> dict:
    """The bill of deviations of a candidate (`candidate`: frame index -> frame, `n` the frames it was
    asked for, `dumps` its stage dumps), from the search described in the module docstring."""
    started = time.perf_counter()
    render = render or Renderer(source, audio, models, n)
    renders_before = render.renders
    indices = sorted(candidate)
    screen, confirm = spread(indices, SCREEN_FRAMES), spread(indices, CONFIRM_FRAMES)
    fitted_first: dict = {}
    background = fit_background(source, {i: candidate[i] for i in screen})
    fitted_first.update(background["knobs"])
    windows = (dumps or {}).get("audio_windows")
    heard = nearest = None
    if windows is not None and len(windows):
        aud_ave = source.root / FEATURES_FILE
        nearest = nearest_audio(audio, models, windows, read_features_file(aud_ave) if aud_ave.is_file() else None)
        heard = audio_match(nearest)
        if heard:
            fitted_first.update(heard["knobs"])
    score = Scorer(render, candidate)
    output = fitted_first.get("output", "lossless")
    fitted = forward(score, replace(Conventions(), **fitted_first), screen, output)
    if not heard:  # the audio's alignment was not seen in dumps: try its knobs jointly, then step again
        aligned = align_audio(score, fitted, screen, nearest["near"] if nearest else None)
        if aligned != fitted:
            fitted = forward(score, aligned, screen, output)
    fitted, weights = backward(score, refine(score, fitted, confirm), confirm)
    evidenced = {k: v for k, v in fitted_first.items() if getattr(Conventions(), k) != v and k not in weights}
    if evidenced:  # seen directly (dumps, JPEG lattice) but too small in pixels: kept, listed apart
        with_minor = replace(fitted, **evidenced)
        minor = weigh(score, with_minor, confirm)
        if score(with_minor, confirm).psnr >= score(fitted, confirm).psnr:
            fitted, weights = with_minor, {k: w for k, w in minor.items() if k not in evidenced}
            evidenced = {k: minor[k][0] for k in evidenced}
        else:
            evidenced = {}
    found = match(render, fitted, candidate)
    canonical, fitted_score = score(Conventions(), confirm), score(fitted, confirm)
    deviations, minor = bill_deviations(fitted, weights, evidenced, heard)
    explained = bool(deviations) and found["regions"]["full"]["psnr_min"] >= EXPLAINED_PSNR
    out = {"fitted": _label(fitted), "conventions": fitted.label(), "explained": explained,
           "match": found, "canonical": {"psnr": canonical.psnr, "identical_pct": canonical.identical_pct,
                                         "frames": len(confirm)},
           "fitted_face": {"psnr": fitted_score.psnr, "identical_pct": fitted_score.identical_pct},
           "deviations": deviations, "minor": minor, "residual": residual(found, fitted),
           "prefit": {"background": background, "audio": heard},
           "screen_frames": screen, "confirm_frames": confirm,
           "variants_rendered": score.variants, "frames_rendered": render.renders - renders_before,
           "seconds": time.perf_counter() - started}
    out["text"] = summary_text(out)
    return out


def _db(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def summary_text(bill: dict) -> str:
    """One sentence: the fitted variant and the match it reaches against the canonical pipeline's."""
    found, canonical = bill["match"], bill["canonical"]
    full, face = found["regions"]["full"], found["regions"]["face"]
    fitted = bill.get("fitted_face", {})
    reach = (f"{found['identical_pct']:.3f} % identical, {found['within_2_pct']:.3f} % within ±2, worst frame "
             f"{_db(full['psnr_min'])} dB (face rect {_db(face['psnr_min'])} dB) over {found['frames']} frames; "
             f"face region of {canonical['frames']} frames: {_db(fitted.get('psnr', math.nan))} dB against the "
             f"canonical pipeline's {_db(canonical['psnr'])} dB")
    if not bill["deviations"]:
        return f"no convention variant comes closer than the canonical pipeline ({reach})"
    if bill["explained"]:
        return f"{bill['fitted']} reproduces the candidate: {reach}"
    return f"no convention variant explains the difference; the closest, {bill['fitted']}, reaches {reach}"


def bill_lines(bill: dict) -> list[str]:
    """The bill as lines: the fitted variant, one line per deviation by weight, the residual."""
    lines = [bill["text"]]
    for n, dev in enumerate(bill.get("deviations", []), 1):
        without = dev.get("psnr_without")
        if without is None and math.isinf(dev["weight_db"]):
            worth = "the variant cannot run without it"
        elif math.isinf(dev["weight_db"]):
            worth = f"reverted, the exact match falls to {without:.2f} dB"
        else:
            worth = f"worth {dev['weight_db']:.2f} dB when reverted"
        lines.append(f"deviation {n}: {dev['knob']}={dev['value']} (canonical {dev['canonical']}), {worth}")
    for dev in bill.get("minor", []):
        lines.append(f"minor deviation: {dev['knob']}={dev['value']} (canonical {dev['canonical']}), seen in the "
                     f"{dev['evidence']}, worth {dev['weight_db']:.2f} dB (under {MIN_WEIGHT_DB} dB) when reverted")
    if bill.get("deviations"):
        lines.append(f"residual: {bill['residual']['text']}")
    return lines
