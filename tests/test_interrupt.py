"""Nothing lost: a parity run stopped by SIGTERM or Ctrl-C keeps what finished (marked partial) or leaves
the earlier results.json untouched, exits non-zero without a traceback and leaves no port process and no
temporary file; results and goldens are written atomically (issue 8)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import assert_port_group_gone

from harness.verdicts.results import new_results, read_results, write_results
from reference.data import Pack
from reference.errors import InputError
from reference.golden import read_manifest, write_golden
from reference.models import ModelFiles, Models

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="not on this platform: POSIX signals")

ROOT = Path(__file__).parents[1]
FAKES = Path(__file__).parent / "fake_ports"


def port_table(name: str, script: str, *extra: str, thresholds: str = "") -> str:
    argv = [sys.executable, str(FAKES / script), "--sanders", "{pack}", "--audio", "{audio}", "--output", "{output}",
            "--frames", "{frames}", *extra]
    return f"[backends.{name}]\nkind = 'subprocess'\ncommand = {json.dumps(argv)}\ntimeout = 120\n{thresholds}\n"


def write_config(tmp_path: Path, pack: Path, models: Path, backends: str) -> Path:
    path = tmp_path / "parity.toml"
    path.write_text(f"[data]\npack = '{pack}'\nmodels = '{models}'\naudio = ['{pack}/audio.wav']\nframes = 3\n"
                    f"[run]\noutput = '{tmp_path / 'out'}'\nexplain = false\n{backends}")
    return path


# `python -m harness.cli`, with Ctrl-C raising KeyboardInterrupt even where the test's own process
# ignores SIGINT (a shell's background job does, and Python then installs no handler for it).
CLI_WITH_CTRL_C = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "runpy.run_module('harness.cli', run_name='__main__')")


def interrupt_run(config: Path, pidfile: Path, sig: int) -> tuple[int, str]:
    """Start `synctalk-parity run`, send `sig` once the hanging port is up; (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-c", CLI_WITH_CTRL_C, "run", "--config", str(config), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        deadline = time.monotonic() + 120
        while not pidfile.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the hanging port never started"
            time.sleep(0.05)
        os.kill(proc.pid, sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # the run did not end: its threads' stacks say where it waits
            os.kill(proc.pid, signal.SIGABRT)
            pytest.fail(f"the run did not end within 60 s of {sig!r}; its threads:\n{proc.communicate()[1][-8000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


def temporary_files(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("sig, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_interrupted_run_keeps_finished_runs_marked_partial(tmp_path, synthetic_pack, tiny_models_dir, sig, code,
                                                            name):
    pidfile = tmp_path / "hang.pids"
    backends = (port_table("copy", "copy_port.py", thresholds="thresholds = { psnr_min = 0 }")
                + port_table("hang", "hang_port.py", "--pidfile", str(pidfile)))
    rc, err = interrupt_run(write_config(tmp_path, synthetic_pack, tiny_models_dir, backends), pidfile, sig)
    assert rc == code and f"interrupted ({name})" in err and "Traceback" not in err, err
    results = read_results(tmp_path / "out" / "results.json")
    assert results["partial"] is True and results["interrupted"] == name
    assert [(r["backend"], r["status"]) for r in results["runs"]] == [("copy", "passed")]
    assert temporary_files(tmp_path / "out") == []
    assert_port_group_gone(pidfile)


def test_run_interrupted_before_any_result_leaves_the_earlier_results_untouched(tmp_path, synthetic_pack,
                                                                               tiny_models_dir):
    pidfile = tmp_path / "hang.pids"
    config = write_config(tmp_path, synthetic_pack, tiny_models_dir,
                          port_table("hang", "hang_port.py", "--pidfile", str(pidfile), "--ignore-term"))
    earlier = write_results(earlier_results(), tmp_path / "out" / "results.json")
    before = earlier.read_bytes()
    rc, err = interrupt_run(config, pidfile, signal.SIGTERM)
    assert rc == 143 and "Traceback" not in err, err
    assert earlier.read_bytes() == before
    assert temporary_files(tmp_path / "out") == []
    assert_port_group_gone(pidfile)


def earlier_results() -> dict:
    machine = {"name": "m", "os": "os", "cpu": "cpu", "python": "3", "libraries": {}}
    inputs = {"source": {"path": "p", "kind": "pack", "sha256": "0"}, "models": {"audio_encoder": "0", "generator": "0"},
              "audio": [{"name": "a.wav", "sha256": "0"}]}
    results = new_results(machine, inputs, "desktop", {})
    results["runs"].append({"backend": "old", "kind": "onnxruntime", "audio": "a.wav", "status": "passed",
                            "failures": [], "frames": 3})
    results["partial"] = False
    return results


# --------------------------------------------------------------------------- atomic writes, in process

def test_results_write_interrupted_midway_keeps_the_old_file(tmp_path, monkeypatch):
    path = write_results(earlier_results(), tmp_path / "results.json")
    before = path.read_bytes()

    import reference.atomic
    real_fdopen = reference.atomic.os.fdopen

    class HalfThenInterrupt:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[:len(text) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(reference.atomic.os, "fdopen", lambda fd, mode: HalfThenInterrupt(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        write_results(earlier_results(), path)
    assert path.read_bytes() == before and temporary_files(tmp_path) == []


def test_invalid_results_are_never_written(tmp_path):
    path = write_results(earlier_results(), tmp_path / "results.json")
    before = path.read_bytes()
    bad = earlier_results()
    bad["runs"][0]["status"] = "fine"
    with pytest.raises(Exception, match="'fine' is not one of"):
        write_results(bad, path)
    assert path.read_bytes() == before and temporary_files(tmp_path) == []


@pytest.fixture(scope="module")
def golden_inputs(tiny_models_dir, synthetic_pack):
    return Pack(synthetic_pack), synthetic_pack / "audio.wav", Models(ModelFiles.from_dir(tiny_models_dir), threads=1)


def test_golden_interrupted_midway_keeps_the_old_golden(tmp_path, golden_inputs, monkeypatch):
    source, wav, models = golden_inputs
    out = write_golden(tmp_path / "golden", source, wav, models, 2)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    import reference.golden as golden
    calls = []

    def encode_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = golden.encode_frame
    monkeypatch.setattr(golden, "encode_frame", encode_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_golden(out, source, wav, models, 3, force=True)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden"]


def test_golden_command_never_overwrites_without_force(tmp_path, tiny_models_dir, synthetic_pack, capsys):
    from harness.cli import main
    argv = ["golden", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
            "--models", str(tiny_models_dir), "--frames", "1", "--out", str(tmp_path / "g")]
    assert main(argv) == 0
    before = (tmp_path / "g" / "manifest.json").read_bytes()
    assert main(argv[:-3] + ["2", "--out", str(tmp_path / "g")]) == 2
    assert f"{tmp_path / 'g'}: a golden already exists here (pass --force" in capsys.readouterr().err
    assert (tmp_path / "g" / "manifest.json").read_bytes() == before
    assert main(argv[:-3] + ["2", "--out", str(tmp_path / "g"), "--force"]) == 0
    assert read_manifest(tmp_path / "g")["frames"] == 2
    with pytest.raises(InputError):
        read_manifest(tmp_path)
