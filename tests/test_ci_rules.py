"""The suite's own CI rule: under CI nothing is skipped silently, at collection or in a test."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ci import in_ci

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("1", True), ("yes", True), ("TRUE", True),
    ("", False), ("0", False), ("false", False), ("False", False), ("no", False), ("off", False)])
def test_what_counts_as_ci(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_no_ci_variable_is_not_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not in_ci()


@pytest.fixture
def suite(pytester):
    """A small suite under this folder's conftest: skips at collection and in a test."""
    for name in ("conftest.py", "ci.py"):
        shutil.copy(HERE / name, pytester.path / name)
    pytester.makepyfile(
        test_importorskip="import pytest\npytest.importorskip('no_such_module_here')\ndef test_x(): pass\n",
        test_module_skip="import pytest\npytest.skip('no data', allow_module_level=True)\n",
        test_platform="import pytest\nfrom harness.plugin import PLATFORM_SKIP\n"
                      "pytest.skip(f'{PLATFORM_SKIP}: no swiftc', allow_module_level=True)\n",
        test_inner_skip="import pytest\ndef test_s(): pytest.skip('later')\ndef test_ok(): pass\n")
    return pytester


@pytest.mark.parametrize("value", ["true", "1"])
def test_skips_fail_under_ci_and_the_run_goes_on(suite, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3, skipped=1)
    result.stdout.fnmatch_lines(["*skipped at collection under CI*no_such_module_here*",
                                 "*skipped at collection under CI*no data*"])
    assert result.ret == 1


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_skips_stay_skips_outside_ci(suite, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=4)
    assert result.ret == 0
