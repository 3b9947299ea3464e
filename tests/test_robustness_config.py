"""Bad parity configs: unknown keys, wrong types, missing files, output folders that escape -> exit 2
with a message naming the config and the key (issue 8)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.runs.config import ConfigError, load_config

DATA = """[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav", "silence"]
frames = 2
"""
RUN = """[run]
output = "out"
"""
BACKEND = """[backends.a]
kind = "fp16"
"""


def config(folder: Path, pack: Path, models: Path, text: str) -> Path:
    """`text` with {data}, {run} and {backend} standing for the valid sections."""
    path = folder / "parity.toml"
    sections = {"data": DATA.format(pack=pack, models=models), "run": RUN, "backend": BACKEND}
    path.write_text(text.format(**sections))
    return path


def run_fails(path: Path, capsys, *fragments: str, command: str = "run") -> str:
    """`synctalk-parity <command> --config path` exits 2 printing the config's path and every fragment."""
    assert main([command, "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}: " in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


CASES = {
    # unknown keys
    "unknown_section": ("{data}{run}{backend}[extra]\n", "unknown section [extra]"),
    "unknown_data_key": ("{data}fps = 25\n{run}{backend}", "unknown key [data].fps; allowed: audio, dataset"),
    "unknown_run_key": ("{data}{run}outptu = 'x'\n{backend}", "unknown key [run].outptu"),
    "unknown_backend_option": ("{data}{run}{backend}thread = 2\n", "[backends.a]: backend 'a': unknown option 'thread'"),
    "unknown_backend_kind": ("{data}{run}[backends.a]\nkind = 'tensorflow'\n", "unknown kind 'tensorflow'"),
    "unknown_threshold": ("{data}{run}{backend}thresholds = {{ psnr = 3 }}\n", "unknown threshold 'psnr'"),
    "unknown_port_option": ("{data}{run}[backends.p]\nkind = 'subprocess'\ncommand = ['x']\noutput_patern = 'f%d.png'\n",
                            "[backends.p]: unknown option 'output_patern'"),
    # wrong types
    "data_not_a_table": ("data = 5\n{run}{backend}", "[data] must be a table, got 5"),
    "output_number": ("{data}[run]\noutput = 5\n{backend}", "[run].output must be str, got 5"),
    "explain_string": ("{data}{run}explain = 'yes'\n{backend}", "[run].explain must be bool, got 'yes'"),
    "backends_not_tables": ("backends = 5\n{data}{run}", "[backends] needs at least one backend table"),
    "backend_not_a_table": ("{data}{run}[backends]\na = 5\n", "[backends.a] must be a table"),
    "thresholds_not_a_table": ("{data}{run}{backend}thresholds = 5\n", "[backends.a].thresholds must be a table, got 5"),
    "threshold_string": ("{data}{run}{backend}thresholds = {{ psnr_min = 'high' }}\n",
                         "threshold psnr_min must be a number, got 'high'"),
    "threshold_profile_number": ("{data}{run}{backend}thresholds = {{ profile = 3 }}\n",
                                 "thresholds.profile must be a string, got 3"),
    "port_command_string": ("{data}{run}[backends.p]\nkind = 'subprocess'\ncommand = 'port --sanders {{pack}}'\n",
                            "[backends.p]: command: must be a non-empty list of strings (an argv, not a shell string)"),
    "port_timeout_string": ("{data}{run}[backends.p]\nkind = 'subprocess'\ncommand = ['x']\ntimeout = '10'\n",
                            "[backends.p]: timeout: must be a positive number"),
    # wrong values
    "unknown_profile": ("{data}[run]\nprofile = 'loose'\n{backend}", "[run].profile: unknown tolerance profile 'loose'"),
    "unknown_placeholder": ("{data}{run}[backends.p]\nkind = 'subprocess'\ncommand = ['x', '{{pakc}}']\n",
                            "command: unknown placeholder '{pakc}'"),
    "output_subdir_escapes": ("{data}{run}[backends.p]\nkind = 'subprocess'\ncommand = ['x']\noutput_subdir = '../up'\n",
                              "output_subdir: must be a relative folder inside the output folder"),
    # missing files
    "not_toml": ("{data}{run}{backend}[[[", "not valid TOML"),
}
# One line of the valid config replaced: (line, replacement, expected fragment).
LINES = {
    "synthetic_size": ('models = "{models}"', 'models = "synthetic:huge"',
                       "[data].models = 'synthetic:huge'; use a folder, synthetic:full or synthetic:tiny"),
    "only_silence": ('audio = ["{pack}/audio.wav", "silence"]', 'audio = ["silence"]',
                     "[data].audio needs at least one audio file besides silence"),
    "pack_missing": ('pack = "{pack}"', 'pack = "/nonexistent/pack"',
                     "[data].pack = '/nonexistent/pack': /nonexistent/pack does not exist"),
    "models_missing": ('models = "{models}"', 'models = "no_models"', "[data].models = 'no_models': "),
    "audio_missing": ('audio = ["{pack}/audio.wav", "silence"]', 'audio = ["nowhere.wav"]',
                      "[data].audio[0] = 'nowhere.wav': "),
    "audio_nul": ('audio = ["{pack}/audio.wav", "silence"]', 'audio = ["a\\u0000b.wav"]',
                  "[data].audio[0] = 'a\\x00b.wav': "),
    "frames_string": ("frames = 2", "frames = 'two'", "[data].frames must be int, got 'two'"),
    "frames_bool": ("frames = 2", "frames = true", "[data].frames must be int, got True"),
    "frames_zero": ("frames = 2", "frames = 0", "[data].frames must be at least 1, got 0"),
    "audio_string": ('audio = ["{pack}/audio.wav", "silence"]', 'audio = "x.wav"', "[data].audio must be list"),
    "audio_item_number": ('audio = ["{pack}/audio.wav", "silence"]', 'audio = [5]',
                          "[data].audio[0] must be a path string, got 5"),
    "pack_and_dataset": ('pack = "{pack}"', 'pack = "{pack}"\ndataset = "{pack}"',
                         "[data] needs exactly one of pack = ... or dataset = ..."),
    "pack_is_a_file": ('pack = "{pack}"', 'pack = "{pack}/audio.wav"', "[data].pack: "),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_exits_2_naming_the_key(tmp_path, synthetic_pack, tiny_models_dir, capsys, case):
    text, fragment = CASES[case]
    path = config(tmp_path, synthetic_pack, tiny_models_dir, text)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(path)
    run_fails(path, capsys, fragment)


@pytest.mark.parametrize("case", list(LINES))
def test_bad_value_or_missing_file_exits_2_naming_the_key(tmp_path, synthetic_pack, tiny_models_dir, capsys, case):
    old, new, fragment = LINES[case]
    path = config(tmp_path, synthetic_pack, tiny_models_dir, "{data}{run}{backend}")
    values = {"pack": synthetic_pack, "models": tiny_models_dir}
    text = path.read_text()
    assert old.format(**values) in text
    path.write_text(text.replace(old.format(**values), new.format(**values)))
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(path)
    run_fails(path, capsys, fragment)


def test_missing_unreadable_and_binary_config_files(tmp_path, capsys):
    run_fails(tmp_path / "absent.toml", capsys, "config file not found")
    (tmp_path / "folder.toml").mkdir()
    run_fails(tmp_path / "folder.toml", capsys, "cannot read the config file")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00\x01" * 10)
    run_fails(tmp_path / "binary.toml", capsys, "cannot read the config file")


def test_unknown_backend_name_on_the_command_line(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    path = config(tmp_path, synthetic_pack, tiny_models_dir, "{data}{run}{backend}")
    assert main(["run", "--config", str(path), "--backend", "nope", "--quiet"]) == 2
    assert "no backend named nope; have a" in capsys.readouterr().err


def test_bad_bench_section_exits_2(tmp_path, synthetic_pack, tiny_models_dir, capsys):
    path = config(tmp_path, synthetic_pack, tiny_models_dir, "{data}{run}{backend}[bench]\nwarmpu = 2\n")
    run_fails(path, capsys, "unknown key [bench].warmpu", command="bench")


# --------------------------------------------------------------------------- the output folder cannot escape

@pytest.fixture
def places(tmp_path, monkeypatch) -> tuple[Path, Path, Path]:
    """(working directory, config folder, a folder outside both); the test runs in the first."""
    cwd, cfg, outside = tmp_path / "cwd", tmp_path / "cfg", tmp_path / "outside"
    for folder in (cwd, cfg, outside):
        folder.mkdir()
    monkeypatch.chdir(cwd)
    return cwd, cfg, outside


@pytest.mark.parametrize("output", ["../outside/run", "{outside}/run", "{outside}", "/", "link/run", "~/../../"])
def test_output_outside_the_working_and_config_folders_is_refused(places, synthetic_pack, tiny_models_dir, capsys,
                                                                  output):
    cwd, cfg, outside = places
    (cwd / "link").symlink_to(outside)
    output = output.format(outside=outside)
    path = config(cfg, synthetic_pack, tiny_models_dir, "{data}[run]\noutput = '" + output + "'\n{backend}")
    run_fails(path, capsys, f"[run].output = {output!r} resolves to", "outside the working directory",
              "or pass --output")
    assert list(outside.iterdir()) == [] and not (cwd / "link" / "run").exists()


@pytest.mark.parametrize("output, where", [("out/run", "cwd"), ("{cfg}/out", "cfg"), (".", "cwd")])
def test_output_below_the_working_or_config_folder_is_accepted(places, synthetic_pack, tiny_models_dir, output,
                                                               where):
    cwd, cfg, _ = places
    output = output.format(cfg=cfg)
    path = config(cfg, synthetic_pack, tiny_models_dir, "{data}[run]\noutput = '" + output + "'\n{backend}")
    loaded = load_config(path)
    base = cwd if where == "cwd" else cfg
    assert loaded.output == (base / output).resolve() if where == "cwd" else loaded.output == Path(output)
