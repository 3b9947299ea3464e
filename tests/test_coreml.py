"""Core ML conversions on this machine: `convert coreml` of the tiny synthetic models, the audit of the
faithful fp16 and fp32 packages, each planted defect named alone, the real compiled encoder audited for
structure and precision, ONNX candidates, bad input, and the `coreml` backend (prediction: macOS only)."""
from __future__ import annotations

import json
import platform
import re
import shutil
from pathlib import Path

import coreml_defects as defects
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from harness.backends.base import BackendFailed, BackendUnavailable, RunInputs
from harness.backends.coreml_backend import CoreMLBackend
from harness.backends.reference import ReferenceBackend
from harness.backends.registry import make_backend
from harness.cli import main
from harness.convert.audit import audit
from harness.coreml.package import PACKAGES, source_sha256
from harness.coreml.read import read_model
from harness.plugin import PLATFORM_SKIP
from reference.models import ModelFiles
from reference.precision import converted_files
from reference.provenance import model_sha256

EXAMPLE = Path("coreml_example") / "AudioEncoder.mlmodelc"


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tiny_models_dir) -> dict[str, Path]:
    """fp16 and fp32 packages of the tiny models, written by the `convert coreml` command."""
    out = {}
    for precision in ("fp16", "fp32"):
        folder = tmp_path_factory.mktemp(f"coreml-{precision}")
        assert main(["convert", "coreml", "--models", str(tiny_models_dir), "--out", str(folder),
                     "--precision", precision, "--no-cost"]) == 0
        out[precision] = folder
    return out


@pytest.fixture(scope="module")
def sources(tiny_models_dir):
    files = ModelFiles.from_dir(tiny_models_dir)
    return {"AudioEncoder.mlpackage": read_model(files.encoder), "Generator.mlpackage": read_model(files.generator)}


def failing(result) -> list:
    return [d for d in result.differences if d.fails]


def test_convert_places_both_audited_packages_with_their_provenance(converted, tiny_models_dir):
    files = ModelFiles.from_dir(tiny_models_dir)
    for precision, folder in converted.items():
        document = json.loads((folder / "conversion.json").read_text())
        assert document["precision"] == precision
        for role, source in (("audio encoder", files.encoder), ("generator", files.generator)):
            entry = document["models"][role]
            assert entry["source_sha256"] == model_sha256(source) and entry["audit"]["faithful"] is True
            assert source_sha256(folder / PACKAGES[role]) == model_sha256(source)
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_faithful_conversions_pass_with_their_precision(converted, tiny_models_dir, precision, tmp_path, capsys):
    report = tmp_path / "audit.json"
    rc = main(["audit-model", str(converted[precision] / "Generator.mlpackage"),
               "--against", str(tiny_models_dir / "generator.onnx"), "--json", str(report)]
              + ([] if precision == "fp16" else ["--no-cost"]))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"verdict: FAITHFUL up to {precision} precision" in out
    document = json.loads(report.read_text())
    assert document["faithful"] and document["precision"] == precision
    assert {tuple(t["shape"]) for t in document["candidate"]["inputs"]} == {(1, 6, 320, 320), (1, 32, 16, 16)}
    weights = document["weights"]
    assert len(weights) == len(read_model(tiny_models_dir / "generator.onnx").weights)
    assert all(w["status"] == "match" for w in weights)
    if precision == "fp32":
        assert max(w["max_abs"] for w in weights) == 0  # the source's values bit for bit
    else:
        assert 0 < max(w["max_abs"] for w in weights) and all(w["max_abs"] <= w["allowed"] for w in weights)
        assert set(document["candidate"]["dtype_counts"]["float16"]) >= {"conv", "relu", "resample"}
        cost = document["predicted_cost"]
        assert cost["converted"] == "generator" and cost["frames"] == 4
        assert 30 < cost["face_psnr_min"] < 200 and cost["embeddings_max_abs"] == 0  # fp16 generator only
        assert re.search(r"predicted parity cost of fp16 \(generator\): worst PSNR [0-9.]+ dB full frame", out)


PLANTED = {
    "random encoder": ("AudioEncoder.mlpackage", defects.randomise_weights, (), "weights",
                       "the weights look random/untrained"),
    "scaled conv": ("Generator.mlpackage", defects.scale_conv_weight, (10, 1.1), "weights",
                    "scaled: /down2/maxpool_conv/maxpool_conv.0/double_conv.0/conv.3.weight (8, 1, 3, 3)"),
    "renamed input": ("Generator.mlpackage", defects.rename_input, ("audio", "audio_features"), "io",
                      "input 'audio' of the source is named 'audio_features' in the candidate"),
    "align_corners flipped": ("Generator.mlpackage", defects.flip_align_corners, (2,), "resampling",
                              "resample 3 (/up3/up/Resize): bilinear half_pixel, x2x2 in the candidate, "
                              "bilinear align_corners, x2x2 in the source (coordinates differ)"),
    "dropped relu": ("Generator.mlpackage", defects.drop_relu, (20,), "ops",
                     "dropped: Relu /down5/maxpool_conv/maxpool_conv.0/double_conv.1/conv.2/Relu"),
}


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
@pytest.mark.parametrize("defect", list(PLANTED))
def test_each_planted_defect_is_named_alone(converted, sources, tmp_path, defect, precision):
    package, plant, args, section, phrase = PLANTED[defect]
    candidate = defects.copy_package(converted[precision] / package, tmp_path / package)
    plant(candidate, *args)
    result = audit(read_model(candidate), sources[package])
    found = failing(result)
    assert not result.faithful
    assert {f.section for f in found} == {section}, [f.text for f in found]
    assert any(phrase in f.text for f in found), [f.text for f in found]
    if defect == "scaled conv":
        assert len(found) == 1 and "scaled by 1.1 " in found[0].text
    if defect == "dropped relu":
        assert [f.text.split(" (")[0] for f in found] == ["Relu/relu: 61 in the candidate, 62 in the source",
                                                           phrase]
    if defect == "random encoder":
        statuses = {p.status for p in result.weights}
        assert "random" in statuses and "match" not in statuses


def test_a_planted_defect_is_exit_1_on_the_command_line(converted, tiny_models_dir, tmp_path, capsys):
    candidate = defects.copy_package(converted["fp16"] / "Generator.mlpackage", tmp_path / "Generator.mlpackage")
    defects.rename_input(candidate, "input", "image")
    assert main(["audit-model", str(candidate), "--against", str(tiny_models_dir / "generator.onnx")]) == 1
    out = capsys.readouterr().out
    assert "! input 'input' of the source is named 'image' in the candidate" in out
    assert "verdict: NOT FAITHFUL: inputs/outputs differ" in out


@pytest.fixture(scope="module")
def full_encoder(tmp_path_factory) -> Path:
    from fixtures.models import build_models
    out = tmp_path_factory.mktemp("full-models")
    return build_models(out, "full", seed=0)["audio_encoder"]


def test_compiled_example_without_weights_is_audited_for_structure_and_precision(shared_data, full_encoder, capsys):
    example = shared_data / EXAMPLE
    result = audit(read_model(example), read_model(full_encoder))
    assert "weights/weight.bin not found" in result.candidate.weights_absent
    assert {f.section for f in failing(result)} == {"io", "weights"}
    texts = [f.text for f in failing(result)]
    assert "input 'mel' of the source is named 'mel_spectrogram' in the candidate" in texts
    assert "output 'emb' of the source is named 'var_242' in the candidate" in texts
    assert result.candidate.storage() == {"float32": 26} and result.precision == "fp32"
    assert [w.shape for w in result.candidate.weights] == [w.shape for w in result.source.weights]
    assert {p.status for p in result.weights} == {"unread"}
    # the convs' geometry (strides (3, 1), (3, 3), (3, 2) ...) is the source's; one squeeze more is a note
    assert [op.params for op in result.candidate.ops if op.kind == "conv"] == \
           [op.params for op in result.source.ops if op.kind == "conv"]
    assert main(["audit-model", str(example), "--against", str(full_encoder), "--structure-only"]) == 1
    out = capsys.readouterr().out
    assert "note: Squeeze/squeeze: 2 in the candidate, 1 in the source" in out
    assert "note: weights absent" in out and "verdict: NOT FAITHFUL: inputs/outputs differ" in out


def _write_blobs(path: Path, tensors: list[np.ndarray]) -> list[int]:
    """A weight.bin written by coremltools' own blob writer (an independent writer), fp32 in order."""
    from harness.coreml.quiet import coremltools
    coremltools()
    from coremltools.libmilstoragepython import _BlobStorageWriter
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _BlobStorageWriter(str(path))
    offsets = [writer.write_float_data(np.ascontiguousarray(t, np.float32).ravel()) for t in tensors]
    del writer
    return offsets


@pytest.mark.parametrize("source_of", ["synthetic", "legacy", "dynamo"])
def test_compiled_model_weights_are_read_and_compared(shared_data, full_encoder, tmp_path, source_of):
    """The example's missing weight.bin rebuilt from an encoder of the same architecture (the synthetic
    one, and both PyTorch exports of torch_export/): every tensor then matches; a random tensor among
    them is named."""
    folder = Path(shutil.copytree(shared_data / EXAMPLE, tmp_path / "AudioEncoder.mlmodelc"))
    folder.chmod(0o755)
    encoder = full_encoder if source_of == "synthetic" else shared_data / "torch_export" / source_of / "audio_encoder.onnx"
    source = read_model(encoder)
    tensors = [w.values for w in source.weights]
    offsets = _write_blobs(folder / "weights" / "weight.bin", tensors)
    declared = [int(m) for m in re.findall(r"offset = tensor<uint64, \[\]>\((\d+)\)", (folder / "model.mil").read_text())]
    assert offsets == declared
    result = audit(read_model(folder), source)
    assert [p.status for p in result.weights] == ["match"] * 26
    assert {f.section for f in failing(result)} == {"io"}  # the names only
    bad = source.weights[12]
    tensors[12] = np.random.default_rng(1).standard_normal(tensors[12].shape).astype(np.float32) * tensors[12].std()
    (folder / "weights" / "weight.bin").unlink()
    _write_blobs(folder / "weights" / "weight.bin", tensors)
    found = [f.text for f in failing(audit(read_model(folder), source)) if f.section == "weights"]
    assert len(found) == 1 and found[0].startswith(f"random/untrained: {bad.name} (128, 64, 3, 3) ({bad.op}) "
                                                   "= candidate const_12: unrelated to the source"), found


def _with_initializer(model: onnx.ModelProto, name: str, array: np.ndarray) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for k, init in enumerate(copy.graph.initializer):
        if init.name == name:
            copy.graph.initializer[k].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))
    return copy


def test_onnx_candidates_fp16_copy_and_a_transposed_weight(tiny_models_dir, tmp_path):
    files = ModelFiles.from_dir(tiny_models_dir)
    half = audit(read_model(converted_files(files, "fp16").generator), read_model(files.generator), "fp16")
    assert half.faithful and half.precision == "fp16"
    model = onnx.load(str(files.generator))
    name = "/inc/inconv/inconv.0/conv.0.weight"  # (12, 6, 1, 1)
    weight = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == name))
    path = tmp_path / "generator.onnx"
    path.write_bytes(_with_initializer(model, name, weight.transpose(1, 0, 2, 3)).SerializeToString())
    found = failing(audit(read_model(path), read_model(files.generator)))
    assert [f.text for f in found] == [f"transposed: {name} (12, 6, 1, 1) (/inc/inconv/inconv.0/conv.0/Conv): "
                                       "axes permuted (1, 0, 2, 3)"]


def _tiny_graph(op: str, **attrs) -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
             helper.make_node(op, ["c"], ["y"], name="odd", **attrs)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
                              [numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_the_translator_refuses_an_op_it_does_not_know_by_name(tiny_models_dir, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    onnx.save(_tiny_graph("Tanh"), str(tmp_path / "odd.onnx"))
    from harness.coreml.translate import translate
    from reference.errors import InputError
    with pytest.raises(InputError, match=r"node odd \(Tanh\): not an op the translator supports"):
        translate(tmp_path / "odd.onnx")
    resize = onnx.load(str(models / "generator.onnx"))
    node = next(n for n in resize.graph.node if n.op_type == "Resize")
    next(a for a in node.attribute if a.name == "mode").s = b"cubic"
    onnx.save(resize, str(models / "generator.onnx"))
    assert main(["convert", "coreml", "--models", str(models), "--out", str(tmp_path / "out"), "--no-cost"]) == 2
    err = capsys.readouterr().err
    assert "/up1/up/Resize (Resize): mode cubic with coordinate_transformation_mode align_corners" in err
    assert not (tmp_path / "out" / "Generator.mlpackage").exists()


def test_an_op_translated_twice_is_refused_when_registered():
    from harness.coreml.translate import TRANSLATIONS, translates
    assert list(TRANSLATIONS) == ["Conv", "Relu", "Sigmoid", "Add", "Concat", "Resize", "Mul", "Sub", "Div", "Pad",
                                  "Reshape", "Transpose", "BatchNormalization", "Squeeze", "Constant", "Identity"]
    with pytest.raises(ValueError, match="ONNX op 'Relu' is translated twice"):
        translates("Relu")(lambda translator, node, attrs, name: None)
    assert TRANSLATIONS["Relu"].__name__ == "_relu"


def test_bad_candidates_are_exit_2_naming_the_file(converted, tiny_models_dir, tmp_path, capsys):
    against = str(tiny_models_dir / "generator.onnx")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.mlpackage").mkdir()
    (tmp_path / "junk.mlmodel").write_bytes(b"\x00garbage" * 10)
    cut = defects.copy_package(converted["fp32"] / "Generator.mlpackage", tmp_path / "cut.mlpackage")
    blob = next(cut.rglob("weight.bin"))
    blob.write_bytes(blob.read_bytes()[:4096])
    cases = {tmp_path / "missing.mlpackage": "not found", tmp_path / "notes.txt": "unknown model format '.txt'",
             tmp_path / "empty.mlpackage": "no Manifest.json", tmp_path / "junk.mlmodel": "not a Core ML model spec",
             cut: "truncated"}
    for path, message in cases.items():
        assert main(["audit-model", str(path), "--against", against]) == 2, path
        err = capsys.readouterr().err
        assert message in err and path.name in err, err
    good = str(converted["fp32"] / "Generator.mlpackage")
    assert main(["audit-model", good, "--against", str(tmp_path / "notes.txt")]) == 2


def test_coreml_backend_options_and_its_place_in_the_registry():
    assert isinstance(make_backend("native", {"kind": "coreml", "compute_units": "CPU_AND_NE"}), CoreMLBackend)
    for options, message in (({"compute_units": "NE"}, "choose one of ALL, CPU_AND_NE, CPU_AND_GPU, CPU_ONLY"),
                             ({"precision": "int8"}, "choose one of fp16, fp32"),
                             ({"threads": 2}, "unknown option 'threads'")):
        with pytest.raises(ValueError, match=message):
            CoreMLBackend("native", options)


def test_coreml_backend_refuses_packages_of_other_models(converted, tiny_models_dir, tmp_path):
    backend = CoreMLBackend("native", {"packages": str(converted["fp16"])})
    files = ModelFiles.from_dir(tiny_models_dir)
    assert backend.packages(files) == {role: converted["fp16"] / name for role, name in PACKAGES.items()}
    from fixtures.models import build_models
    other = ModelFiles.from_dir(tmp_path) if build_models(tmp_path, "tiny", seed=1) else None
    with pytest.raises(BackendFailed, match="was converted from another audio encoder"):
        backend.packages(other)


@pytest.fixture()
def inputs(tiny_models_dir, synthetic_pack, tmp_path):
    return RunInputs(synthetic_pack, "pack", synthetic_pack / "audio.wav", tiny_models_dir, 3, tmp_path)


def test_coreml_backend_runs_natively_on_a_mac_and_is_skipped_elsewhere(inputs):
    backend = CoreMLBackend("native", {"compute_units": "CPU_ONLY", "precision": "fp32"})
    if platform.system() != "Darwin":
        with pytest.raises(BackendUnavailable, match="Core ML prediction needs macOS"):
            backend.check_available()
        pytest.skip(f"{PLATFORM_SKIP}: Core ML prediction needs macOS")
    run = backend.run(inputs)
    frames = list(run.frames)
    reference = list(ReferenceBackend("reference").run(inputs).frames)
    assert len(frames) == 3 and run.info["engine"] == "coreml" and run.timings["stages"]["generator"] > 0
    from harness.verdicts.metrics import psnr
    assert min(psnr(a, b) for a, b in zip(reference, frames)) >= 35  # fp32 on the CPU: close to the reference
