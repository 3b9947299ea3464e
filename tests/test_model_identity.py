"""A model's identity is its graph and every external data file it names (issue 30): the files,
their hash, and the clear error for a data file that is missing, truncated or outside the folder."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fixtures.external import flip_byte, with_external_data
from reference.errors import InputError
from reference.models import ENCODER_IO, GENERATOR_IO, ModelFiles, Models, check_model
from reference.precision import converted_files
from reference.provenance import file_changes, model_file_hashes, model_files, model_sha256

DYNAMO = Path("/work/shared/data/torch_export/dynamo")


@pytest.fixture
def external(tiny_models_dir, tmp_path) -> Path:
    """The tiny models with their weights in `<model>.onnx.data` files beside them."""
    return with_external_data(tiny_models_dir, tmp_path / "external")


def test_a_model_without_external_data_is_its_files_sha256(tiny_models_dir):
    graph = tiny_models_dir / "generator.onnx"
    assert model_files(graph) == [graph]
    assert model_sha256(graph) == hashlib.sha256(graph.read_bytes()).hexdigest()
    assert model_file_hashes(graph) == {"generator.onnx": hashlib.sha256(graph.read_bytes()).hexdigest()}


def test_every_file_of_a_model_is_part_of_its_identity(external, tmp_path):
    graph, data = external / "generator.onnx", external / "generator.onnx.data"
    assert model_files(graph) == [graph, data]
    by_hand = hashlib.sha256(hashlib.sha256(graph.read_bytes()).hexdigest().encode())
    by_hand.update(b"\0generator.onnx.data\0" + hashlib.sha256(data.read_bytes()).hexdigest().encode())
    before, hashes = model_sha256(graph), model_file_hashes(graph)
    assert before == by_hand.hexdigest() != hashlib.sha256(graph.read_bytes()).hexdigest()

    flip_byte(data, 5)  # one byte of the weights
    assert model_sha256(graph) != before
    assert file_changes(hashes, model_file_hashes(graph)) == ["generator.onnx.data changed"]

    flip_byte(data, 5)  # back; then the graph alone changes (its doc string), its data untouched
    assert model_sha256(graph) == before
    model = onnx.load(str(graph), load_external_data=False)
    model.doc_string = "edited"
    onnx.save(model, str(graph))
    assert model_sha256(graph) != before
    assert file_changes(hashes, model_file_hashes(graph)) == ["generator.onnx changed"]


def test_renaming_a_data_file_changes_the_identity(external):
    graph = external / "generator.onnx"
    before = model_sha256(graph)
    model = onnx.load(str(graph))  # the weights read in, then written out under another name
    onnx.save_model(model, str(graph), save_as_external_data=True, location="weights.bin", size_threshold=0)
    (external / "generator.onnx.data").unlink()
    assert [p.name for p in model_files(graph)] == ["generator.onnx", "weights.bin"]
    assert model_sha256(graph) != before
    assert "weights.bin is new" in file_changes({"generator.onnx.data": "x"}, model_file_hashes(graph))


def test_a_missing_or_truncated_data_file_is_an_input_error_naming_it(external):
    files = ModelFiles.from_dir(external)
    data = external / "generator.onnx.data"
    full = data.read_bytes()
    data.write_bytes(full[:-4])
    for call in (lambda: model_files(files.generator), lambda: check_model(files.generator, GENERATOR_IO),
                 lambda: Models(files, threads=1), lambda: model_sha256(files.generator)):
        with pytest.raises(InputError, match=r"generator\.onnx\.data: truncated: \d+ bytes, and generator\.onnx "
                                             r"reads up to byte \d+ \(keep the \.onnx and the data files"):
            call()
    data.unlink()
    for call in (lambda: model_files(files.generator), lambda: check_model(files.generator, GENERATOR_IO),
                 lambda: Models(files, threads=1)):
        with pytest.raises(InputError, match=r"generator\.onnx\.data: external data of generator\.onnx not found"):
            call()
    data.write_bytes(full)
    assert Models(files, threads=1).generator is not None


@pytest.mark.parametrize("location", ["../outside.data", "/tmp/absolute.data", "sub/../../x.data"])
def test_a_data_file_outside_the_models_folder_is_refused(external, location):
    graph = external / "audio_encoder.onnx"
    model = onnx.load(str(graph), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(graph))
    with pytest.raises(InputError, match="outside its folder"):
        model_files(graph)
    with pytest.raises(InputError, match="outside its folder"):
        check_model(graph, ENCODER_IO)


def test_constant_and_subgraph_tensors_name_their_data_files_too(tmp_path):
    """A Constant node's value, and an initializer inside an If branch, stored externally."""
    value = numpy_helper.from_array(np.arange(4, dtype=np.float32), "c")
    branch_init = numpy_helper.from_array(np.ones(4, np.float32), "b")
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    branch = helper.make_graph([helper.make_node("Identity", ["b"], ["y"])], "branch", [], [out], [branch_init])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], value=value),
         helper.make_node("If", ["cond"], ["z"], then_branch=branch, else_branch=branch),
         helper.make_node("Add", ["c", "z"], ["y"])],
        "g", [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0,
                    convert_attribute=True)  # one file per tensor, named after it
    assert model_files(path) == [path, tmp_path / "b", tmp_path / "c"]
    (tmp_path / "c").unlink()
    with pytest.raises(InputError, match=r"c: external data of m\.onnx not found"):
        model_files(path)


def test_the_dynamo_exports_weights_are_part_of_its_identity(tmp_path):
    """The real dynamo export: the generator's graph names generator.onnx.data; a copy whose data file
    lost its last byte is refused naming it, before ONNX Runtime reads it."""
    if not (DYNAMO / "generator.onnx").is_file():
        pytest.skip(f"{DYNAMO} is not on this machine")
    files = model_files(DYNAMO / "generator.onnx")
    assert files == [DYNAMO / "generator.onnx", DYNAMO / "generator.onnx.data"]
    assert model_sha256(DYNAMO / "generator.onnx") != hashlib.sha256((DYNAMO / "generator.onnx").read_bytes()).hexdigest()
    copy = tmp_path / "dynamo"
    shutil.copytree(DYNAMO, copy)
    os.chmod(copy / "generator.onnx.data", 0o644)
    os.truncate(copy / "generator.onnx.data", (copy / "generator.onnx.data").stat().st_size - 1)
    with pytest.raises(InputError, match=r"generator\.onnx\.data: truncated"):
        Models(ModelFiles.from_dir(copy), threads=1)


def test_fp16_conversion_of_a_model_with_external_data(external, tiny_models_dir):
    """The conversion reads the external weights in (the same fp16 models as from the one-file copies),
    and its cache key follows the weights."""
    half = converted_files(ModelFiles.from_dir(external), "fp16")
    plain = converted_files(ModelFiles.from_dir(tiny_models_dir), "fp16")
    assert model_files(half.generator) == [half.generator]
    weights = [{t.name: numpy_helper.to_array(t) for t in onnx.load(str(m.generator)).graph.initializer}
               for m in (half, plain)]
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][name], weights[1][name]) for name in weights[0])
    flip_byte(external / "generator.onnx.data", 1)
    assert converted_files(ModelFiles.from_dir(external), "fp16").generator.parent != half.generator.parent


def test_a_copied_model_folder_keeps_its_identity(external, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(external, copy)
    assert model_sha256(copy / "generator.onnx") == model_sha256(external / "generator.onnx")
