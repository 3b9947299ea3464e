"""`pytest -n 2 --parity-config FILE`: each backend's tests run in one worker (its audio-dependence check
sees all its audios), the reference of each audio is computed once for all workers, and the workers'
records merge into one results.json that `report` renders."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.verdicts.results import read_results

pytestmark = pytest.mark.long

FAKE_PORTS = Path(__file__).parent / "fake_ports"

CONFIG = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav", "silence"]
frames = 3
[run]
output = "{out}"
explain = false
[backends.ort_cpu]
kind = "onnxruntime"
[backends.ref]
kind = "reference"
[backends.ghost]
kind = "subprocess"
command = ["{python}", "{port}", "--sanders", "{{pack}}", "--audio", "{{audio}}", "--output", "{{output}}", "--frames", "{{frames}}"]
thresholds = {{ psnr_min = 0 }}
"""


def test_two_workers_share_the_reference_and_merge_their_records(pytester, synthetic_pack, tiny_models_dir, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path / "cache"))  # empty: the reference must be computed
    path = tmp_path / "parity.toml"
    out = tmp_path / "out"
    path.write_text(CONFIG.format(pack=synthetic_pack, models=tiny_models_dir, out=out, python=sys.executable,
                                  port=FAKE_PORTS / "copy_port.py"))  # ghost: the template frames, whatever the audio
    result = pytester.runpytest_subprocess("-n", "2", "--parity-config", str(path), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)
    text = result.stdout.str()
    assert re.search(r"FAILED \S*parity\.toml::ghost\[silence_1\.12s\]", text)  # both its audios in one worker
    assert "6 runs of 2 workers merged into" in text
    results = read_results(out / "results.json")
    assert [(r["backend"], r["audio"]) for r in results["runs"]] == [
        (backend, audio) for audio in ("audio.wav", "silence_1.12s.wav") for backend in ("ort_cpu", "ref", "ghost")]
    assert results["partial"] is False
    assert {e["worker"] for e in results["reference"]} == {"gw0", "gw1"}
    for audio in ("audio.wav", "silence_1.12s.wav"):
        computed = [e["cached"] is False for e in results["reference"] if e["audio"] == audio]
        assert sum(computed) == 1, f"the reference of {audio} was computed {sum(computed)} times"
    assert not (out / ".parts").exists()
    assert main(["report", str(out / "results.json"), "--out", str(tmp_path / "report")]) in (0, 1)
    assert (tmp_path / "report" / "index.html").is_file()


def test_a_distribution_that_splits_a_backends_audios_is_refused(pytester, synthetic_pack, tiny_models_dir, tmp_path):
    path = tmp_path / "parity.toml"
    path.write_text(CONFIG.format(pack=synthetic_pack, models=tiny_models_dir, out=tmp_path / "out",
                                  python=sys.executable, port=FAKE_PORTS / "copy_port.py"))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "worksteal", "--parity-config", str(path))
    assert result.ret == 4 and "audio-dependence check needs them together" in result.stderr.str()


def test_benchmarks_in_parallel_are_refused_and_a_parallel_run_does_not_warn_about_them(pytester):
    pytester.makepyfile(test_speed="def test_fast(benchmark):\n    benchmark(sum, [1, 2])\n"
                                   "def test_plain():\n    pass\n")
    refused = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--benchmark")
    assert refused.ret == 4 and "--benchmark measures speed: run it alone" in refused.stderr.str()
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    plain.assert_outcomes(passed=1)  # the benchmark deselected (the workers do not count it)
    assert "Benchmarks are automatically disabled" not in plain.stdout.str() + plain.stderr.str()
    alone = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark")
    alone.assert_outcomes(passed=2)
