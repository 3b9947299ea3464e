"""The `frames` backend: a folder of frames made elsewhere, judged like any backend."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from harness.backends.frames_dir import FramesBackend
from harness.cli import main
from harness.runs.config import ConfigError, load_config
from harness.runs.parity import silence_wav
from harness.verdicts.results import read_results
from reference.data import open_source
from reference.infer import infer
from reference.models import ModelFiles, Models

pytestmark = pytest.mark.long

FAKE_PORTS = Path(__file__).parent / "fake_ports"
FRAMES = 6
STAGES = ("mel", "embeddings", "audio_windows")  # what the defect port dumps

CONFIG = """
[data]
pack = "{pack}"
models = "{models}"
audio = [{audio}]
frames = {frames}
[run]
output = "{out}"
"""


def write_config(tmp_path: Path, pack: Path, models: Path, backends: str, audio: str = '"{pack}/audio.wav"',
                 frames: int = FRAMES) -> Path:
    path = tmp_path / "parity.toml"
    text = CONFIG.format(pack=pack, models=models, out=tmp_path / "out", frames=frames,
                         audio=audio.format(pack=pack)) + backends
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def made_elsewhere(tmp_path_factory, synthetic_pack, tiny_models_dir) -> Path:
    """The reference's frames of the pack's audio and of the run's silence, one folder per audio, as
    `frames/{audio}/frame_00001.png` (made "elsewhere")."""
    root = tmp_path_factory.mktemp("elsewhere")
    models = Models(ModelFiles.from_dir(tiny_models_dir), threads=1)
    source = open_source(synthetic_pack)
    silence = silence_wav(root / "audio", FRAMES)
    for name, audio in (("audio", synthetic_pack / "audio.wav"), ("silence", silence)):
        infer(source, audio, models, root / "frames" / name, FRAMES, progress=False)
    return root


def test_options_are_checked():
    with pytest.raises(ValueError, match="dir: the folder of frames is required"):
        FramesBackend("f", {"kind": "frames"})
    with pytest.raises(ValueError, match="unknown option 'output_pattern'"):
        FramesBackend("f", {"dir": "x", "output_pattern": "f_%d.png"})
    with pytest.raises(ValueError, match="unknown placeholder '{output}'"):
        FramesBackend("f", {"dir": "{output}/x"})
    with pytest.raises(ValueError, match="needs one integer conversion"):
        FramesBackend("f", {"dir": "x", "pattern": "frame.png"})
    with pytest.raises(ValueError, match="index_base: must be 0 or 1"):
        FramesBackend("f", {"dir": "x", "index_base": 2})


def test_one_folder_for_several_audios_is_a_config_error(tmp_path, synthetic_pack, tiny_models_dir):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.mac]\nkind = "frames"\ndir = "frames"\n',
                        audio='"{pack}/audio.wav", "silence"')
    with pytest.raises(ConfigError, match=r"no \{audio\}, so the same frames would be judged against each of the 2"):
        load_config(path)


def test_a_folder_per_audio_passes_and_misses_no_frame(tmp_path, synthetic_pack, tiny_models_dir, made_elsewhere,
                                                       capsys):
    shutil.copytree(made_elsewhere / "frames", tmp_path / "frames")  # relative to the config
    backends = '[backends.mac]\nkind = "frames"\ndir = "frames/{audio}"\npattern = "frame_%05d.png"\n'
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, backends, audio='"{pack}/audio.wav", "silence"')
    assert main(["run", "--config", str(path), "--quiet"]) == 0, capsys.readouterr().out
    runs = read_results(tmp_path / "out" / "results.json")["runs"]
    assert [(r["audio"], r["status"], r["frames"]) for r in runs] == [
        ("audio.wav", "passed", FRAMES), (runs[1]["audio"], "passed", FRAMES)]
    assert runs[1]["info"]["dir"].endswith("frames/silence") and runs[0]["timings"].get("fps") is None
    assert not runs[0]["diagnosis"]["audio_dependence"]["ignores_input_audio"]


def test_missing_frames_fail_the_run_and_are_found(tmp_path, synthetic_pack, tiny_models_dir, made_elsewhere, capsys):
    folder = tmp_path / "frames"
    shutil.copytree(made_elsewhere / "frames" / "audio", folder)
    for k in (3, 5):
        (folder / f"frame_{k:05d}.png").unlink()
    backends = f'[backends.phone]\nkind = "frames"\ndir = "{folder}"\npattern = "frame_%05d.png"\n'
    assert main(["run", "--config", str(write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)),
                 "--quiet"]) == 1
    out = capsys.readouterr().out
    run = read_results(tmp_path / "out" / "results.json")["runs"][0]
    assert run["status"] == "failed" and run["frames"] == FRAMES - 2 and run["missing_frames"] == [3, 5]
    assert run["failures"][0] == f"2 of {FRAMES} frames missing: frames 3, 5"
    assert run["findings"][0]["kind"] == "missing_frames" and run["findings"][0]["missing"] == 2
    assert "phone / audio.wav: finding: missing_frames: 2 of 6 frames missing from the candidate (3, 5)" in out


def test_an_absent_folder_is_an_error_naming_it(tmp_path, synthetic_pack, tiny_models_dir):
    backends = '[backends.phone]\nkind = "frames"\ndir = "nowhere/{audio}"\n'
    assert main(["run", "--config", str(write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)),
                 "--quiet", "--no-explain"]) == 3
    run = read_results(tmp_path / "out" / "results.json")["runs"][0]
    assert run["status"] == "error" and "nowhere/audio does not exist ({audio} = 'audio')" in run["reason"]


def _defect_port(dumps: str) -> str:
    command = ", ".join(f'"{a}"' for a in [sys.executable, str(FAKE_PORTS / "defect_port.py"), "--sanders", "{pack}",
                                           "--audio", "{audio}", "--models", "{models}", "--output", "{output}",
                                           "--frames", "{frames}", "--conventions", "channel_order=rgb,audio_window=tile",
                                           "--dump-stages", dumps])
    return f'[backends.port]\nkind = "subprocess"\ncommand = [{command}]\noutput_pattern = "frame_%05d.png"\n'


def test_a_folder_of_a_buggy_ports_frames_gets_the_ports_bill(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    """The port run as a subprocess, then its output folder (frames and the audio windows it dumped, found
    by name) brought back as a frames backend: explain gives the same bill and the same findings."""
    ran = tmp_path / "ran"
    ran.mkdir()
    port = _defect_port("{output}/stage_dumps") + "".join(
        f'[backends.port.stage_dumps.{stage}]\npattern = "{{output}}/stage_dumps/{stage}.npy"\n' for stage in STAGES)
    assert main(["explain", str(write_config(ran, synthetic_pack, tiny_models_dir, port)), "--quiet"]) == 1
    brought = tmp_path / "brought"
    shutil.copytree(ran / "out" / "work" / "audio" / "port" / "output", brought / "from-mac")
    folder = '[backends.port]\nkind = "frames"\ndir = "from-mac"\npattern = "frame_%05d.png"\n'
    assert main(["explain", str(write_config(brought, synthetic_pack, tiny_models_dir, folder)), "--quiet"]) == 1
    out = capsys.readouterr().out
    subprocess_run = read_results(ran / "out" / "results.json")["runs"][0]
    frames_run = read_results(brought / "out" / "results.json")["runs"][0]
    assert frames_run["info"]["stage_dumps"] == {stage: str(brought / "from-mac" / "stage_dumps" / f"{stage}.npy")
                                                 for stage in STAGES}
    bills = [r["diagnosis"]["conventions"] for r in (subprocess_run, frames_run)]
    assert bills[0]["fitted"] == bills[1]["fitted"] == "reference[audio_window=tile,input_channels=rgb,output_channels=rgb]"
    assert bills[0]["deviations"] == bills[1]["deviations"] and bills[0]["prefit"]["audio"] == bills[1]["prefit"]["audio"]
    assert [f["kind"] for f in subprocess_run["findings"]] == [f["kind"] for f in frames_run["findings"]]
    assert subprocess_run["diagnosis"]["stages"]["first_stage"] == frames_run["diagnosis"]["stages"]["first_stage"]
    assert "deviation 1: audio_window=tile (canonical window)" in out


def test_a_failing_evidence_is_an_error_of_the_run_and_the_diagnosis_still_runs(tmp_path, synthetic_pack,
                                                                                 tiny_models_dir, made_elsewhere,
                                                                                 monkeypatch):
    import harness.runs.parity

    def broken(*args, **kwargs):
        raise RuntimeError("evidence broke")
    monkeypatch.setattr(harness.runs.parity, "run_findings", broken)
    folder = tmp_path / "frames"
    shutil.copytree(made_elsewhere / "frames" / "audio", folder)
    (folder / "frame_00002.png").unlink()
    backends = f'[backends.phone]\nkind = "frames"\ndir = "{folder}"\npattern = "frame_%05d.png"\n'
    assert main(["run", "--config", str(write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)),
                 "--quiet"]) == 3
    run = read_results(tmp_path / "out" / "results.json")["runs"][0]
    assert run["status"] == "failed" and run["errors"] == ["evidence: RuntimeError: evidence broke"]
    assert "findings" not in run and run["diagnosis"]["conventions"]["fitted"]


def test_a_truncated_jpeg_is_an_error_naming_it_not_a_failed_verdict(tmp_path, synthetic_pack, tiny_models_dir,
                                                                     made_elsewhere, capsys):
    """OpenCV decodes a truncated JPEG with grey fill: read so, the frame failed at a low PSNR and the evidence
    then broke on it. Every reader refuses it, naming the file, as `compare` does."""
    import cv2
    folder = tmp_path / "frames"
    folder.mkdir()
    for path in sorted((made_elsewhere / "frames" / "audio").glob("frame_*.png")):
        cv2.imwrite(str(folder / f"{path.stem}.jpg"), cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    cut = folder / "frame_00003.jpg"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    backends = f'[backends.phone]\nkind = "frames"\ndir = "{folder}"\n'
    assert main(["run", "--config", str(write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)),
                 "--quiet"]) == 3
    run = read_results(tmp_path / "out" / "results.json")["runs"][0]
    assert run["status"] == "error", run.get("failures")
    assert "output frame frame_00003.jpg could not be read as an image: truncated or corrupt JPEG" in run["reason"]
    assert str(cut) in run["reason"]
    capsys.readouterr()
    assert main(["compare", str(made_elsewhere / "frames" / "audio"), str(folder)]) == 2
    assert f"{cut}: output frame frame_00003.jpg could not be read as an image: truncated" in capsys.readouterr().err


def test_a_folder_numbered_from_zero_is_read_whole_with_index_base_0(tmp_path, synthetic_pack, tiny_models_dir,
                                                                     made_elsewhere, capsys):
    """frame_00000.png is frame 0: every frame is there and each is paired with its own reference frame (read
    from 1, frame 0 would be judged against the reference's frame 1, and the last frame would be missing)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(1, FRAMES + 1):
        shutil.copy(made_elsewhere / "frames" / "audio" / f"frame_{k:05d}.png", folder / f"frame_{k - 1:05d}.png")
    backends = f'[backends.phone]\nkind = "frames"\ndir = "{folder}"\npattern = "frame_%05d.png"\nindex_base = 0\n'
    assert main(["run", "--config", str(write_config(tmp_path, synthetic_pack, tiny_models_dir, backends)),
                 "--quiet"]) == 0, capsys.readouterr().out
    run = read_results(tmp_path / "out" / "results.json")["runs"][0]
    assert (run["status"], run["frames"], run["info"]["missing_frames"]) == ("passed", FRAMES, [])
    assert run["info"]["frames_in_folder"] == FRAMES and run["info"]["frame_files"]["index_base"] == 0
    assert run["summary"]["full"]["identical_pct"]["min"] == 100.0, run["summary"]["full"]
