"""Misbehaving ports in one parity run: each is marked with its reason and stderr tail, the other backends
still run, results.json and the report are still written, and no process of a port is left (issue 8)."""
from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pytest
from processes import assert_port_group_gone

from harness.cli import main
from harness.verdicts.results import read_results

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="not on this platform: POSIX process groups")

FAKES = Path(__file__).parent / "fake_ports"
ROOT = Path(__file__).parents[1]
FRAMES = 3
JUNK = ("import os,sys; os.makedirs(sys.argv[1], exist_ok=True); "
        "[open(f'{sys.argv[1]}/frame_{k:05d}.jpg', 'wb').write(b'junk') for k in range(1, int(sys.argv[2]) + 1)]")


def port(script: str, *extra: str, **options) -> str:
    """The TOML lines of a subprocess backend running tests/fake_ports/<script> with the ports' CLI."""
    argv = [sys.executable, str(FAKES / script), "--sanders", "{pack}", "--audio", "{audio}", "--output", "{output}",
            "--frames", "{frames}", *extra]
    lines = ["kind = 'subprocess'", f"command = {json.dumps(argv)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines)


def config(tmp_path: Path, pack: Path, models: Path) -> tuple[Path, Path]:
    """A run of the reference and every kind of broken port on one audio; returns (config, hang pidfile)."""
    pidfile = tmp_path / "hang.pids"
    backends = {
        "reference": "kind = 'reference'",
        "crash": port("crash_port.py"),
        "killed": port("signal_port.py", "--signal", "KILL"),
        "segfault": port("signal_port.py", "--signal", "SEGV"),
        "hang": port("hang_port.py", "--pidfile", str(pidfile), "--ignore-term", timeout=1, kill_grace=0.2),
        "few_frames": port("few_frames_port.py"),
        "extra_frames": port("copy_port.py", "--extra", "2") + "\nthresholds = { psnr_min = 0 }",
        "wrong_size": port("wrong_size_port.py"),
        "unreadable": f"kind = 'subprocess'\ncommand = {json.dumps([sys.executable, '-c', JUNK, '{output}', '{frames}'])}",
        "garbage_stdout": port("copy_port.py") + "\nthresholds = { psnr_min = 0 }",
        "missing_binary": "kind = 'subprocess'\ncommand = ['/nonexistent/port']",
    }
    text = (f"[data]\npack = '{pack}'\nmodels = '{models}'\naudio = ['{pack}/audio.wav']\nframes = {FRAMES}\n"
            f"[run]\noutput = '{tmp_path / 'out'}'\nexplain = false\n")
    text += "".join(f"[backends.{name}]\n{body}\n" for name, body in backends.items())
    path = tmp_path / "parity.toml"
    path.write_text(text)
    return path, pidfile


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory, synthetic_pack, tiny_models_dir):
    tmp = tmp_path_factory.mktemp("broken-ports")
    path, pidfile = config(tmp, synthetic_pack, tiny_models_dir)
    rc = main(["run", "--config", str(path), "--quiet"])
    return rc, tmp / "out" / "results.json", pidfile, tmp


def record(results_path: Path, backend: str) -> dict:
    (found,) = [r for r in read_results(results_path)["runs"] if r["backend"] == backend]
    return found


# backend -> (status, reason fragment or first failure, log tail fragment)
EXPECTED = {
    "crash": ("error", "crash: port exited with code 3: fatal: generator.onnx: invalid protobuf",
              "warning: something odd"),
    "killed": ("error", "killed: port was killed by signal SIGKILL", ""),
    "segfault": ("error", "segfault: port was killed by signal SIGSEGV", ""),
    "hang": ("error", "hang: timed out after 1 s (process group killed)", "working ..."),
    "few_frames": ("error", "few_frames: missing output frame", ""),
    "extra_frames": ("failed", f"wrote 2 frame files more than the {FRAMES} asked for", None),
    "wrong_size": ("error", "wrong_size: frame_00001.jpg is 640x360, expected 1280x720", ""),
    "unreadable": ("error", "unreadable: output frame frame_00001.jpg could not be read as an image", ""),
    "garbage_stdout": ("passed", None, None),
    "missing_binary": ("error", "missing_binary: port executable /nonexistent/port does not exist", None),
    "reference": ("passed", None, None),
}


@pytest.mark.parametrize("backend", list(EXPECTED))
def test_each_broken_port_is_marked_with_its_reason(broken_run, backend):
    _, results_path, _, _ = broken_run
    status, reason, tail = EXPECTED[backend]
    run = record(results_path, backend)
    assert run["status"] == status, run
    if status in ("error", "skipped"):
        assert reason in run["reason"]
    if status == "failed":
        assert run["failures"][0] == reason
    if tail:
        assert tail in run["log_tail"]


def test_few_frames_names_the_first_missing_file(broken_run):
    run = record(broken_run[1], "few_frames")
    assert "frame_00002.jpg" in run["reason"] and f"found 1 of {FRAMES} expected frames" in run["reason"]


def test_garbage_on_stdout_is_ignored_but_timing_lines_are_read(broken_run):
    run = record(broken_run[1], "garbage_stdout")
    assert run["frames"] == FRAMES and run["timings"]["stages"]["audio_encoder"] == pytest.approx(0.0125)


def test_the_run_finishes_exit_3_with_every_backend_recorded(broken_run):
    rc, results_path, _, _ = broken_run
    results = read_results(results_path)
    assert rc == 3 and results["partial"] is False
    assert sorted(r["backend"] for r in results["runs"]) == sorted(EXPECTED)
    assert not [p.name for p in results_path.parent.iterdir() if p.name.startswith(".results.json")]


def test_the_report_is_written_with_every_reason(broken_run, tmp_path):
    _, results_path, _, _ = broken_run
    assert main(["report", str(results_path), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "index.html").read_text()
    for backend in EXPECTED:
        assert backend in html
    assert "timed out after 1 s (process group killed)" in html and "killed by signal SIGSEGV" in html


def test_no_process_of_the_hung_port_is_left(broken_run):
    assert_port_group_gone(broken_run[2])


def test_ports_never_run_through_a_shell():
    """No shell anywhere in the harness: subprocess calls take argv lists, never shell=True or os.system."""
    offenders = []
    for path in sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "reference").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "shell" and not (
                    isinstance(node.value, ast.Constant) and node.value.value is False):
                offenders.append(f"{path.name}:{node.value.lineno} shell=")
            if isinstance(node, ast.Attribute) and node.attr in ("system", "popen") and \
                    isinstance(node.value, ast.Name) and node.value.id == "os":
                offenders.append(f"{path.name}:{node.lineno} os.{node.attr}")
    assert offenders == []
