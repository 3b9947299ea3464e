"""Named causes of a backend's divergence, from every diagnosis a failing run gets.

``diagnose`` runs, for one failed backend x audio run: stage localisation (which stage leaves
tolerance first), the temporal-offset search, the convention fit (its bill of deviations) and, for
ONNX-engine backends, the first divergent layer of the model that holds the first divergent stage
(audio encoder or generator). ``causes`` turns a run record's diagnosis into one sentence per named
cause ("no divergence" for a run that matches).
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np

from harness.diagnosis.conventions import bill_lines
from harness.diagnosis.evidence.findings import finding_lines
from harness.diagnosis.offset import temporal_offset
from harness.diagnosis.stages import localise_stage
from harness.verdicts.tolerances import evaluate

DIAGNOSIS_FRAMES = 40  # candidate frames kept for the diagnosis: the convention fit reproduces them all
OFFSET_FRAMES = 12  # candidate frames the offset search shifts against the reference
LAYER_TOLERANCE = 1e-3  # generator tensors: max abs beyond which a layer has diverged
ENCODER_STAGES = ("embeddings", "padded_features", "audio_windows")
GENERATOR_STAGES = ("generator_outputs", "frames")


def layer_candidate(backend) -> tuple[str, dict | None] | None:
    """What ``first_divergent_layer`` runs for this backend, or None when it is not an ONNX engine."""
    kind = getattr(backend, "kind", "")
    if kind == "fp16":
        return "fp16", None
    if kind == "openvino":
        precision = backend.options.get("precision")
        return "openvino", ({"INFERENCE_PRECISION_HINT": precision} if precision else None)
    if kind == "onnxruntime":
        return f"onnxruntime:{backend.provider}", None
    return None


def diagnosis_models(folder: Path):
    """The model sessions of one diagnosis; they and their reduced-precision variants are freed with it
    (`harness.system.memory.release_memory` after the run gives their arenas back: tests/test_diagnosis_memory.py)."""
    from reference.models import ModelFiles, Models, session_options
    options = session_options()
    options.enable_mem_pattern = False  # no pre-planned block for every activation: ~180 MB less per generator
    return Models(ModelFiles.from_dir(folder), options=options)


def diagnose(record: dict, spec, inputs, ref, candidate_first: list[np.ndarray], worst: dict,
             stages: dict | None = None) -> dict:
    """The diagnosis of one failed run of ``spec`` (``record`` as ``parity.run_backend`` fills it, ``worst``
    its worst frame per criterion, ``ref`` the ``frame_stream.ReferenceFrames`` of the same audio,
    ``candidate_first`` the candidate's first frames, None where one is missing, ``stages`` the stage
    arrays it dumped)."""
    from harness.diagnosis.conventions import fit_conventions
    from reference.data import open_template_source

    started = time.perf_counter()
    thresholds = spec.thresholds
    tolerance = thresholds.feature_max_abs if thresholds.feature_max_abs is not None else 1e-4
    out: dict = {"stages": localise_stage(record.get("features", {}), evaluate(thresholds, worst, {}, None),
                                          tolerance)}
    leading = list(itertools.takewhile(lambda f: f is not None, candidate_first[:OFFSET_FRAMES]))  # a gap ends it
    found = temporal_offset(leading, ref.mouths, ref.rects)
    if found is not None:
        out["offset"] = found
    models = diagnosis_models(Path(inputs.models))
    source = open_template_source(inputs.source, inputs.source_kind)
    present = {i: frame for i, frame in enumerate(candidate_first) if frame is not None}
    out["conventions"] = fit_conventions(source, inputs.audio, models, present, inputs.frames, stages)
    layer = layer_candidate(spec.backend)
    model_inputs = None if layer is None else _layer_inputs(out["stages"]["first_stage"], source, inputs.audio, models)
    if model_inputs is not None:
        from harness.diagnosis.layers import first_divergent_layer
        found = first_divergent_layer(model_inputs[0], model_inputs[1], layer[0], LAYER_TOLERANCE, layer[1])
        out["layers"] = {"model": model_inputs[0].name, **found}
    out["seconds"] = time.perf_counter() - started
    return out


def _layer_inputs(first_stage: str | None, source, audio: Path, models) -> tuple[Path, dict] | None:
    """The model to search layer by layer for a divergence first seen at `first_stage`, and its real
    inputs (frame 1): the audio encoder for the embedding stages, the generator after them."""
    from harness.diagnosis.layers import frame_inputs
    from reference.pipeline import audio_features
    if first_stage in ENCODER_STAGES:
        return models.files.encoder, {"mel": audio_features(audio, models, frames=1).windows[:1]}
    if first_stage in GENERATOR_STAGES:
        return models.files.generator, frame_inputs(source, audio, models, 0)
    return None


def _layer_text(found: dict) -> str:
    if found["node"] is None:
        return (f"no layer of {found['model']} leaves {found['tolerance']:g} on frame 1 ({found['nodes_compared']} tensors "
                f"compared against ONNX Runtime CPU fp32)")
    return (f"first divergent layer of {found['model']} on {found['candidate']}: {found['node']} "
            f"({found['op_type']}), max abs {found['max_abs']:.3g} > {found['tolerance']:g}")


def causes(record: dict) -> list[str]:
    """One sentence per named cause of a run's divergence; ["no divergence"] when the run matches."""
    if record.get("status") == "passed":
        return ["no divergence: the frames and every compared stage are within the thresholds"]
    if record.get("status") in ("error", "skipped"):
        return [f"did not run: {record.get('reason', 'unknown reason')}"]
    found = record.get("diagnosis", {})
    out = []
    audio = found.get("audio_dependence") or {}
    if audio.get("ignores_input_audio"):
        out.append(audio["text"])
    conv = found.get("conventions") or {}
    deviations = {d["knob"]: d["value"] for d in conv.get("deviations", [])}
    if deviations.get("audio_source") == "aud_ave":
        out.append("output ignores the input audio: it matches the reference driven by the pack's aud_ave.bin")
    offset = found.get("offset") or {}
    if offset.get("explains"):
        out.append(offset["text"])
    if conv:
        out.extend(bill_lines(conv))
    stage = found.get("stages")
    if stage and stage["first_stage"] is not None:
        out.append(stage["text"])
    if found.get("layers"):
        out.append(_layer_text(found["layers"]))
    if not out:
        out.append("no diagnosis recorded: run `synctalk-parity explain CONFIG` to compute one")
    return out


def explain_text(results: dict, only: list[str] | None = None) -> str:
    """Each run's verdict and named causes, as the ``explain`` command prints them."""
    lines = []
    for run in results["runs"]:
        if only and run["backend"] not in only:
            continue
        took = run.get("diagnosis", {}).get("seconds")
        lines.append(f"{run['backend']} / {run['audio']}: {run['status'].upper()}"
                     + (f" (diagnosed in {took:.1f} s)" if took is not None else ""))
        lines.extend(f"  - {text}" for text in causes(run))
        found = finding_lines(run.get("findings", []))
        if found:
            lines.append("  evidence without the models (frames, pack, stage dumps), by the share of the residual each explains:")
            lines.extend(f"  - {text}" for text in found)
    return "\n".join(lines)

