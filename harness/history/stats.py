"""The speed test of the gate: did the per-frame latencies of a run move against its baseline's?

Mann-Whitney U (``scipy.stats.mannwhitneyu``, two-sided) says whether the two samples differ; the
size of the change is the Hodges-Lehmann estimate on log latencies, the median of every pairwise
difference ``log b_j - log a_i``, given as a ratio ``exp(median) - 1`` (+10 %: 10 % slower), with
its distribution-free confidence interval (Moses; Hollander & Wolfe, *Nonparametric Statistical
Methods*, 3rd ed., sec. 4.3): the k-th smallest and k-th largest pairwise difference, k from the
normal approximation of U's null distribution (no continuity correction; the ties correction
of the p-value is left out of the interval). The interval holds exactly the shifts that the same
test, run on the shifted sample, would not reject at `alpha`: it excludes no change exactly when
p < alpha.

A change is a regression (or an improvement) only when the test rejects at `alpha` **and** the
estimate moves by at least `min_effect` (in the log scale: +5 % slower or 1/1.05 faster), so a
difference that is real but too small to matter, or large but not supported by the data, is not.

The frames of one run are not independent draws: a whole run can be slower than the next on an
idle machine (other virtual machines on the host, the CPU's clock, where memory landed), which
the test cannot see in one pair of runs. Two ways past that: `runs_change` tests repeated runs
(each run's median latency one sample, so the run-to-run noise is in the data), and `run_noise`
measures the noise from earlier runs of the same backend on the same machine, so that the gate
counts only a single run's change larger than it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.01
MIN_EFFECT = 0.05
MIN_FRAMES = 8  # per side; fewer steady frames are not compared
REPEATS = 5  # runs a side from which speed is judged on the runs' medians (5 and 5: exact p down to 0.008)
NOISE_RUNS = (3, 10)  # run-to-run noise: from at least 3 and at most the 10 latest runs
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
    unit: str = "frames"  # what the samples are: "frames" (latencies) or "runs" (each run's median latency)

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
                f"{'frames' if self.unit == 'frames' else 'runs (their median latencies)'})")


def signed_pct(ratio: float) -> str:
    """A relative change as a signed percentage: 0.1034 -> "+10.3 %"."""
    return f"{100 * ratio:+.1f} %"


def _thin(values: np.ndarray, keep: int) -> np.ndarray:
    """`keep` values spread evenly over the sorted sample (its quantiles), when it has more."""
    if len(values) <= keep:
        return values
    return np.sort(values)[np.linspace(0, len(values) - 1, keep).round().astype(int)]


def log_differences(before, after) -> tuple[np.ndarray, int, int]:
    """Every ``log b - log a`` (flattened) and the two sample sizes, both samples thinned (`_thin`) to at
    most MAX_PAIRS pairs."""
    a, b = np.log(np.asarray(before, np.float64)), np.log(np.asarray(after, np.float64))
    if a.size * b.size > MAX_PAIRS:
        side = int(math.sqrt(MAX_PAIRS))
        a, b = _thin(a, max(side, MAX_PAIRS // b.size)), _thin(b, max(side, MAX_PAIRS // a.size))
        a = _thin(a, MAX_PAIRS // b.size)
    return np.subtract.outer(b, a).ravel(), a.size, b.size


def hodges_lehmann(before, after, alpha: float = ALPHA) -> tuple[float, float, float]:
    """The Hodges-Lehmann shift of log latency and its (1 - alpha) confidence interval, as ratios - 1."""
    d, m, n = log_differences(before, after)
    from scipy import stats  # 0.5 s of import: only where a test runs (the CLI's start-up stays light)
    mn = d.size
    z = stats.norm.ppf(1 - alpha / 2)
    # U(shift) = #{differences > shift} is accepted while |U - mn/2| < z sigma: from the k-th smallest
    # difference to the k-th largest
    k = int(math.floor(mn / 2 - z * math.sqrt(mn * (m + n + 1) / 12))) + 1
    k = min(max(k, 1), (mn + 1) // 2)
    low, mid_low, mid_high, high = np.partition(d, sorted({k - 1, (mn - 1) // 2, mn // 2, mn - k}))[
        [k - 1, (mn - 1) // 2, mn // 2, mn - k]]
    estimate = (mid_low + mid_high) / 2
    return math.expm1(estimate), math.expm1(low), math.expm1(high)


def mann_whitney_p(before, after) -> float:
    """Two-sided p-value of Mann-Whitney U, normal approximation without continuity correction (the
    test that `hodges_lehmann`'s interval inverts)."""
    from scipy import stats
    return float(stats.mannwhitneyu(after, before, alternative="two-sided", method="asymptotic",
                                    use_continuity=False).pvalue)


def _positive(values_ms) -> np.ndarray:
    """The latencies (ms) above 0, as float64."""
    return np.asarray([x for x in values_ms if x > 0], np.float64)


def speed_change(before_ms, after_ms, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> SpeedChange | None:
    """The test on two samples of per-frame latencies (ms, > 0); None with fewer than MIN_FRAMES either side."""
    a, b = _positive(before_ms), _positive(after_ms)
    if len(a) < MIN_FRAMES or len(b) < MIN_FRAMES:
        return None
    p = mann_whitney_p(a, b)
    change, low, high = hodges_lehmann(a, b, alpha)
    return SpeedChange(len(a), len(b), float(np.median(a)), float(np.median(b)), change, low, high, p, alpha,
                       min_effect)


def runs_change(before_ms, after_ms, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> SpeedChange | None:
    """The test on repeated runs: each run's median frame latency (ms) is one sample, so the run-to-run
    noise is in the samples the test sees. Mann-Whitney U, exact where there are no ties, and the
    Hodges-Lehmann change with its interval as for frames; None with fewer than REPEATS runs a side."""
    from scipy import stats
    a, b = _positive(before_ms), _positive(after_ms)
    if len(a) < REPEATS or len(b) < REPEATS:
        return None
    exact = len(np.unique(np.concatenate([a, b]))) == len(a) + len(b)
    p = float(stats.mannwhitneyu(b, a, alternative="two-sided", method="exact" if exact else "asymptotic").pvalue)
    change, low, high = hodges_lehmann(a, b, alpha)
    return SpeedChange(len(a), len(b), float(np.median(a)), float(np.median(b)), change, low, high, p, alpha,
                       min_effect, "runs")


def run_noise(medians: list[float]) -> float | None:
    """The run-to-run noise of a backend on a machine, from the median frame latencies of its latest runs
    (oldest first): ``max / min - 1`` of the last ``NOISE_RUNS[1]``; None with fewer than ``NOISE_RUNS[0]``."""
    recent = [m for m in medians if m > 0][-NOISE_RUNS[1]:]
    return max(recent) / min(recent) - 1 if len(recent) >= NOISE_RUNS[0] else None
