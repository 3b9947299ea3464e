"""A per-channel fit inside the patch: channel swap, tint, range or gamma.

Over the frames where both sides sit on the same template at the same place, `ColourStats` keeps,
per channel, the count of each reference value and the sum of the candidate's values over those
pixels, plus the 3x3 sums of candidate x reference channel products. Every model below is then
scored exactly, in closed form, without another pass over the pixels:

* ``channel_swap``: the candidate's channel c is the reference's channel p(c), p a permutation;
* ``range``: one gain and offset for all channels (full <-> limited range: 219/255 and +16);
* ``gamma``: 255 (x / 255) ^ gamma, one exponent for all channels;
* ``tint``: a gain and offset per channel.

The model that removes the most squared error is named when its parameters are off identity by
more than noise and it lowers the error on nine frames in ten: a colour map holds on every frame,
while a difference the audio drives (a mouth that moves otherwise) comes and goes. The simpler
models win near-ties with ``tint``.
"""
from __future__ import annotations

import itertools

import numpy as np

from harness.diagnosis.evidence.pixels import gain_db

CHANNELS = "BGR"
VALUES = np.arange(256, dtype=np.float64)
GAMMAS = np.round(np.arange(0.40, 2.51, 0.01), 2)
SIMPLER_WITHIN_DB = 0.2  # a simpler model this close to the tint fit is preferred
MIN_GAIN = 0.03  # |gain - 1| that counts as a colour change
MIN_OFFSET = 3.0  # grey levels
CONSISTENT = 0.9  # share of the frames on which the model must lower the error


class ColourStats:
    """Sufficient statistics of (reference, candidate) pixel pairs for the models of the module docstring."""

    def __init__(self) -> None:
        self.count = np.zeros((3, 256))
        self.sum_y = np.zeros((3, 256))
        self.sum_yy = np.zeros(3)
        self.cross = np.zeros((3, 3))  # cross[c, d] = sum of candidate channel c * reference channel d
        self.frames: list[int] = []

    def add(self, i: int, ref: np.ndarray, cand: np.ndarray) -> None:
        """Pixels of one frame's patch (the same pixels of both sides, uint8 BGR, any shape ending in 3)."""
        x = ref.reshape(-1, 3)
        y = cand.reshape(-1, 3).astype(np.float64)
        for c in range(3):
            self.count[c] += np.bincount(x[:, c], minlength=256)
            self.sum_y[c] += np.bincount(x[:, c], weights=y[:, c], minlength=256)
        self.sum_yy += np.einsum("ij,ij->j", y, y)
        self.cross += np.einsum("ic,id->cd", y, x.astype(np.float64))  # einsum: no BLAS threads to wait on
        self.frames.append(i)

    def merge(self, other: "ColourStats") -> None:
        for name in ("count", "sum_y", "sum_yy", "cross"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.frames += other.frames

    # ---- squared errors of each model

    def _sum_xx(self) -> np.ndarray:
        return self.count @ (VALUES ** 2)

    def _curve_sse(self, curves: np.ndarray) -> float:
        """SSE of the candidate against per-channel tone curves f_c(reference value) ((3, 256))."""
        return float(np.sum(self.sum_yy - 2 * np.sum(curves * self.sum_y, axis=1) + np.sum(curves ** 2 * self.count, axis=1)))

    def base_sse(self) -> float:
        return self._curve_sse(np.tile(VALUES, (3, 1)))

    def swap(self) -> tuple[float, tuple[int, int, int]]:
        xx = self._sum_xx()
        best = None
        for p in itertools.permutations(range(3)):
            err = float(sum(self.sum_yy[c] - 2 * self.cross[c, p[c]] + xx[p[c]] for c in range(3)))
            if best is None or err < best[0]:
                best = (err, p)
        return best

    def _affine(self, channels: list[int]) -> tuple[float, float, float]:
        """Least-squares gain and offset of the candidate on the reference over `channels` pooled: (sse, gain, offset)."""
        n = self.count[channels].sum()
        sx = float(np.sum(self.count[channels] @ VALUES))
        sxx = float(np.sum(self.count[channels] @ VALUES ** 2))
        sy = float(np.sum(self.sum_y[channels]))
        sxy = float(np.sum(self.sum_y[channels] @ VALUES))
        syy = float(np.sum(self.sum_yy[channels]))
        var = sxx - sx * sx / n
        gain = (sxy - sx * sy / n) / var if var > 0 else 1.0
        offset = (sy - gain * sx) / n
        sse = syy - 2 * gain * sxy - 2 * offset * sy + gain ** 2 * sxx + 2 * gain * offset * sx + n * offset ** 2
        return float(sse), gain, offset

    def gamma(self) -> tuple[float, float]:
        errs = [(self._curve_sse(np.tile(255.0 * (VALUES / 255.0) ** g, (3, 1))), float(g)) for g in GAMMAS]
        return min(errs)

    def model_sse(self, model: str, params: dict) -> float:
        """The squared error left by `model` with `params` (as `fit` names them)."""
        if model == "channel_swap":
            p = [CHANNELS.index(c) for c in params["permutation"]]
            xx = self._sum_xx()
            return float(sum(self.sum_yy[c] - 2 * self.cross[c, p[c]] + xx[p[c]] for c in range(3)))
        if model == "gamma":
            return self._curve_sse(np.tile(255.0 * (VALUES / 255.0) ** params["gamma"], (3, 1)))
        gain = np.broadcast_to(np.asarray(params["gain"], float), (3,))[:, None]
        offset = np.broadcast_to(np.asarray(params["offset"], float), (3,))[:, None]
        return self._curve_sse(gain * VALUES + offset)


def fit(per_frame: list[ColourStats], total_sse: float) -> dict | None:
    """The colour finding's fields from the frames' statistics, or None when no model removes enough
    error, its parameters are within noise of identity, or it does not lower the error on
    `CONSISTENT` of the frames (a colour map holds on every frame; a difference that the audio drives
    comes and goes)."""
    if not per_frame:
        return None
    stats = ColourStats()
    for one in per_frame:
        stats.merge(one)
    base = stats.base_sse()
    if stats.count.sum() == 0 or base <= 0:
        return None
    tint = [stats._affine([c]) for c in range(3)]
    shared = stats._affine([0, 1, 2])
    swap_sse, perm = stats.swap()
    gamma_sse, gamma = stats.gamma()
    models = {}
    if perm != (0, 1, 2):
        models["channel_swap"] = (swap_sse, {"permutation": "".join(CHANNELS[d] for d in perm),
                                             "moved": [f"{CHANNELS[c]}<-{CHANNELS[perm[c]]}" for c in range(3)
                                                       if perm[c] != c]})
    if abs(shared[1] - 1) > MIN_GAIN or abs(shared[2]) > MIN_OFFSET:
        models["range"] = (shared[0], {"gain": shared[1], "offset": shared[2]})
    if abs(gamma - 1) > MIN_GAIN:
        models["gamma"] = (gamma_sse, {"gamma": gamma})
    if any(abs(g - 1) > MIN_GAIN or abs(o) > MIN_OFFSET for _, g, o in tint):
        models["tint"] = (sum(t[0] for t in tint), {"gain": [t[1] for t in tint], "offset": [t[2] for t in tint]})
    if not models:
        return None
    name = min(models, key=lambda k: models[k][0])
    if name == "tint":  # a simpler model nearly as good names the change better
        simpler = [k for k in ("channel_swap", "range", "gamma") if k in models
                   and gain_db(base, base - models[k][0]) >= gain_db(base, base - models["tint"][0]) - SIMPLER_WITHIN_DB]
        name = simpler[0] if simpler else name
    sse, params = models[name]
    lowered = sum(one.model_sse(name, params) < one.base_sse() for one in per_frame)
    if lowered < CONSISTENT * len(per_frame):
        return None
    return {"model": name, **params, "explains_db": gain_db(total_sse, base - sse),
            "patch_gain_db": gain_db(base, base - sse), "frames_lowered": lowered, "frames": list(stats.frames)}
