"""Every weight tensor of a candidate matched to the source's, and each difference named.

Weights are paired in graph order (the order the ops first use them), aligned on their shapes, so a
missing or extra tensor shifts nothing after it. A pair matches when every value is within what the
candidate's storage dtype allows: one unit in the last place of that dtype at the source value (an
fp16 copy is rounded to nearest, half a unit; a converter that re-rounds may reach one). A pair that
does not match is named:

* **scaled**: the candidate is s x source (least squares s, within two ulps of s x source: a scaled
  copy may be rounded before and after its scaling);
* **transposed**: a permutation of the source's axes matches it;
* **random/untrained**: unrelated values: over at least 16 values, a Pearson correlation with the
  source within chance (|r| < 3 / sqrt(n), three standard deviations of r for unrelated tensors of
  n values) or below 0.2;
* **zero**: all zeros where the source is not;
* otherwise **differs**, with the correlation.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from harness.coreml.graph import Weight
from harness.verdicts.metrics import pearson

RANDOM_CORRELATION = 0.2
MIN_VALUES_FOR_CORRELATION = 16
ULP_SCALE = {"float16": None, "bfloat16": 2.0 ** 16, "float32": 1.0, "float64": 1.0}


def allowed(source: np.ndarray, dtype: str) -> np.ndarray:
    """Per value, the difference that storing `source` as `dtype` may cause: one ulp of `dtype` there."""
    magnitude = np.abs(source.astype(np.float32))
    if dtype == "float16":
        with np.errstate(over="ignore"):
            ulp = np.spacing(magnitude.astype(np.float16)).astype(np.float32)
        return np.where(np.isfinite(ulp), ulp, 0.0)  # beyond fp16's range nothing is allowed
    return np.spacing(magnitude) * ULP_SCALE.get(dtype, 1.0)


@dataclass
class WeightPair:
    """A source tensor and its candidate counterpart (either may be None: missing, extra)."""

    source: Weight | None
    candidate: Weight | None
    status: str  # match, scaled, transposed, random, zero, differs, shape, missing, extra, unread
    max_abs: float = 0.0
    allowed: float = 0.0
    ulps: float = 0.0  # the largest difference of one value in units of what its dtype allows there
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "match"

    def to_json(self) -> dict:
        def side(w: Weight | None):
            return None if w is None else {"name": w.name, "shape": list(w.shape), "dtype": w.dtype, "op": w.op}
        return {"source": side(self.source), "candidate": side(self.candidate), "status": self.status,
                "max_abs": self.max_abs, "allowed": self.allowed, "ulps": self.ulps, "detail": self.detail}


def _within(cand: np.ndarray, expected: np.ndarray, dtype: str, ulps: int = 1) -> bool:
    return bool(np.all(np.abs(cand - expected) <= ulps * allowed(expected, dtype)))


def _transposition(cand: np.ndarray, src: np.ndarray, dtype: str) -> tuple | None:
    """The axis permutation (not the identity) of `src` that `cand` equals within its rounding, if any."""
    if cand.size != src.size or cand.ndim != src.ndim or cand.ndim > 6:
        return None
    for perm in itertools.permutations(range(src.ndim)):
        if perm != tuple(range(src.ndim)) and tuple(src.shape[p] for p in perm) == cand.shape:
            moved = np.transpose(src, perm)
            if _within(cand, moved, dtype):
                return perm
    return None


def classify(source: Weight, candidate: Weight) -> WeightPair:
    """Compare one pair of tensors whose values were both read."""
    src, cand, dtype = source.values, candidate.values, candidate.dtype
    if src.shape != cand.shape:
        perm = _transposition(cand, src, dtype)
        if perm is not None:
            return WeightPair(source, candidate, "transposed", detail=f"axes permuted {perm}")
        return WeightPair(source, candidate, "shape", detail=f"shape {cand.shape} where the source has {src.shape}")
    diff = np.abs(cand - src)
    limit = allowed(src, dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        ulps = float(np.where(diff > 0, diff / limit, 0.0).max(initial=0.0))
    pair = WeightPair(source, candidate, "match", float(diff.max(initial=0.0)), float(limit.max(initial=0.0)), ulps)
    if not np.isfinite(cand).all():
        pair.status, pair.detail = "differs", f"{int(cand.size - np.isfinite(cand).sum())} values are NaN or Inf"
        return pair
    if bool(np.all(diff <= limit)):
        return pair
    if not cand.any():
        pair.status, pair.detail = "zero", "all zeros"
        return pair
    flat = src.ravel().astype(np.float64)
    scale = float(cand.ravel().astype(np.float64) @ flat / (flat @ flat)) if flat.any() else 0.0
    if scale and abs(scale - 1.0) > 1e-3 and _within(cand, (src * scale).astype(np.float32), dtype, ulps=2):
        pair.status, pair.detail = "scaled", f"scaled by {scale:.4g}"
        return pair
    perm = _transposition(cand, src, dtype)
    if perm is not None:
        pair.status, pair.detail = "transposed", f"axes permuted {perm}"
        return pair
    r = pearson(cand, src)
    if src.size >= MIN_VALUES_FOR_CORRELATION and abs(r) < max(RANDOM_CORRELATION, 3 / np.sqrt(src.size)):
        pair.status = "random"
        pair.detail = f"unrelated to the source (correlation {r:.2f}; std {cand.std():.3g} vs {src.std():.3g})"
    else:
        pair.status, pair.detail = "differs", f"correlation {r:.3f} with the source"
    return pair


def _pair(source: Weight, candidate: Weight) -> WeightPair:
    if candidate.values is None or source.values is None:
        status = "unread" if source.shape == candidate.shape else "shape"
        detail = "" if status == "unread" else f"shape {candidate.shape} where the source has {source.shape}"
        return WeightPair(source, candidate, status, detail=detail)
    return classify(source, candidate)


def compare_weights(source: list[Weight], candidate: list[Weight]) -> list[WeightPair]:
    """Pair the two lists (graph order, aligned on shapes) and compare each pair."""
    matcher = SequenceMatcher(None, [w.shape for w in source], [w.shape for w in candidate], autojunk=False)
    pairs: list[WeightPair] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        both = min(i2 - i1, j2 - j1) if tag in ("equal", "replace") else 0
        pairs += [_pair(source[i1 + k], candidate[j1 + k]) for k in range(both)]
        pairs += [WeightPair(w, None, "missing", detail="no candidate tensor here") for w in source[i1 + both:i2]]
        pairs += [WeightPair(None, w, "extra", detail="no source tensor here") for w in candidate[j1 + both:j2]]
    return pairs
