"""The account of the residual: what the findings leave unexplained, where it sits, and what is behind it.

Every comparison with a residual ends with one `residual` finding, after the others:

* ``total_db``: the PSNR over every compared pair, full frame (the gap to identical frames);
* ``explained_db``: what the pixel findings explain together (their ``explains_db`` summed: each
  removes its own share of what the others leave), and ``left_pct``, the share of the squared
  error left;
* ``by_region``: the residual's share and PSNR in the mouth (the lips' box of each frame's
  template), the rest of the face rect, and outside the face;
* ``character``: ``structured`` or ``noise-like`` (the lag-1 autocorrelation of the residual inside
  the patch, over the comparable frames) and ``mouth_concentration``: the mouth's share of the
  face's error over its share of the face's values (from `CONCENTRATED` up: the residual sits in
  the mouth);
* ``suspect``: the first stage whose dumps differ and the region it moves (the audio stages move
  the mouth, the generator's output the whole face); else, when the findings leave under
  `MOSTLY_EXPLAINED` % of the error, the findings themselves; else what the region of the residual
  points at;
* ``kernel`` and ``precision``: when no ``resize_kernel`` or ``precision_noise`` finding was
  made, why these frames cannot tell (the kernels whose errors lie within `CLOSE_KERNELS` of the
  lowest; the frames differing outside the patch, where fp16 alone would leave them exact).
"""
from __future__ import annotations

import math

from harness.diagnosis.evidence.record import Finding, db_text
from harness.diagnosis.evidence.resize import CG_QUALITIES
from harness.verdicts.metrics import psnr_from_mse

CONCENTRATED = 3.0  # mouth's share of the error over its share of the values
MOSTLY_EXPLAINED = 50.0  # % of the squared error left under which the findings themselves are the suspect
NOISE_LIKE = 0.5  # lag-1 autocorrelation under this: noise-like
CLOSE_KERNELS = 1.5  # kernels leaving up to this multiple of the lowest error cannot be told apart
AUDIO_STAGES = ("mel", "encoder_windows", "embeddings", "padded_features", "audio_windows")
REGIONS = {"mouth": "the mouth", "face_rest": "the rest of the face", "outside_face": "outside the face"}


def _regions(obs) -> dict:
    """Squared error and values per region over the observations that have them."""
    sums = {name: [0.0, 0] for name in REGIONS}
    for o in obs:
        if o.regions is None:
            continue
        mouth_sse, mouth_n, face_sse, face_n = o.regions
        sums["mouth"][0] += mouth_sse
        sums["mouth"][1] += mouth_n
        sums["face_rest"][0] += face_sse - mouth_sse
        sums["face_rest"][1] += face_n - mouth_n
        sums["outside_face"][0] += o.sse - face_sse
        sums["outside_face"][1] += o.values - face_n
    return sums


def _by_region(sums: dict) -> dict:
    total = sum(s for s, _ in sums.values())
    return {name: {"share_pct": 100.0 * s / total if total > 0 else 0.0,
                   "psnr_db": psnr_from_mse(s / n) if n else None} for name, (s, n) in sums.items()}


def _suspect(stages: list[Finding], by_region: dict, concentrated: bool, found_kinds: set[str],
             left_pct: float) -> dict:
    """What the residual points at: the first differing stage and its region; else, when the findings leave
    most of it, the residual's region; else the findings themselves."""
    if stages:
        first = stages[0].details
        stage = first.get("stage")
        region = "mouth" if stage in AUDIO_STAGES else "face"
        text = (f"stage {stage} differs first ({first.get('reading')}"
                + (f", relative error {first['rel_error']:.3g}" if first.get("rel_error") is not None else "") + "): "
                + ("audio features that differ move the mouth" if region == "mouth" else
                   "a generator output that differs moves the whole face"))
        if region == "mouth":
            text += ", where the residual sits" if concentrated else ", yet the residual is not concentrated there"
        return {"stage": stage, "region": region, "text": text}
    top = max(by_region, key=lambda name: by_region[name]["share_pct"])
    if left_pct < MOSTLY_EXPLAINED:
        return {"stage": None, "region": top, "text": f"the findings above: they leave {left_pct:.0f} % of the "
                                                      f"squared error, most of it {REGIONS[top]}"}
    if concentrated:
        if "audio_drive" in found_kinds:
            text = "the audio path, as the audio_drive finding reads it"
        else:
            text = ("the audio path: the features that drive the mouth differ, though not enough to read as an "
                    "audio_drive finding; compare both sides' audio-feature dumps (--stages-a / --stages-b)")
        return {"stage": None, "region": "mouth", "text": text}
    text = {"mouth": "the audio path or the generator", "face_rest": "the generator or the paste (precision, kernel)",
            "outside_face": "the codec or the template frames"}[top]
    return {"stage": None, "region": top, "text": text}


def _kernel_note(ev, found_kinds: set[str]) -> str | None:
    """Why no kernel was named: the sampled kernels that leave within `CLOSE_KERNELS` of the lowest error."""
    if "resize_kernel" in found_kinds or not ev.resize.frames:
        return None
    errors = ev.resize.outside
    low = min(errors.values())
    close = [k for k, v in errors.items() if v <= CLOSE_KERNELS * low]
    if low <= 0 or len(close) < 2:
        return None
    spread = 100.0 * (max(errors[k] for k in close) - low) / low
    apple = [f"{k} = {CG_QUALITIES[k]}" for k in close if k in CG_QUALITIES]
    excluded = sorted(set(errors) - set(close))
    return (f"the paste's kernel cannot be told apart among {', '.join(close)}"
            + (f" ({'; '.join(apple)})" if apple else "")
            + f": within {spread:.1f} % of each other's error on {len(ev.resize.frames)} frames"
            + (f"; excluded: {', '.join(excluded)} (over {CLOSE_KERNELS:g}x the error)" if excluded else ""))


def _precision_note(ev, found_kinds: set[str]) -> str | None:
    """Why no precision noise was named, when the residual's statistics show it."""
    if "precision_noise" in found_kinds or not ev.noise.n:
        return None
    noise = ev.noise
    outside = noise.sum_out / noise.n_out if noise.n_out else 0.0
    if outside > 0.01:
        return (f"fp16 noise cannot be told from the codec here: outside the patch the frames differ too (mean abs "
                f"{outside:.3f}), where reduced precision alone leaves them exact")
    return None


def account(ev, total: float, found: list[Finding]) -> Finding | None:
    """The `residual` finding of the module docstring; None without observations or a residual."""
    obs = list(ev.obs.values()) if ev is not None else []
    values = sum(o.values for o in obs)
    if not obs or total <= 0 or not values:
        return None
    gains = [f.explains_db for f in found if f.explains_db is not None]
    explained = math.inf if any(math.isinf(g) for g in gains) else sum(gains)
    left_pct = 0.0 if math.isinf(explained) else 100.0 * 10 ** (-explained / 10)
    sums = _regions(obs)
    by_region = _by_region(sums)
    (mouth_sse, mouth_n), (rest_sse, rest_n) = sums["mouth"], sums["face_rest"]
    face_sse = mouth_sse + rest_sse
    concentration = (mouth_sse / face_sse) / (mouth_n / (mouth_n + rest_n)) if face_sse > 0 and mouth_n else 0.0
    autocorr = ev.noise.sum_lag / ev.noise.sum_sq if ev.noise.sum_sq else None
    character = {"kind": "noise-like" if autocorr is not None and autocorr < NOISE_LIKE else "structured",
                 "autocorrelation": autocorr, "mouth_concentration": concentration}
    kinds = {f.kind for f in found}
    suspect = _suspect([f for f in found if f.kind == "stage"], by_region, concentration >= CONCENTRATED, kinds,
                       left_pct)
    notes = {"kernel": _kernel_note(ev, kinds), "precision": _precision_note(ev, kinds)}
    where = ", ".join(f"{REGIONS[name]} {r['share_pct']:.0f} %" + (f" ({r['psnr_db']:.1f} dB)" if r["psnr_db"] else "")
                      for name, r in by_region.items())
    total_db = psnr_from_mse(total / values)
    summary = (f"full-frame PSNR {total_db:.2f} dB over {len(obs)} pairs; the findings explain "
               f"{db_text(explained)} together ({left_pct:.0f} % of the squared error left); the residual by region: "
               f"{where}; {character['kind']}"
               + (f", concentrated in the mouth ({concentration:.1f}x its share of the face's pixels)"
                  if concentration >= CONCENTRATED else "")
               + f"; suspect: {suspect['text']}"
               + "".join(f"; {note}" for note in notes.values() if note))
    return Finding("residual", summary, [], None,
                   {"total_db": total_db, "explained_db": explained, "left_pct": left_pct,
                    "by_region": by_region, "character": character, "suspect": suspect, **notes})
