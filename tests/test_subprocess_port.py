"""The subprocess backend, against tiny fake ports (tests/fake_ports) on a 6-frame synthetic pack."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import BackendFailed, BackendRun, RunInputs
from harness.backends.subprocess_port import (
    PORT_PRESET,
    SubprocessBackend,
    parse_options,
    preset_options,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="not on this platform: POSIX process groups")

FAKES = Path(__file__).parent / "fake_ports"
N = 6


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    from fixtures.pack import build_pack
    return build_pack(tmp_path_factory.mktemp("port-pack") / "pack", frames=N, seed=0)


def inputs(pack: Path, workdir: Path, frames: int = N) -> RunInputs:
    workdir.mkdir(parents=True, exist_ok=True)
    return RunInputs(source=pack, source_kind="pack", audio=pack / "audio.wav", models=pack / "models",
                     frames=frames, workdir=workdir)


def fake(script: str, *extra: str, **options) -> SubprocessBackend:
    """A backend running `python tests/fake_ports/<script> <the ports' CLI> <extra>`."""
    options = preset_options([sys.executable, str(FAKES / script)], **options)
    options["command"] += list(extra)
    return SubprocessBackend(script, options)


def failure(backend: SubprocessBackend, run_inputs: RunInputs) -> BackendFailed:
    with pytest.raises(BackendFailed) as info:
        run = backend.run(run_inputs)
        list(run.frames)
    return info.value


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie nobody reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# --------------------------------------------------------------------------- a good port

def test_a_port_without_timing_lines_is_timed_from_the_files_it_writes(pack, tmp_path):
    from harness.runs.parity import timing_summary
    frames, startup, per_frame = 20, 1.0, 0.05
    run = fake("slow_port.py", "--startup", str(startup), "--per-frame", str(per_frame)).run(
        inputs(pack, tmp_path / "w", frames))
    assert len(list(run.frames)) == frames and "frame_latency" not in run.timings
    appear = run.timings["frame_appear_s"]
    assert len(appear) == frames and None not in appear and appear == sorted(appear)
    assert run.timings["frame_mtime_span_s"] == pytest.approx(appear[-1] - appear[0], abs=0.2)
    out = timing_summary(run.timings, frames)
    assert out["steady_fps"] == pytest.approx(1 / per_frame, rel=0.3)
    assert out["ttff_s"] == pytest.approx(startup + per_frame, abs=0.6) and out["ttff_s"] >= startup + per_frame
    assert out["fps"] < 0.6 * out["steady_fps"]  # end to end: the start-up counts
    assert out["p50_ms"] == pytest.approx(per_frame * 1000, rel=0.3) and out["p50_ms"] <= out["p90_ms"] <= out["p99_ms"]
    assert out["steady"]["source"] == "output folder" and out["steady"]["skipped_frames"] == 3
    assert "frame_appear_s" not in out
    # every frame's latency: the first from the port's start, then the intervals between the files
    assert len(out["frame_ms"]) == frames and out["frame_ms"][0] == pytest.approx(appear[0] * 1000)
    assert sum(out["frame_ms"]) == pytest.approx(appear[-1] * 1000)
    assert statistics.median(out["frame_ms"][3:]) == pytest.approx(per_frame * 1000, rel=0.3)


def test_a_port_with_frame_lines_keeps_its_own_latencies(pack, tmp_path):
    from harness.runs.parity import timing_summary
    run = fake("copy_port.py").run(inputs(pack, tmp_path / "w"))
    list(run.frames)
    out = timing_summary(run.timings, N)
    assert out["p50_ms"] == pytest.approx(52.5)  # the port's own 50..55 ms, not the file intervals
    assert out["steady"]["source"] == "frame latencies"
    assert out["steady_fps"] == pytest.approx(3 / ((53.0 + 54.0 + 55.0) / 1000))  # frames 4-6 of 6
    assert out["ttff_s"] == run.timings["frame_appear_s"][0] > 0
    assert out["frame_ms"] == [50.0 + i for i in range(N)]  # every frame's own line, in order

def test_copy_port_frames_timings_and_info(pack, tmp_path):
    import cv2
    backend = fake("copy_port.py")
    backend.check_available()
    run = backend.run(inputs(pack, tmp_path / "w"))
    assert isinstance(run, BackendRun)
    frames = list(run.frames)
    assert len(frames) == N
    for k, frame in enumerate(frames, start=1):
        assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, cv2.imread(str(pack / "full_body_img" / f"{k}.jpg")))
    assert run.timings["stages"] == pytest.approx({"audio_encoder": 0.0125, "generator": sum(40.0 + i for i in range(N)) / 1000,
                                                   "frame": sum(50.0 + i for i in range(N)) / 1000})
    assert run.timings["stage_counts"] == {"audio_encoder": 1, "generator": N, "frame": N}
    assert run.timings["frame_latency"] == pytest.approx([(50.0 + i) / 1000 for i in range(N)])
    assert run.timings["frames"] == N
    assert 0 < run.timings["total"] < 30
    assert run.timings["peak_rss_mb"] > 5  # a Python with numpy loaded
    info = run.info
    assert info["returncode"] == 0 and info["extra_frames"] == 0
    assert info["command"][info["command"].index("--output") + 1] == str((tmp_path / "w" / "output").resolve())
    assert info["command"][info["command"].index("--frames") + 1] == str(N)
    assert Path(info["stdout_log"]).name == "port.stdout.log" and "loading models" in Path(info["stdout_log"]).read_text(errors="replace")
    assert Path(info["stderr_log"]).is_file()
    assert run.stages() == {}


def test_frames_fewer_than_the_pack_and_extra_frames_recorded(pack, tmp_path):
    run = fake("copy_port.py", "--extra", "3").run(inputs(pack, tmp_path, frames=4))
    assert len(list(run.frames)) == 4
    assert run.info["extra_frames"] == 3  # frame_00005..frame_00007, beyond the 4 asked for


def test_index_base_0_subdir_png_pattern_env_and_inner_placeholder(pack, tmp_path):
    script = str(FAKES / "copy_port.py")
    backend = SubprocessBackend("custom", {
        "command": [sys.executable, script, "--sanders={pack}", "--audio", "{audio}", "--output={output}/png",
                    "--frames", "{frames}", "--pattern", "f%d.png", "--index-base", "0", "--env-out", "PORT_TEST_VAR"],
        "output_pattern": "f%d.png", "index_base": 0, "output_subdir": "png",
        "env": {"PORT_TEST_VAR": "out={output}"}, "timeout": 20})
    run = backend.run(inputs(pack, tmp_path))
    assert len(list(run.frames)) == N
    output = (tmp_path / "output").resolve()
    assert (output / "png" / "f0.png").is_file() and not (output / "png" / "f6.png").exists()
    assert (output / "png" / "env.txt").read_text() == f"out={output}"
    assert f"--output={output}/png" in run.info["command"]


def test_stale_frames_from_an_earlier_run_are_removed(pack, tmp_path):
    out = tmp_path / "output"
    out.mkdir()
    (out / "frame_00009.jpg").write_bytes(b"stale")
    run = fake("copy_port.py").run(inputs(pack, tmp_path))
    assert run.info["extra_frames"] == 0 and not (out / "frame_00009.jpg").exists()


def test_f32le_stage_dumps_load_with_the_declared_shape(pack, tmp_path):
    dumps = {"audio_windows": {"pattern": "debug_audio_go_frame%d.bin", "format": "f32le",
                               "shape": [32, 16, 16], "index_base": 0}}
    run = fake("copy_port.py", "--dump", stage_dumps=dumps).run(inputs(pack, tmp_path))
    list(run.frames)
    stages = run.stages()
    windows = stages["audio_windows"]
    assert windows.shape == (N, 32, 16, 16) and windows.dtype == np.float32
    assert [float(w[0, 0, 0]) for w in windows] == list(range(N))


def test_npy_stage_dumps_per_frame_and_whole_array(pack, tmp_path):
    dumps = {"audio_windows": {"pattern": "{output}/audio_windows_%d.npy", "shape": [32, 16, 16]},
             "mel": {"pattern": "{output}/mel.npy", "format": "npy", "shape": [-1, 80]}}
    stages = fake("copy_port.py", "--npy", stage_dumps=dumps).run(inputs(pack, tmp_path)).stages()
    assert stages["audio_windows"].shape == (N, 32, 16, 16)
    assert stages["mel"].shape == (50, 80)


def test_wrong_size_f32le_dump_fails_naming_the_file(pack, tmp_path):
    dumps = {"audio_windows": {"pattern": "debug_audio_go_frame%d.bin", "format": "f32le", "shape": [32, 16, 16]}}
    run = fake("copy_port.py", "--dump", "--dump-floats", "512", stage_dumps=dumps).run(inputs(pack, tmp_path))
    with pytest.raises(BackendFailed, match=r"debug_audio_go_frame0\.bin has 2048 bytes, expected 32768"):
        run.stages()


def test_missing_stage_dump_fails(pack, tmp_path):
    dumps = {"audio_windows": {"pattern": "debug_audio_go_frame%d.bin", "format": "f32le", "shape": [32, 16, 16]}}
    run = fake("copy_port.py", stage_dumps=dumps).run(inputs(pack, tmp_path))
    with pytest.raises(BackendFailed, match=r"debug_audio_go_frame0\.bin does not exist"):
        run.stages()


def tree(folder: Path) -> dict:
    """Every path below `folder` (links not followed) with its kind, size and mtime."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            out[path.relative_to(folder).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def inputs_with_models(pack: Path, models: Path, workdir: Path) -> RunInputs:
    return dataclasses.replace(inputs(pack, workdir), models=models)


def test_private_pack_gives_the_runs_models_and_a_writable_cache(pack, tiny_models_dir, tmp_path):
    before = tree(pack)
    backend = fake("pack_port.py", private_pack=True)
    for k in (1, 2):  # the second run in the same workdir must not see the first run's cache files
        run = backend.run(inputs_with_models(pack, tiny_models_dir, tmp_path / "w"))
        assert len(list(run.frames)) == N
        report = json.loads((tmp_path / "w" / "output" / "report.json").read_text())
        view = (tmp_path / "w" / "pack").resolve()
        assert report["pack"] == str(view) == run.info["pack"]
        assert report["models"] == {"audio_encoder.onnx": str((tiny_models_dir / "audio_encoder.onnx").resolve()),
                                    "generator.onnx": str((tiny_models_dir / "generator.onnx").resolve())}
        assert report["cache"] == sorted(p.name for p in (pack / "cache").iterdir()), f"run {k}"
        assert (view / "cache" / "port_cache" / "run.txt").is_file()
        assert (view / "full_body_img").is_symlink() and (view / "full_body_img").resolve() == pack.resolve() / "full_body_img"
    assert tree(pack) == before  # nothing written into the real pack
    assert not (pack / "cache" / "port_cache").exists() and not (pack / "models").exists()


def test_private_pack_replaces_the_packs_own_models(pack, tiny_models_dir, tmp_path):
    own = tmp_path / "pack-with-models"
    shutil.copytree(pack, own)
    (own / "models").mkdir()
    for name in ("audio_encoder.onnx", "generator.onnx"):
        (own / "models" / name).write_bytes(b"not the run's model")
    run = fake("pack_port.py", private_pack=True).run(inputs_with_models(own, tiny_models_dir, tmp_path / "w"))
    list(run.frames)
    report = json.loads((tmp_path / "w" / "output" / "report.json").read_text())
    assert set(report["models"].values()) == {str((tiny_models_dir / n).resolve())
                                              for n in ("audio_encoder.onnx", "generator.onnx")}


def test_private_pack_links_the_external_data_of_the_runs_models(pack, tiny_models_dir, tmp_path):
    """Models exported with `.onnx.data` weights: the port's models/ holds them beside the graphs."""
    from fixtures.external import with_external_data
    models = with_external_data(tiny_models_dir, tmp_path / "models")
    list(fake("pack_port.py", private_pack=True).run(inputs_with_models(pack, models, tmp_path / "w")).frames)
    report = json.loads((tmp_path / "w" / "output" / "report.json").read_text())
    names = ("audio_encoder.onnx", "audio_encoder.onnx.data", "generator.onnx", "generator.onnx.data")
    assert report["models"] == {name: str((models / name).resolve()) for name in names}


def test_private_pack_without_the_runs_models_fails(pack, tmp_path):
    with pytest.raises(BackendFailed, match="private_pack: .*audio_encoder.onnx"):
        fake("pack_port.py", private_pack=True).run(inputs_with_models(pack, tmp_path / "nowhere", tmp_path / "w"))


def test_without_private_pack_the_port_gets_the_real_pack(pack, tmp_path):
    argv_file = tmp_path / "argv.json"
    run = fake("copy_port.py", "--argv-out", str(argv_file)).run(inputs(pack, tmp_path / "w"))
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--sanders") + 1] == str(pack) == run.info["pack"]
    assert not (tmp_path / "w" / "pack").exists()


# --------------------------------------------------------------------------- misbehaving ports

def test_crash_reports_exit_code_and_stderr_tail(pack, tmp_path):
    err = failure(fake("crash_port.py"), inputs(pack, tmp_path))
    assert "exited with code 3" in str(err) and "invalid protobuf" in str(err)
    assert "warning: something odd" in err.log_tail and "fatal: generator.onnx" in err.log_tail


@pytest.mark.parametrize("sig", ["KILL", "SEGV"])
def test_signal_is_named(pack, tmp_path, sig):
    err = failure(fake("signal_port.py", "--signal", sig), inputs(pack, tmp_path))
    assert f"killed by signal SIG{sig}" in str(err)
    assert not list(tmp_path.glob("core*"))


def test_hang_times_out_and_kills_the_whole_process_group(pack, tmp_path):
    pidfile = tmp_path / "pids"
    backend = fake("hang_port.py", "--pidfile", str(pidfile), "--ignore-term", timeout=2, kill_grace=0.5)
    start = time.monotonic()
    err = failure(backend, inputs(pack, tmp_path / "w"))
    elapsed = time.monotonic() - start
    assert "timed out after 2 s" in str(err)
    assert 2 <= elapsed < 5
    port_pid, child_pid = (int(p) for p in pidfile.read_text().split())
    deadline = time.monotonic() + 2
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child_pid), "the port's child survived the timeout"
    assert not alive(port_pid)


def test_hang_that_honours_sigterm_ends_without_the_grace(pack, tmp_path):
    pidfile = tmp_path / "pids"
    start = time.monotonic()
    err = failure(fake("hang_port.py", "--pidfile", str(pidfile), timeout=1, kill_grace=10), inputs(pack, tmp_path / "w"))
    assert "timed out after 1 s" in str(err) and time.monotonic() - start < 4
    _, child_pid = (int(p) for p in pidfile.read_text().split())
    deadline = time.monotonic() + 2
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child_pid)


def test_too_few_frames_names_the_first_missing_file(pack, tmp_path):
    err = failure(fake("few_frames_port.py"), inputs(pack, tmp_path))
    assert "frame_00005.jpg" in str(err) and f"found {N - 2} of {N}" in str(err)


def test_wrong_resolution_fails_while_iterating(pack, tmp_path):
    run = fake("wrong_size_port.py").run(inputs(pack, tmp_path))  # the run itself succeeds
    with pytest.raises(BackendFailed, match=r"frame_00001\.jpg is 640x360, expected 1280x720"):
        next(run.frames)


def test_unreadable_frame_is_named(pack, tmp_path):
    backend = SubprocessBackend("truncated", {"command": [sys.executable, "-c",
        "import sys,os; os.makedirs(sys.argv[1], exist_ok=True); [open(f'{sys.argv[1]}/frame_{k:05d}.jpg','wb').write(b'junk') for k in (1,2)]",
        "{output}"]})
    run = backend.run(inputs(pack, tmp_path, frames=2))
    with pytest.raises(BackendFailed, match=r"frame_00001\.jpg could not be read"):
        next(run.frames)


# --------------------------------------------------------------------------- command line safety and options

def test_placeholders_stay_one_argument_and_no_shell_runs(pack, tmp_path):
    odd = tmp_path / "a b;echo hacked" / "pack"
    shutil.copytree(pack, odd)
    argv_file = tmp_path / "argv.json"
    run = fake("copy_port.py", "--argv-out", str(argv_file)).run(inputs(odd, tmp_path / "w"))
    assert len(list(run.frames)) == N  # the port found the pack at the odd path
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--sanders") + 1] == str(odd)
    assert argv[argv.index("--audio") + 1] == str(odd / "audio.wav")
    assert "hacked" not in Path(run.info["stdout_log"]).read_text(errors="replace").splitlines()


def test_placeholder_values_are_not_substituted_again(pack, tmp_path):
    odd = tmp_path / "{output}" / "pack"
    shutil.copytree(pack, odd)
    argv_file = tmp_path / "argv.json"
    fake("copy_port.py", "--argv-out", str(argv_file)).run(inputs(odd, tmp_path / "w"))
    argv = json.loads(argv_file.read_text())
    assert argv[argv.index("--sanders") + 1] == str(odd)


@pytest.mark.parametrize("options, message", [
    ({"command": ["x"], "outptu_pattern": "f%d.jpg"}, "outptu_pattern"),
    ({"command": ["x", "{pakc}"]}, "{pakc}"),
    ({"command": ["x", "--out={outputs}"]}, "{outputs}"),
    ({"command": "port --sanders {pack}"}, "command"),
    ({"command": []}, "command"),
    ({"command": ["x"], "output_pattern": "frame.jpg"}, "output_pattern"),
    ({"command": ["x"], "output_pattern": "frame_%s.jpg"}, "output_pattern"),
    ({"command": ["x"], "output_pattern": "%d_%d.jpg"}, "output_pattern"),
    ({"command": ["x"], "index_base": 2}, "index_base"),
    ({"command": ["x"], "kind": "onnxruntime"}, "kind"),
    ({"command": ["x"], "index_base": True}, "index_base"),
    ({"command": ["x"], "timeout": 0}, "timeout"),
    ({"command": ["x"], "timeout": "10"}, "timeout"),
    ({"command": ["x"], "env": {"A": 1}}, "env.A"),
    ({"command": ["x"], "env": {"A": "{nope}"}}, "{nope}"),
    ({"command": ["x"], "output_subdir": "../up"}, "output_subdir"),
    ({"command": ["x"], "stage_dumps": {"audio_windowz": {"pattern": "a%d.npy"}}}, "audio_windowz"),
    ({"command": ["x"], "stage_dumps": {"mel": {"pattern": "m.bin", "format": "f32le"}}}, "stage_dumps.mel.shape"),
    ({"command": ["x"], "stage_dumps": {"mel": {"pattern": "m.bin", "format": "f16"}}}, "stage_dumps.mel.format"),
    ({"command": ["x"], "stage_dumps": {"mel": {"pattern": "m.npy", "dtype": "f4"}}}, "dtype"),
    ({"command": ["x"], "private_pack": "yes"}, "private_pack"),
    ({"command": ["x"], "private_pack": 1}, "private_pack"),
])
def test_bad_options_are_value_errors_naming_the_key(options, message):
    with pytest.raises(ValueError, match=re_escape(message)):
        SubprocessBackend("bad", options)


def re_escape(text: str) -> str:
    import re
    return re.escape(text)


def test_timing_lines_parser_skips_garbage_and_overlong_lines(tmp_path):
    from harness.backends.subprocess_port import _parse_timing_lines
    log = tmp_path / "stdout.log"
    log.write_bytes(b'{"stage": "mel", "ms": 2}\n' + b'{"stage": "mel", "ms": 1' + b" " * 100_000 + b"}\n"
                    + b'\x00\xff{"stage": "mel"}\n{"stage": "mel", "ms": true}\n{"stage": "mel", "ms": NaN}\n'
                    + b'  {"stage": "generator", "ms": 3.5}')
    assert _parse_timing_lines(log) == ({"mel": 0.002, "generator": 0.0035}, {"mel": 1, "generator": 1})


def test_preset_options():
    options = preset_options("/opt/go-port/synctalk", timeout=30)
    assert options["command"] == ["/opt/go-port/synctalk", "--sanders", "{pack}", "--audio", "{audio}",
                                  "--output", "{output}", "--frames", "{frames}"]
    assert options["output_pattern"] == "frame_%05d.jpg" and options["index_base"] == 1 and options["timeout"] == 30
    assert PORT_PRESET["command"][0] != "/opt/go-port/synctalk"  # the preset itself is untouched
    parsed = parse_options({**options, "kind": "subprocess"})
    assert parsed["timeout"] == 30.0 and parsed["stage_dumps"] == {}


def test_missing_binary_is_an_error(tmp_path):
    with pytest.raises(BackendFailed, match="does not exist"):
        SubprocessBackend("go", preset_options(str(tmp_path / "no-such-port"))).check_available()
    with pytest.raises(BackendFailed, match="not found on PATH"):
        SubprocessBackend("go", preset_options("synctalk-no-such-port-binary")).check_available()
    not_exec = tmp_path / "port"
    not_exec.write_text("#!/bin/sh\n")
    with pytest.raises(BackendFailed, match="not executable"):
        SubprocessBackend("go", preset_options(str(not_exec))).check_available()


def test_missing_binary_at_run_time_is_an_error(pack, tmp_path):
    with pytest.raises(BackendFailed):
        SubprocessBackend("go", preset_options(str(tmp_path / "gone"))).run(inputs(pack, tmp_path / "w"))


def test_peak_rss_is_the_ports_own_not_the_harnesss(pack, tmp_path):
    from harness.bench.measure import measure_external
    ballast = bytearray(500 * 1024 * 1024)  # the harness is big; the port is not
    ballast[::4096] = b"\1" * len(ballast[::4096])
    measured = measure_external(fake("copy_port.py"), inputs(pack, tmp_path / "w"), 0, N, False, "copy")
    del ballast
    assert 5 < measured["peak_rss_mb"] < 250, measured["peak_rss_mb"]
    assert measured["peak_rss_of"] == "port process (wait4)"
    from harness.bench.table import rss_text
    assert rss_text(measured).endswith(" (port)")


@pytest.mark.parametrize("mode", ["run", "stream"])
def test_a_port_that_writes_every_frame_and_then_fails_is_an_error_naming_its_exit_code(pack, tmp_path, mode):
    """crash_port writes frames 1 and 2, then exits with code 3: with 2 frames asked, every frame is there,
    and the run is still an error, never a pass."""
    backend = fake("crash_port.py")
    with pytest.raises(BackendFailed, match=r"port exited with code 3: fatal: generator.onnx: invalid protobuf"):
        run = getattr(backend, mode)(inputs(pack, tmp_path, frames=2))
        assert len(list(run.frames)) == 2
