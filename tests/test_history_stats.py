"""The gate's speed test (harness.history.stats) against independent computations and known answers."""
from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from scipy import stats

from harness.history.stats import MIN_FRAMES, hodges_lehmann, log_differences, mann_whitney_p, speed_change


def _samples(rng, m: int, n: int, shift: float = 0.0, sigma: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    return rng.lognormal(math.log(70), sigma, m), rng.lognormal(math.log(70) + shift, sigma, n)


def test_hodges_lehmann_is_the_median_of_every_pairwise_log_ratio():
    rng = np.random.default_rng(0)
    for m, n in ((9, 9), (12, 17), (30, 8)):
        a, b = _samples(rng, m, n, 0.05)
        brute = statistics.median(math.log(y) - math.log(x) for x, y in itertools.product(a, b))
        assert hodges_lehmann(a, b)[0] == pytest.approx(math.expm1(brute), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.01, 0.05])
def test_the_interval_is_the_set_of_shifts_the_test_does_not_reject(alpha):
    """Inverting scipy's Mann-Whitney U by brute force: the shifts between consecutive pairwise differences
    that it accepts run exactly from the interval's low end to its high end."""
    rng = np.random.default_rng(1)
    a, b = _samples(rng, 23, 31, 0.08)
    _, low, high = hodges_lehmann(a, b, alpha)
    d = np.sort(np.subtract.outer(np.log(b), np.log(a)).ravel())
    mids = (d[:-1] + d[1:]) / 2
    p = stats.mannwhitneyu(np.log(b)[None, :] - mids[:, None], np.log(a)[None, :], axis=1, method="asymptotic",
                           use_continuity=False).pvalue
    accepted = np.flatnonzero(p >= alpha)
    assert np.all(np.diff(accepted) == 1)  # one run of accepted shifts
    assert math.log1p(low) == pytest.approx(d[accepted[0]], abs=1e-12)
    assert math.log1p(high) == pytest.approx(d[accepted[-1] + 1], abs=1e-12)


def test_significant_exactly_when_the_interval_excludes_no_change():
    rng = np.random.default_rng(2)
    seen = set()
    for shift in np.linspace(-0.12, 0.12, 60):
        a, b = _samples(rng, 40, 40, shift)
        found = speed_change(a, b)
        assert found.p == pytest.approx(mann_whitney_p(a, b))
        assert found.significant == (found.low > 0 or found.high < 0), found
        seen.add(found.significant)
    assert seen == {True, False}


def test_aa_false_alarms_and_interval_coverage_hold_their_levels():
    """500 A/A pairs of independent samples: p < 0.01 in about 1 % of them and the 99 % interval misses
    the true change (none) about as often; the minimum effect makes alarms rarer still."""
    rng = np.random.default_rng(3)
    found = [speed_change(*_samples(rng, 60, 60)) for _ in range(500)]
    significant = sum(f.significant for f in found)
    missed = sum(not (f.low <= 0 <= f.high) for f in found)
    assert significant <= 12 and missed <= 12  # binomial(500, 0.01): mean 5, P(> 12) < 0.003
    alarms = sum(f.verdict != "same" for f in found)
    assert alarms <= significant and all(abs(math.log1p(f.change)) >= math.log(1.05) - 1e-12
                                      for f in found if f.verdict != "same")


def test_a_ten_percent_slowdown_is_found_and_estimated():
    rng = np.random.default_rng(4)
    found = [speed_change(*_samples(rng, 50, 50, math.log(1.10))) for _ in range(100)]
    assert sum(f.verdict == "slower" for f in found) >= 95
    assert statistics.median(f.change for f in found) == pytest.approx(0.10, abs=0.01)
    covered = sum(f.low <= 0.10 <= f.high for f in found)
    assert covered >= 95  # a 99 % interval


def test_a_real_but_small_change_is_not_a_regression():
    rng = np.random.default_rng(5)
    found = speed_change(*_samples(rng, 2000, 2000, math.log(1.02), sigma=0.05))
    assert found.significant and 0.01 < found.change < 0.03 and found.verdict == "same"
    faster = speed_change(*_samples(rng, 200, 200, -math.log(1.10)))
    assert faster.verdict == "faster" and faster.change == pytest.approx(1 / 1.1 - 1, abs=0.02)


def test_too_few_frames_or_nonpositive_latencies():
    assert speed_change([70.0] * (MIN_FRAMES - 1), [70.0] * 50) is None
    assert speed_change([0.0, -1.0] + [70.0] * (MIN_FRAMES - 1), [70.0] * 50) is None  # dropped, then too few


def test_large_samples_are_thinned_to_their_quantiles():
    rng = np.random.default_rng(6)
    a, b = _samples(rng, 3000, 2500, math.log(1.07))
    d, m, n = log_differences(a, b)
    assert m * n == d.size <= 4_000_000 and m < 3000 and n < 2500
    thinned = hodges_lehmann(a, b)[0]
    exact = math.expm1(np.median(np.subtract.outer(np.log(b), np.log(a))))
    assert thinned == pytest.approx(exact, abs=0.002)


def test_the_text_says_the_change_its_interval_and_p():
    rng = np.random.default_rng(7)
    text = speed_change(*_samples(rng, 40, 40, math.log(1.2))).text()
    assert text.startswith("median frame latency +") and "99 % CI +" in text and "p = " in text
    assert "40 and 40 frames" in text
