"""Numbers in words: a share below 100 % is never printed as 100 %."""
from __future__ import annotations

import math

import pytest

from harness.text.tables import fmt_number, fmt_pct
from harness.verdicts.tolerances import Thresholds, evaluate
from reports.runs import fmt_pct as report_pct


@pytest.mark.parametrize("value, text", [
    (100.0, "100.000"), (99.99996, "99.99996"), (99.9994, "99.999"), (99.5, "99.500"), (0.0, "0.000"),
    (100.0 - 1e-9, "99.999999999"), (None, "-")])
def test_fmt_pct_never_rounds_up_to_100(value, text):
    assert fmt_pct(value) == text


def test_one_differing_value_in_a_720p_frame_is_not_reported_as_100_pct():
    share = 100.0 * (1 - 1 / (1280 * 720 * 3))
    failures = evaluate(Thresholds(identical_pct_min=100.0), {"identical_pct": (share, 4)}, {}, None)
    assert failures == ["pixel-identical 99.99996 % on frame 5 < 100 %"]
    assert report_pct(share) == "99.99996" and report_pct(None) == "–"


def test_fmt_number_words():
    assert fmt_number(math.inf) == "inf" and fmt_number(-math.inf) == "-inf" and fmt_number(True) == "-"
