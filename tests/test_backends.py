"""In-process backends: reference variants, ONNX Runtime providers and options, OpenVINO, fp16, the registry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from harness.backends import ort_backend
from harness.backends.base import BackendFailed, BackendUnavailable, RunInputs
from harness.backends.fp16_backend import Fp16Backend
from harness.backends.openvino_backend import OpenVINOBackend
from harness.backends.ort_backend import OrtBackend
from harness.backends.reference import ReferenceBackend
from harness.backends.registry import make_backend
from harness.plugin import PLATFORM_SKIP
from harness.verdicts import metrics


@pytest.fixture()
def inputs(tiny_models_dir, synthetic_pack, tmp_path):
    return RunInputs(synthetic_pack, "pack", synthetic_pack / "audio.wav", tiny_models_dir, 4, tmp_path)


@pytest.fixture()
def reference_frames(inputs):
    return list(ReferenceBackend("reference").run(inputs).frames)


def _max_diff(a: list, b: list) -> int:
    assert len(a) == len(b)
    return max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(a, b))


def test_reference_backend_takes_conventions_from_its_name_and_options(inputs, reference_frames):
    assert ReferenceBackend("reference[audio_window=tile]").conventions.label() == "audio_window=tile"
    both = ReferenceBackend("reference[audio_window=tile]", {"conventions": "template_order=linear"})
    assert both.conventions.variants() == {"audio_window": "tile", "template_order": "linear"}
    run = ReferenceBackend("rgb", {"conventions": "channel_order=rgb"}).run(inputs)
    assert _max_diff(reference_frames, list(run.frames)) > 8
    assert run.info["conventions"] == "input_channels=rgb,output_channels=rgb"
    assert set(run.stages()) >= {"mel", "embeddings", "padded_features", "audio_windows", "generator_outputs"}
    assert run.timings["frames"] == 4 and len(run.timings["frame_latency"]) == 4


def test_ort_cpu_reproduces_the_reference_and_reports_its_kernels(inputs, reference_frames):
    backend = OrtBackend("ort", {"provider": "cpu", "intra_op_threads": 1, "graph_optimization": "basic"})
    run = backend.run(inputs)
    assert _max_diff(reference_frames, list(run.frames)) <= 1
    assert run.info["session_providers"] == ["CPUExecutionProvider"]
    kernels = run.info["kernels_per_provider"]
    assert set(kernels) == {"CPUExecutionProvider"} and kernels["CPUExecutionProvider"] > 20
    assert run.timings["stages"]["generator"] > 0


def test_ort_cpu_runs_frames_in_parallel_sessions_with_the_same_bytes(inputs):
    """On the CPU provider the generator runs as the reference runs it: one single-threaded session per
    core of `intra_op_threads` (frames in parallel), the same bytes as one session; elsewhere one."""
    assert OrtBackend("a", {"intra_op_threads": 3}).generator_sessions() == (3, 1)
    assert OrtBackend("b", {"intra_op_threads": 4, "generator_sessions": 2}).generator_sessions() == (2, 2)
    assert OrtBackend("c", {"provider": "coreml", "intra_op_threads": 2}).generator_sessions() == (1, 2)
    two = OrtBackend("two", {"intra_op_threads": 2, "count_nodes": False}).run(inputs)
    one = OrtBackend("one", {"intra_op_threads": 2, "generator_sessions": 1, "count_nodes": False}).run(inputs)
    assert (two.info["generator_sessions"], two.info["generator_session_threads"]) == (2, 1)
    assert one.info["generator_sessions"] == 1
    frames = list(two.frames)
    assert len(frames) == 4 and all(np.array_equal(a, b) for a, b in zip(frames, one.frames))


def test_unavailable_provider_is_skipped_with_the_reason():
    backend = OrtBackend("coreml", {"provider": "coreml", "provider_options": {"MLComputeUnits": "ALL"}})
    if "CoreMLExecutionProvider" in ort.get_available_providers():
        pytest.skip("not on this platform: CoreML is available here, so it is not unavailable")
    with pytest.raises(BackendUnavailable, match="CoreMLExecutionProvider is not available"):
        backend.check_available()


def test_coreml_options_reach_session_creation(monkeypatch, inputs):
    """CoreML cannot run on Linux: fake its availability and record what the session is created with."""
    backend = OrtBackend("ane", {"provider": "coreml", "provider_options": {
        "MLComputeUnits": "CPUAndNeuralEngine", "ModelFormat": "MLProgram", "RequireStaticInputShapes": True}})
    assert backend.providers() == [("CoreMLExecutionProvider", {"MLComputeUnits": "CPUAndNeuralEngine",
                                                                "ModelFormat": "MLProgram",
                                                                "RequireStaticInputShapes": "1"}),
                                   "CPUExecutionProvider"]
    created = []

    class FakeSession:
        def __init__(self, path, options, providers):
            created.append((path, providers))
            raise RuntimeError("stop after session creation")

    monkeypatch.setattr(ort_backend.ort, "get_available_providers", lambda: ["CoreMLExecutionProvider",
                                                                             "CPUExecutionProvider"])
    monkeypatch.setattr("reference.models.ort.InferenceSession", FakeSession)
    backend.check_available()
    with pytest.raises(RuntimeError, match="stop after session creation"):
        backend.run(inputs)
    assert created and created[0][0].endswith("audio_encoder.onnx")
    assert created[0][1] == backend.providers()


@pytest.mark.parametrize("options, message", [
    ({"provider": "coreml", "provider_options": {"MLComputeUnits": "GPUOnly"}}, "choose one of CPUOnly"),
    ({"provider": "coreml", "provider_options": {"ComputeUnits": "ALL"}}, "unknown CoreML option"),
    ({"provider": "cpu", "graph_optimization": "max"}, "graph_optimization"),
    ({"provider": "cpu", "threads": 2}, "unknown option 'threads'"),
    ({"provider": "cpu", "intra_op_threads": "2"}, "must be int"),
    ({"provider": "cpu", "generator_sessions": -1}, "generator_sessions must be 0"),
])
def test_bad_ort_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        OrtBackend("ort", options)


def test_openvino_runs_and_reports_the_precision_it_used(inputs, reference_frames):
    run = OpenVINOBackend("ov", {"precision": "bf16"}).run(inputs)
    frames = list(run.frames)
    # bf16 keeps 8 bits of mantissa inside the network: a few grey levels on the worst pixel, within
    # the mobile profile's 35 dB on every frame
    assert _max_diff(reference_frames, frames) <= 16
    assert min(metrics.psnr(a, b) for a, b in zip(reference_frames, frames)) >= 35
    assert run.info["precision_requested"] == "bf16"
    assert run.info["precision_effective"] in ("f32", "bf16")
    if "BF16" not in run.info["device_capabilities"]:
        assert run.info["precision_effective"] == "f32"  # the hint falls back, and we say so
    with pytest.raises(ValueError, match="precision"):
        OpenVINOBackend("ov", {"precision": "int4"})


def test_fp16_drifts_a_little_and_only_a_little(inputs, reference_frames):
    run = Fp16Backend("fp16").run(inputs)
    frames = list(run.frames)
    assert 0 < _max_diff(reference_frames, frames) <= 16
    ref = ReferenceBackend("reference").run(inputs)
    list(ref.frames)
    drift = np.abs(run.stages()["embeddings"] - ref.stages()["embeddings"]).max()
    assert 1e-5 < drift < 5e-2
    assert np.array_equal(run.stages()["mel"], ref.stages()["mel"])


def test_registry_builds_by_kind_and_by_name():
    assert isinstance(make_backend("reference[channel_order=rgb]"), ReferenceBackend)
    assert isinstance(make_backend("anything", {"kind": "fp16"}), Fp16Backend)
    with pytest.raises(ValueError, match="unknown kind 'tensorflow'"):
        make_backend("tf", {"kind": "tensorflow"})


def test_strict_placement_fails_loudly_where_the_provider_cannot_take_the_model(inputs):
    """ONNX Runtime's Azure provider runs no graph node: without strict placement everything silently
    falls back to the CPU (and info says so), with it the session creation fails and the run says why."""
    if "AzureExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"{PLATFORM_SKIP}: this onnxruntime build has no AzureExecutionProvider")
    lenient = OrtBackend("azure", {"provider": "AzureExecutionProvider", "intra_op_threads": 1})
    run = lenient.run(inputs)
    assert len(list(run.frames)) == 4
    kernels = run.info["kernels_per_provider"]
    assert set(kernels) == {"CPUExecutionProvider"}
    n = kernels["CPUExecutionProvider"]
    assert run.info["cpu_fallback"].startswith(f"{n} of {n} generator kernels ran on the CPU, not on "
                                               "AzureExecutionProvider")
    assert run.info["strict_placement"] is False
    strict = OrtBackend("azure", {"provider": "AzureExecutionProvider", "strict_placement": True})
    assert strict.providers() == [("AzureExecutionProvider", {})]  # no CPU provider listed beside it
    with pytest.raises(BackendFailed, match="strict_placement: AzureExecutionProvider cannot run the whole model, "
                                            "and the CPU fallback is off: .*fallback to CPU EP has been explicitly "
                                            "disabled"):
        strict.run(inputs)


def test_strict_placement_options_are_checked():
    with pytest.raises(ValueError, match="strict_placement forbids a fallback to the CPU"):
        OrtBackend("cpu", {"provider": "cpu", "strict_placement": True})
    with pytest.raises(ValueError, match="option 'strict_placement' must be bool"):
        OrtBackend("coreml", {"provider": "coreml", "strict_placement": "yes"})
    coreml = OrtBackend("coreml", {"provider": "coreml", "strict_placement": True,
                                   "provider_options": {"ModelFormat": "MLProgram"}})
    assert coreml.providers() == [("CoreMLExecutionProvider", {"ModelFormat": "MLProgram"})]
    options = coreml.session_options()
    assert options.get_session_config_entry("session.disable_cpu_ep_fallback") == "1"
    with pytest.raises(RuntimeError, match="does not have configuration with key"):
        OrtBackend("coreml", {"provider": "coreml"}).session_options().get_session_config_entry(
            "session.disable_cpu_ep_fallback")


def test_nodes_per_provider_come_from_the_providers_log_and_a_fallback_is_said():
    log = ("2026-01-05 10:00:00 [I:onnxruntime:, coreml_execution_provider.cc:104 GetCapability] "
           "CoreMLExecutionProvider::GetCapability, number of partitions supported by CoreML: 3 number of nodes in "
           "the graph: 189 number of nodes supported by CoreML: 181\n")
    nodes = ort_backend.nodes_from_log(log)
    assert nodes == {"CoreMLExecutionProvider": 181, "CPUExecutionProvider": 8}
    assert ort_backend.nodes_from_log("nothing logged") == {}
    said = ort_backend.cpu_fallback("CoreMLExecutionProvider", {"CPUExecutionProvider": 9}, nodes)
    assert said.startswith("8 of 189 generator nodes ran on the CPU, not on CoreMLExecutionProvider")
    assert ort_backend.cpu_fallback("CoreMLExecutionProvider", {"CoreMLExecutionProvider": 3}, {}) == ""
    assert ort_backend.cpu_fallback("CPUExecutionProvider", {"CPUExecutionProvider": 9}, {}) == ""
    from harness.runs.console import results_table
    from reports.runs import Row
    run = {"backend": "coreml_all", "audio": "talk.wav", "status": "passed", "info": {"cpu_fallback": said}}
    assert f"  coreml_all / talk.wav: {said}" in results_table({"runs": [run]})
    assert Row("mac", run, {"runs": [run]}, Path("."), 0).why() == [said]  # the report lists it with the verdict
