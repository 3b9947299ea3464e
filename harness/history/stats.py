"""The speed test of the gate: did the per-frame latencies of a run move against its baseline's?

Mann-Whitney U (``scipy.stats.mannwhitneyu``, two-sided) says whether the two samples differ; the
size of the change is the Hodges-Lehmann estimate on log latencies, the median of every pairwise
difference ``log b_j - log a_i``, given as a ratio ``exp(median) - 1`` (+10 %: 10 % slower), with
its distribution-free confidence interval (Moses; Hollander & Wolfe, *Nonparametric Statistical
Methods*, 3rd ed., sec. 4.3): the k-th smallest and k-th largest pairwise difference, k from the
normal approximation of U's null distribution. The interval holds exactly the shifts that the
same test, run on the shifted sample, would not reject at `alpha`.

A change is a regression (or an improvement) only when the test rejects at `alpha` **and** the
estimate moves by at least `min_effect` (in the log scale: +5 % slower or 1/1.05 faster), so a
difference that is real but too small to matter, or large but not supported by the data, is not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.01
MIN_EFFECT = 0.05
MIN_FRAMES = 8  # per side; fewer steady frames are not compared
MAX_PAIRS = 4_000_000  # pairwise differences computed at most; larger samples are thinned evenly


@dataclass(frozen=True)
class SpeedChange:
    """The change of per-frame latency from a baseline `before` to `after`."""

    n_before: int
    n_after: int
    median_before_ms: float
    median_after_ms: float
    change: float  # Hodges-Lehmann ratio - 1: +0.10 = 10 % slower
    low: float  # confidence interval of `change`, at level 1 - alpha
    high: float
    p: float
    alpha: float
    min_effect: float

    @property
    def significant(self) -> bool:
        return self.p < self.alpha

    @property
    def verdict(self) -> str:
        """"slower", "faster" or "same" (not significant, or smaller than the minimum effect)."""
        if not self.significant:
            return "same"
        if math.log1p(self.change) >= math.log1p(self.min_effect):
            return "slower"
        if math.log1p(self.change) <= -math.log1p(self.min_effect):
            return "faster"
        return "same"

    def text(self) -> str:
        """E.g. "median frame latency +10.3 % (99 % CI +8.1 % .. +12.6 %, p = 2e-09; 70.1 -> 77.3 ms)"."""
        return (f"median frame latency {signed_pct(self.change)} ({100 * (1 - self.alpha):g} % CI "
                f"{signed_pct(self.low)} .. {signed_pct(self.high)}, p = {self.p:.2g}; "
                f"{self.median_before_ms:.1f} -> {self.median_after_ms:.1f} ms, {self.n_before} and {self.n_after} "
                "frames)")


def signed_pct(ratio: float) -> str:
    """A relative change as a signed percentage: 0.1034 -> "+10.3 %"."""
    return f"{100 * ratio:+.1f} %"


def _thin(values: np.ndarray, keep: int) -> np.ndarray:
    """`keep` values spread evenly over the sorted sample (its quantiles), when it has more."""
    if len(values) <= keep:
        return values
    return np.sort(values)[np.linspace(0, len(values) - 1, keep).round().astype(int)]


def pairwise_log_differences(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Every ``log b - log a`` (flattened), thinning both samples to at most MAX_PAIRS pairs."""
    a, b = np.log(before), np.log(after)
    if a.size * b.size > MAX_PAIRS:
        side = int(math.sqrt(MAX_PAIRS))
        a, b = _thin(a, side), _thin(b, side)
    return np.subtract.outer(b, a).ravel()


def hodges_lehmann(before, after, alpha: float = ALPHA) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift of log latency and its (1 - alpha) confidence interval, as ratios - 1."""
    d = pairwise_log_differences(np.asarray(before, np.float64), np.asarray(after, np.float64))
    m, n = len(before), len(after)
    mn = d.size
    if mn != m * n:  # thinned: the interval's rank comes from the thinned sizes
        m = n = int(math.isqrt(mn))
    z = stats.norm.ppf(1 - alpha / 2)
    k = int(math.floor(mn / 2 - z * math.sqrt(mn * (m + n + 1) / 12)))
    k = min(max(k, 1), mn)
    low, mid_low, mid_high, high = np.partition(d, sorted({k - 1, (mn - 1) // 2, mn // 2, mn - k}))[
        [k - 1, (mn - 1) // 2, mn // 2, mn - k]]
    estimate = (mid_low + mid_high) / 2
    return math.expm1(estimate), math.expm1(low), math.expm1(high)


def speed_change(before_ms, after_ms, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> SpeedChange | None:
    """The test on two samples of per-frame latencies (ms, > 0); None with fewer than MIN_FRAMES either side."""
    a = np.asarray([x for x in before_ms if x > 0], np.float64)
    b = np.asarray([x for x in after_ms if x > 0], np.float64)
    if len(a) < MIN_FRAMES or len(b) < MIN_FRAMES:
        return None
    p = float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    change, low, high = hodges_lehmann(a, b, alpha)
    return SpeedChange(len(a), len(b), float(np.median(a)), float(np.median(b)), change, low, high, p, alpha,
                       min_effect)
