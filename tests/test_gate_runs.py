"""The gate on real parity runs (tiny synthetic models, the synthetic pack, a port in its own process):
a port whose new build changed one convention is a parity regression naming that deviation; a port
slowed by a sleep per frame is a speed regression, the same port run again is not; `pytest
--parity-gate` gates the session's results.json.

The ports are ``tests/fake_ports/defect_port.py`` (the reference pipeline) and, for speed,
``slow_port.py`` (a known sleep per frame, which the load of a shared machine barely moves); a defect
or a slowdown comes from the environment (``DEFECT_PORT_CONVENTIONS``, ``DEFECT_PORT_SLEEP_MS``,
``SLOW_PORT_PER_FRAME``), so the configured command stays the same, as with a new build of a port.
The A/A measurement on the demo data (twenty pairs, the real pipeline) is the benchmark
``tests/benchmarks/test_gate_statistics.py``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import history_docs as docs
import pytest

from harness.cli import main
from harness.verdicts.results import read_results

pytestmark = pytest.mark.long

PORT = Path(__file__).parent / "fake_ports" / "defect_port.py"
SLOW_PORT = Path(__file__).parent / "fake_ports" / "slow_port.py"


def _config(tmp: Path, pack: Path, models: Path, frames: int) -> Path:
    port = docs.port_table("port", PORT, "--models", "{models}", output_pattern="frame_%05d.png")
    return docs.parity_config(tmp / "parity.toml", pack, models, pack / "audio.wav", frames, port, profile="desktop")


def _run(config: Path, out: Path) -> Path:
    main(["run", "--config", str(config), "--output", str(out), "--quiet"])
    return out / "results.json"


def test_a_port_with_one_convention_changed_is_a_parity_regression_naming_it(tmp_path, synthetic_pack,
                                                                               tiny_models_dir, monkeypatch, capsys):
    config = _config(tmp_path, synthetic_pack, tiny_models_dir, 6)
    store = str(tmp_path / "history.sqlite")
    before = _run(config, tmp_path / "before")
    assert main(["history", "add", str(before), "--store", store, "--commit", "a" * 40, "--branch", "main"]) == 0
    monkeypatch.setenv("DEFECT_PORT_CONVENTIONS", "resize_kernel=nearest")
    after = _run(config, tmp_path / "after")
    capsys.readouterr()
    assert main(["gate", str(after), "--against", "branch:main", "--store", store]) == 1
    out = capsys.readouterr().out
    print(out)
    assert "REGRESSION: port / audio.wav: verdict: passed -> failed" in out
    assert "REGRESSION: port / audio.wav: bill of deviations: canonical -> resize_kernel=nearest (gained " \
           "resize_kernel=nearest (weight" in out
    assert "REGRESSION: port / audio.wav: worst PSNR: inf dB -> " in out
    assert "REGRESSION: port / audio.wav: identical %: 100.0000 -> " in out
    assert main(["gate", str(before), "--against", str(after)]) == 0  # the fix, gated the other way round
    assert "improvement: port / audio.wav: bill of deviations: resize_kernel=nearest -> canonical (lost " \
           "resize_kernel=nearest)" in capsys.readouterr().out


def _slow_config(folder: Path, pack: Path, frames: int = 22) -> Path:
    """A config of slow_port.py: frames that take a known $SLOW_PORT_PER_FRAME seconds (a sleep, timed from
    the files it writes, which the machine's load barely moves)."""
    port = docs.port_table("port", SLOW_PORT, "--startup", "0.2",  # it copies the template frames:
                           thresholds={"psnr_min": 0})  # judged on speed alone
    return docs.parity_config(folder / "slow.toml", pack, "synthetic:tiny", pack / "audio.wav", frames, port,
                              explain=False)


def test_a_ten_percent_slower_port_is_found_and_the_same_port_again_is_not(tmp_path, synthetic_pack, monkeypatch,
                                                                            capsys):
    config = _slow_config(tmp_path, synthetic_pack)
    monkeypatch.setenv("SLOW_PORT_PER_FRAME", "0.1")
    first, again = _run(config, tmp_path / "a"), _run(config, tmp_path / "a2")
    monkeypatch.setenv("SLOW_PORT_PER_FRAME", "0.11")
    slowed = _run(config, tmp_path / "b")
    assert read_results(slowed)["runs"][0]["timings"]["frame_ms"]
    capsys.readouterr()
    # a sleep is not slowed by other work: speed is compared however busy the shared machine is, and its
    # runs repeat (no run-to-run noise: one run a side is gated)
    busy = ["--max-background", "1", "--noise", "0"]
    assert main(["gate", str(again), "--against", str(first), *busy]) == 0, capsys.readouterr().out
    assert "speed" not in capsys.readouterr().out.split("comparisons, no change")[0]
    assert main(["gate", str(slowed), "--against", str(again), *busy]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION: port / audio.wav: speed: " in out and "median frame latency +" in out, out


def test_pytest_parity_gate_fails_the_session_on_a_regression(pytester, tmp_path, synthetic_pack, monkeypatch):
    config = _slow_config(pytester.path, synthetic_pack, 12)
    args = ["-p", "no:cacheprovider", "--parity-config", str(config), "--parity-gate-max-background", "1",
            "--parity-gate-noise", "0"]
    monkeypatch.setenv("SLOW_PORT_PER_FRAME", "0.1")
    assert pytester.runpytest_subprocess(*args).ret == 0
    baseline = tmp_path / "baseline.json"
    shutil.copy(pytester.path / "out" / "results.json", baseline)
    again = pytester.runpytest_subprocess(*args, "--parity-gate", str(baseline))
    assert again.ret == 0
    again.stdout.fnmatch_lines(["*synctalk-parity gate*", "gate against *baseline.json: 0 regression(s)*",
                                "* comparisons, no change"])
    monkeypatch.setenv("SLOW_PORT_PER_FRAME", "0.2")
    slowed = pytester.runpytest_subprocess(*args, "--parity-gate", str(baseline), "--parity-gate-markdown",
                                           str(tmp_path / "gate.md"))
    assert slowed.ret == 1  # the parity test passed; the gate failed the session
    slowed.stdout.fnmatch_lines(["REGRESSION: port / audio.wav: speed: *", "*1 passed*"])
    assert "| regression | port | audio.wav | speed |" in (tmp_path / "gate.md").read_text()
    usage = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--parity-gate", str(baseline))
    assert usage.ret == pytest.ExitCode.USAGE_ERROR
    usage.stderr.fnmatch_lines(["*--parity-gate gates the results.json of a --parity-config run*"])
