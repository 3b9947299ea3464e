"""The command line: help, infer (and the ports' --sanders alias), fixtures, golden, demo, errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

import fixtures.locate
from harness.cli import build_parser, main


def test_help_explains_every_option(capsys):
    for command in build_parser()._subparsers._group_actions[0].choices:  # every command's help renders
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0, command
    capsys.readouterr()
    for command in ("infer", "demo", "golden", "fixtures"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--pack", "--sanders", "--dataset", "--audio", "--models", "--output", "--frames",
                   "--format", "--threads", "--dump-stages", "--force"):
        assert option in text
    for action in build_parser()._subparsers._group_actions[0].choices["infer"]._actions:
        assert action.help, f"infer {action.option_strings} has no help"


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "--help"], capture_output=True, text=True, check=True)
    assert "synctalk-parity" in out.stdout and "exit codes" in out.stdout


def test_infer_with_the_ports_cli_contract(tiny_models_dir, synthetic_pack, tmp_path, capsys):
    rc = main(["infer", "--sanders", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
               "--models", str(tiny_models_dir), "--output", str(tmp_path / "out"), "--frames", "3",
               "--format", "jpg", "--quiet", "--dump-stages", str(tmp_path / "stages")])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame_00001.jpg", "frame_00002.jpg",
                                                                     "frame_00003.jpg"]
    assert (tmp_path / "stages" / "index.json").is_file()
    assert "FPS" in capsys.readouterr().out


def test_infer_on_the_raw_dataset_layout(tiny_models_dir, synthetic_pack, tmp_path):
    rc = main(["infer", "--dataset", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
               "--models", str(tiny_models_dir), "--output", str(tmp_path), "--frames", "2", "--quiet"])
    assert rc == 0 and (tmp_path / "frame_00002.png").is_file()


@pytest.mark.parametrize("change, message", [
    ({"--audio": "missing.wav"}, "missing.wav: audio file not found"),
    ({"--models": "nowhere"}, "nowhere: no audio_encoder.onnx"),
    ({"--conventions": "resize=nearest"}, "--conventions: unknown convention"),
    ({"--frames": "0"}, "--frames must be at least 1"),
])
def test_bad_input_exits_2_with_the_path(tiny_models_dir, synthetic_pack, tmp_path, capsys, change, message):
    args = {"--pack": str(synthetic_pack), "--audio": str(synthetic_pack / "audio.wav"),
            "--models": str(tiny_models_dir), "--output": str(tmp_path / "o"), "--quiet": None}
    args.update({k: (str(tmp_path / v) if k in ("--audio", "--models") else v) for k, v in change.items()})
    argv = ["infer"] + [x for k, v in args.items() for x in ((k,) if v is None else (k, v))]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_pack_option_refuses_a_raw_dataset(shared_data, tiny_models_dir, tmp_path, capsys):
    rc = main(["infer", "--pack", str(shared_data / "sanders_dataset"), "--audio",
               str(shared_data / "audio" / "talk_hb.wav"), "--models", str(tiny_models_dir),
               "--output", str(tmp_path), "--frames", "1", "--quiet"])
    assert rc == 2 and "use --dataset" in capsys.readouterr().err


def test_fixtures_and_golden_commands(tmp_path, capsys):
    assert main(["fixtures", "models", "--out", str(tmp_path / "m"), "--size", "tiny"]) == 0
    assert main(["fixtures", "pack", "--out", str(tmp_path / "p"), "--frames", "4"]) == 0
    assert len(list((tmp_path / "p" / "full_body_img").iterdir())) == 4
    golden = ["golden", "--pack", str(tmp_path / "p"), "--audio", str(tmp_path / "p" / "audio.wav"),
              "--models", str(tmp_path / "m"), "--frames", "2", "--out", str(tmp_path / "g")]
    assert main(golden) == 0
    assert main(golden) == 2
    assert "--force" in capsys.readouterr().err
    assert main(golden + ["--force"]) == 0


def test_demo_without_real_data_uses_a_synthetic_pack(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fixtures.locate, "shared_data_dir", lambda: None)
    assert main(["demo", "--size", "tiny", "--frames", "4", "--parity-frames", "3",
                 "--output", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "synthetic pack" in out and "bare generator" in out and "FPS" in out
    assert "the fastest of every way" in out and "every way: 1 session x " in out  # which way the baseline was
    for backend in ("ort_cpu", "openvino", "fp16"):
        assert f"{backend} " in out
    assert (tmp_path / "demo" / "parity" / "results.json").is_file()
    assert (tmp_path / "demo" / "report" / "index.html").is_file() and "report  ->" in out
    assert len(list((tmp_path / "demo" / "frames").iterdir())) == 4
    models = list((tmp_path / "cache").glob("models-tiny-*"))
    assert len(models) == 1  # cached: a second demo builds nothing
    stamp = (models[0] / "generator.onnx").stat().st_mtime_ns
    assert main(["demo", "--size", "tiny", "--frames", "2", "--parity-frames", "0",
                 "--output", str(tmp_path / "demo")]) == 0
    assert (models[0] / "generator.onnx").stat().st_mtime_ns == stamp


def test_infer_png_level_is_fast_or_a_zlib_level(capsys):
    common = ["infer", "--pack", "p", "--audio", "a.wav", "--models", "m", "--output", "o"]
    assert build_parser().parse_args(common).png_level == "fast"
    assert build_parser().parse_args([*common, "--png-level", "fast"]).png_level == "fast"
    assert build_parser().parse_args([*common, "--png-level", "0"]).png_level == 0
    assert build_parser().parse_args([*common, "--png-level", "9"]).png_level == 9
    for bad in ("10", "-1", "faster"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*common, "--png-level", bad])
        assert f"'{bad}' is not a PNG level: use fast or 0-9" in capsys.readouterr().err


def test_demo_uses_the_sanders_pack_when_present(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "--size", "tiny", "--frames", "3", "--parity-frames", "0",
                 "--output", str(tmp_path / "demo")]) == 0
    assert "Sanders pack" in capsys.readouterr().out


def test_explain_layers_names_the_corrupted_conv(tiny_models_dir, synthetic_pack, tmp_path, capsys):
    import numpy as np
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(tiny_models_dir / "generator.onnx"))
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    target = convs[len(convs) // 2]
    weights = {t.name: t for t in model.graph.initializer}
    tensor = weights[target.input[1]]
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * np.float32(1.05), tensor.name))
    onnx.save(model, str(tmp_path / "generator.onnx"))
    common = ["explain-layers", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
              "--models", str(tiny_models_dir), "--frame", "2"]
    assert main([*common, "--candidate", str(tmp_path / "generator.onnx")]) == 0
    assert f"first divergent layer: {target.name} (Conv" in capsys.readouterr().out
    assert main([*common, "--candidate", "onnxruntime:CPUExecutionProvider", "--tolerance", "1e-6"]) == 0
    assert "no layer leaves the tolerance" in capsys.readouterr().out


def test_the_core_ml_commands_name_their_handlers():
    from harness.convert.cli import audit_model, convert_coreml
    parser = build_parser()
    assert parser.parse_args(["audit-model", "a.mlpackage", "--against", "g.onnx"]).handler is audit_model
    args = parser.parse_args(["convert", "coreml", "--models", "m", "--out", "o", "--quiet"])
    assert args.handler is convert_coreml and (args.command, args.target, args.precision) == ("convert", "coreml", "fp16")
