"""`audit-model` across converters and exporters, on real data: the compiled Core ML audio encoder of a
Swift port (coremltools 9.0 from PyTorch, weights absent) against both `torch.onnx.export` exports of the
same architecture (../shared/data/torch_export: TorchScript `legacy/`, dynamo `dynamo/`). Structure and
shapes match; what differs is named truly: the renamed input and output, the fixed batch axis, the
absent weights (its weights rebuilt from either export's tensors: tests/test_coreml.py). A
package converted from one export audits faithful against the other's source; the two ONNX exports
against each other differ only in their batch axis and in weights a few fp32 ulps apart."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_coreml import EXAMPLE

from harness.cli import main
from harness.convert.audit import audit
from harness.coreml.package import write_package
from harness.coreml.read import read_model

EXPORTERS = ["legacy", "dynamo"]


def failing(result) -> list:
    return [d for d in result.differences if d.fails]


def export(shared_data: Path, exporter: str, model: str) -> Path:
    return shared_data / "torch_export" / exporter / f"{model}.onnx"


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_compiled_example_against_a_torch_export_matches_in_structure(shared_data, exporter, capsys):
    source = export(shared_data, exporter, "audio_encoder")
    result = audit(read_model(shared_data / EXAMPLE), read_model(source))
    assert {f.section for f in failing(result)} == {"io", "weights"}
    assert [f.text for f in failing(result) if f.section == "io"] == [
        "input 'mel' of the source is named 'mel_spectrogram' in the candidate",
        "output 'emb' of the source is named 'var_242' in the candidate"]
    notes = [d.text for d in result.differences if d.section == "io" and not d.fails]
    if exporter == "legacy":  # a dynamic batch axis in the source, fixed to 1 by the Core ML model
        assert notes == ["input 'mel': axis 0 fixed to 1 where the source's is dynamic (one item per call)",
                         "output 'emb': axis 0 fixed to 1 where the source's is dynamic (one item per call)"]
    else:
        assert notes == []
    assert [d for d in result.differences if d.section in ("ops", "resampling", "folding")] == []
    assert result.candidate.histogram() == result.source.histogram() == {"conv": 13, "relu": 13, "add": 7,
                                                                         "squeeze": 2}
    assert [op.params for op in result.candidate.ops if op.kind == "conv"] == \
           [op.params for op in result.source.ops if op.kind == "conv"]
    assert [w.shape for w in result.candidate.weights] == [w.shape for w in result.source.weights]
    assert {p.status for p in result.weights} == {"unread"} and len(result.weights) == 26
    assert main(["audit-model", str(shared_data / EXAMPLE), "--against", str(source), "--no-cost"]) == 1
    out = capsys.readouterr().out
    assert "26 source tensors, 26 candidate tensors, in graph order: 26 not read (weights absent)" in out
    assert "verdict: NOT FAITHFUL: inputs/outputs differ; weights absent" in out
    assert "match" not in out.split("\nweights\n")[1] and "random" not in out


def test_a_package_of_one_export_is_faithful_against_the_others_source(shared_data, tmp_path):
    """The generator converted (fp16) from the TorchScript export, audited against the dynamo export's."""
    package = write_package(export(shared_data, "legacy", "generator"), "generator", "fp16",
                            tmp_path / "Generator.mlpackage")
    result = audit(read_model(package), read_model(export(shared_data, "dynamo", "generator")))
    assert result.faithful and result.precision == "fp16", [d.text for d in failing(result)]
    assert [p.status for p in result.weights] == ["match"] * 186
    notes = [d.text for d in result.differences if not d.fails and d.section in ("io", "ops")]
    # the dynamo export's F.pad of a zero difference is a Pad that pads nothing; the conversion drops it
    assert notes == ["Pad (pads nothing)/identity: 0 in the candidate, 5 in the source (5 fewer) "
                     "(moves no values: a note)"]


def test_the_two_exports_differ_in_their_batch_axis_and_by_a_few_ulps(shared_data):
    """The TorchScript export audited against the dynamo one: the same ops and shapes; a dynamic batch where
    the source's is 1 is a note; batch norm folded by each exporter's own arithmetic is named, in ulps."""
    result = audit(read_model(export(shared_data, "legacy", "audio_encoder")),
                   read_model(export(shared_data, "dynamo", "audio_encoder")))
    assert {f.section for f in failing(result)} == {"weights"}
    assert [d.text for d in result.differences if d.section == "io"] == [
        "input 'mel': axis 0 dynamic in the candidate where the source's is 1 (it takes the source's shape)",
        "output 'emb': axis 0 dynamic in the candidate where the source's is 1 (it takes the source's shape)"]
    assert result.candidate.histogram() == result.source.histogram()
    differing = [p for p in result.weights if not p.ok]
    assert {p.status for p in differing} == {"differs"} and 0 < len(differing) < 26
    assert all(1 < p.ulps <= 3 for p in differing)
    texts = [f.text for f in failing(result)]
    assert all(re.search(r"correlation 1\.000 with the source \(up to [23] ulp of float32 where 1 is allowed; "
                         r"max abs diff [0-9.e-]+\)$", t) for t in texts), texts
