"""`convert coreml` on what `torch.onnx.export` writes (../shared/data/torch_export: the TorchScript
exporter's `legacy/`, opset 17 with a dynamic batch and its shape arithmetic, and the dynamo exporter's
`dynamo/`, opset 20 with external weights): both folders convert in fp16 and fp32, each package passes its
audit against its own source, and the same package audited against the synthetic models is not
faithful, its weights named. Each folder is converted once per precision for the whole module."""
from __future__ import annotations

import pytest

from harness.cli import main
from harness.convert.audit import audit
from harness.convert.conversion import convert_models
from harness.coreml.mil_proto import load_spec
from harness.coreml.read import package_spec_path, read_model

pytestmark = pytest.mark.long

EXPORTS = [("legacy", "fp16"), ("legacy", "fp32"), ("dynamo", "fp16"), ("dynamo", "fp32")]


@pytest.fixture(scope="module")
def converted(shared_data, tmp_path_factory) -> dict:
    """(folder, precision) -> role -> its conversion (`Converted`, audited against its source)."""
    out = {}
    for folder, precision in EXPORTS:
        models = shared_data / "torch_export" / folder
        out[folder, precision] = convert_models(models, tmp_path_factory.mktemp(f"{folder}-{precision}"), precision)
    return out


@pytest.mark.parametrize("folder,precision", EXPORTS)
def test_a_torch_export_converts_and_passes_its_own_audit(converted, shared_data, folder, precision):
    done = converted[folder, precision]
    for role, item in done.items():
        assert item.audit.faithful, [d.text for d in item.audit.differences if d.fails]
        assert item.audit.precision == precision
        assert item.source == shared_data / "torch_export" / folder / item.source.name
        assert [(t.name, t.shape) for t in item.audit.candidate.inputs][0][1][0] == 1
    generator = done["generator"].audit
    assert generator.candidate.histogram()["conv"] == 93
    assert "pad" not in generator.candidate.histogram()  # the exports' Pads pad nothing at 320 x 320
    folding = [d.text for d in generator.differences if d.section == "folding"]
    spec = load_spec(package_spec_path(done["generator"].package))
    metadata = dict(spec.description.metadata.userDefined)
    if folder == "legacy":  # batch dynamic, shape arithmetic folded and checked against ONNX Runtime
        assert len(folding) == 1 and folding[0].startswith("195 nodes of shape arithmetic folded at input 1x6x320x320")
        assert "ONNX Runtime on the source computes the same 195 values" in folding[0]
        assert "batch fixed to 1" in spec.description.metadata.shortDescription
        assert metadata["synctalk-parity.fixed_inputs"] == ("input Nx6x320x320 -> 1x6x320x320; "
                                                           "audio Nx32x16x16 -> 1x32x16x16")
        assert metadata["synctalk-parity.folded_nodes"] == "195"
        assert any("axis 0 fixed to 1 where the source's is dynamic" in d.text and not d.fails
                   for d in generator.differences)
    else:  # static, already folded by the exporter
        assert folding == []
        assert "batch fixed" not in spec.description.metadata.shortDescription
        assert "synctalk-parity.folded_nodes" not in metadata


@pytest.mark.parametrize("folder,precision", [("legacy", "fp16"), ("dynamo", "fp32")])
def test_a_torch_export_package_against_the_synthetic_models_is_not_faithful(converted, folder, precision, capsys):
    from fixtures.cache import cached_models
    synthetic = cached_models("full")
    package = converted[folder, precision]["generator"].package
    assert main(["audit-model", str(package), "--against", str(synthetic / "generator.onnx"), "--no-cost"]) == 1
    text = capsys.readouterr().out
    assert "verdict: NOT FAITHFUL: weights differ" in text
    assert "! the weights look random/untrained:" in text
    assert "! random/untrained: /inc/inconv/inconv.0/conv.0.weight (12, 6, 1, 1)" in text
    result = audit(read_model(converted[folder, precision]["audio encoder"].package),
                   read_model(synthetic / "audio_encoder.onnx"))
    assert not result.faithful and result.failing("weights") and not result.failing("ops")
    assert {p.status for p in result.weights} == {"random"}

