"""Honest verdicts under faults (issue 13): engine errors, crashes, missing ports, work folders,
config keys, CI-friendly output, the report hint."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.runs.config import ConfigError, load_config

BASE = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav"]
frames = 3
[run]
output = "{out}"
explain = false
"""


def write_config(tmp_path: Path, pack: Path, models: Path, rest: str) -> Path:
    path = tmp_path / "parity.toml"
    path.write_text(BASE.format(pack=pack, models=models, out=tmp_path / "out") + rest)
    return path


def test_a_bench_typo_is_an_error_for_run_too(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir,
                        '[bench]\nwarmpu = 3\n[backends.ort]\nkind = "onnxruntime"\n')
    with pytest.raises(ConfigError, match=r"unknown key \[bench\]\.warmpu"):
        load_config(path)
    assert main(["run", "--config", str(path), "--no-progress"]) == 2
    assert "[bench].warmpu" in capsys.readouterr().err


def test_progress_bars_only_on_a_terminal(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    common = ["infer", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
              "--models", str(tiny_models_dir), "--frames", "2", "--output", str(tmp_path / "a")]
    assert main(common) == 0  # captured stderr is not a terminal: no bar, no carriage returns
    assert "\r" not in capsys.readouterr().err
    assert main(common + ["--progress"]) == 0
    assert "\r" in capsys.readouterr().err
    assert main(common + ["--progress", "--quiet"]) == 0
    assert "\r" not in capsys.readouterr().err


def test_colour_only_on_a_terminal(monkeypatch):
    from harness.runs.console import results_table
    from harness.text.terminal import colour_enabled
    results = {"runs": [{"backend": "b", "audio": "a", "status": "failed", "failures": []}]}
    assert "\033[" not in results_table(results, colour_enabled())  # pytest's stdout is no terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_enabled()
    table = results_table(results, colour_enabled())
    assert "\033[31mFAILED\033[0m" in table
    assert table.splitlines()[1] == results_table(results).splitlines()[1]  # alignment unchanged
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_enabled()


def test_an_unexpected_exception_is_one_line_and_a_log_exit_3(tmp_path, monkeypatch, capsys):
    import harness.runs.compare

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero in the comparison")
    monkeypatch.setattr(harness.runs.compare, "compare_folders", boom)
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path / "cache"))
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: compare failed unexpectedly: ZeroDivisionError: division by zero")
    log = Path(err.rsplit("traceback in ", 1)[1].rstrip(")"))
    assert log.parent == tmp_path / "cache" / "logs"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in boom" in text and "'compare'" in text


def _results(tmp_path: Path) -> dict:
    from harness.verdicts.results import read_results
    return read_results(tmp_path / "out" / "results.json")


TWO_BACKENDS = '[backends.ort]\nkind = "onnxruntime"\n[backends.fp16]\nkind = "fp16"\n' \
               'thresholds = { profile = "mobile", feature_max_abs = 0.05 }\n'
ENGINE_MESSAGE = "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : provider option rejected"


@pytest.mark.parametrize("where", ["session", "inference"])
def test_an_engine_error_is_that_backends_error(tmp_path, synthetic_pack, tiny_models_dir, monkeypatch, capsys,
                                                where):
    from harness.backends.base import BackendRun
    from harness.backends.ort_backend import OrtBackend

    def broken(self, inputs):
        if where == "session":
            raise RuntimeError(ENGINE_MESSAGE)

        def frames():
            raise RuntimeError(ENGINE_MESSAGE)
            yield  # pragma: no cover
        return BackendRun(frames())
    monkeypatch.setattr(OrtBackend, "run", broken)
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, TWO_BACKENDS)
    assert main(["run", "--config", str(path), "--no-progress"]) == 3
    runs = {r["backend"]: r for r in _results(tmp_path)["runs"]}
    assert runs["ort"]["status"] == "error"
    assert runs["ort"]["reason"] == f"ort: RuntimeError: {ENGINE_MESSAGE}"
    assert runs["fp16"]["status"] == "passed"  # the backend after it still ran
    assert ENGINE_MESSAGE in capsys.readouterr().out


def test_a_failing_diagnosis_and_video_are_recorded_on_the_backend(tmp_path, synthetic_pack, tiny_models_dir,
                                                                   monkeypatch, capsys):
    import subprocess

    import harness.runs.parity
    import harness.runs.video

    def no_diagnosis(*args, **kwargs):
        raise MemoryError("diagnosis ran out of memory")

    def no_mux(cmd, **kwargs):
        raise subprocess.CalledProcessError(1, cmd, stderr=b"aac: encoder not found\n")
    monkeypatch.setattr(harness.runs.parity, "diagnose", no_diagnosis)
    monkeypatch.setattr(harness.runs.video.subprocess, "run", no_mux)
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir,
                        '[backends."reference[channel_order=rgb]"]\n' + TWO_BACKENDS)
    path.write_text(path.read_text().replace("explain = false", "explain = true"))
    assert main(["run", "--config", str(path), "--no-progress", "--video"]) == 3
    runs = {r["backend"]: r for r in _results(tmp_path)["runs"]}
    rgb = runs["reference[channel_order=rgb]"]
    assert rgb["status"] == "failed" and rgb["failures"]  # the verdict stands
    assert "diagnosis: MemoryError: diagnosis ran out of memory" in rgb["errors"]
    assert all(r["status"] in ("passed", "failed") and "video" not in r for r in runs.values())
    assert all(any(e.startswith("video: CalledProcessError") and "aac: encoder not found" in e for e in r["errors"])
               for r in runs.values())
    assert not list((tmp_path / "out").rglob("*.mp4"))  # nothing half-written stays
    assert "diagnosis: MemoryError" in capsys.readouterr().out


@pytest.mark.parametrize("fault, reason", [
    ("missing", "does not exist"),
    ("not_executable", "is not executable"),
    ("fails_to_start", "could not start"),
])
def test_a_configured_port_that_cannot_start_is_an_error_and_a_failed_test(
        tmp_path, synthetic_pack, tiny_models_dir, pytester, fault, reason):
    binary = tmp_path / "port"
    if fault != "missing":
        binary.write_bytes(b"\x7fELF not really a program")
        binary.chmod(0o755 if fault == "fails_to_start" else 0o644)
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir,
                        f'[backends.go]\nkind = "subprocess"\ncommand = ["{binary}", "{{output}}"]\n')
    assert main(["run", "--config", str(path), "--no-progress"]) == 3
    (run,) = _results(tmp_path)["runs"]
    assert run["status"] == "error" and reason in run["reason"], run
    result = pytester.runpytest("--parity-config", str(path))
    result.assert_outcomes(failed=1)
    assert reason in result.stdout.str()


def test_work_folders_never_collide(tmp_path, synthetic_pack, tiny_models_dir):
    """Two audios with the same stem, two backend names with the same safe name, a backend named like
    the reference's folder: every run keeps a work folder of its own."""
    from harness.runs.parity import unique_names
    assert unique_names(["a[b]", "a_b_", "A_B_", "reference"], reserved=("reference",)) == \
        ["a_b_", "a_b_-2", "A_B_-3", "reference-2"]
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "talk.wav").write_bytes((synthetic_pack / "audio.wav").read_bytes())
    port = Path(__file__).parent / "fake_ports" / "copy_port.py"
    table = (f'kind = "subprocess"\ncommand = ["{sys.executable}", "{port}", "--sanders", "{{pack}}", "--audio", '
             f'"{{audio}}", "--output", "{{output}}", "--frames", "{{frames}}"]\n')
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir,
                        f'[backends."a[b]"]\n{table}[backends.a_b_]\n{table}[backends.reference]\n{table}')
    path.write_text(path.read_text().replace(f'audio = ["{synthetic_pack}/audio.wav"]',
                                             f'audio = ["{tmp_path}/one/talk.wav", "{tmp_path}/two/talk.wav"]'))
    # the copy port returns the templates: PSNR fails (the six diagnoses are not what this test is about)
    assert main(["run", "--config", str(path), "--no-progress", "--no-explain"]) == 1
    runs = _results(tmp_path)["runs"]
    assert len(runs) == 6 and {r["audio"] for r in runs} == {"talk.wav", "talk.wav-2"}
    outputs = [r["info"]["command"][r["info"]["command"].index("--output") + 1] for r in runs]
    assert len(set(outputs)) == 6  # six work folders, none shared with another run or the reference
    for output in outputs:
        assert len(list(Path(output).glob("frame_*.jpg"))) == 3  # no run deleted another's frames
    work = tmp_path / "out" / "work"
    assert sorted(p.name for p in work.iterdir()) == ["talk", "talk-2"]
    assert sorted(p.name for p in (work / "talk").iterdir()) == ["a_b_", "a_b_-2", "reference", "reference-2"]


def test_run_leads_to_the_report(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    import shlex
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.ort]\nkind = "onnxruntime"\n')
    assert main(["run", "--config", str(path), "--no-progress"]) == 0
    hint = capsys.readouterr().out.strip().splitlines()[-1]
    results = tmp_path / "out" / "results.json"
    assert hint == "report: " + shlex.join(["synctalk-parity", "report", str(results), "--out",
                                            str(tmp_path / "out" / "report")])
    assert main(shlex.split(hint.split(": ", 1)[1])[1:]) == 0  # the printed command works
    assert (tmp_path / "out" / "report" / "index.html").is_file()
    assert main(["run", "--config", str(path), "--no-progress", "--report", str(tmp_path / "r1")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"report -> {tmp_path / 'r1' / 'index.html'}"
    path.write_text(path.read_text().replace("explain = false", f'explain = false\nreport = "{tmp_path / "r2"}"'))
    assert main(["run", "--config", str(path), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"report -> {tmp_path / 'r2' / 'index.html'}"
    assert (tmp_path / "r2" / "index.html").is_file()


def test_the_ssim_kernel_caches_in_the_user_cache_from_a_read_only_install(tmp_path):
    import os
    import shutil
    import stat
    import subprocess

    import harness
    copy = tmp_path / "site-packages"
    shutil.copytree(Path(harness.__file__).parent, copy / "harness",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    code = ("import numpy as np, harness.verdicts.ssim_kernel as k; assert k.__file__.startswith(%r), k.__file__; "
            "x = np.arange(300, dtype=np.uint8).reshape(10, 30); out = np.zeros((4, 12), np.float32); "
            "k.ssim_rows(x, x, out, 3, 7, 6.5025, 58.5225); assert abs(out - 1).max() < 1e-6") % str(copy)
    env = {**os.environ, "SYNCTALK_PARITY_CACHE": str(tmp_path / "cache"), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": str(copy), "NUMBA_CACHE_DIR": ""}
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert list((tmp_path / "cache" / "numba").rglob("*.nbi")), "no numba index in the user cache"
        assert not [p for p in copy.rglob("*") if p.suffix in (".nbi", ".nbc")], "numba wrote beside the source"
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
