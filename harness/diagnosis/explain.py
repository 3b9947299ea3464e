"""Named causes of a backend's divergence, from every diagnosis a failing run gets.

``diagnose`` runs, for one failed backend x audio run: stage localisation (which stage leaves
tolerance first), the temporal-offset search, the convention search and, for ONNX-engine backends
whose first divergent stage is inside the generator, the first divergent layer. ``causes`` turns a
run record's diagnosis into one sentence per named cause ("no divergence" for a run that matches).
"""
from __future__ import annotations

import numpy as np

from harness.diagnosis.offset import temporal_offset
from harness.diagnosis.stages import localise_stage
from harness.tolerances import evaluate

LAYER_TOLERANCE = 1e-3  # generator tensors: max abs beyond which a layer has diverged
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


def diagnose(record: dict, spec, inputs, ref, candidate_first: list[np.ndarray],
             cand_mouths: np.ndarray | None, worst: dict) -> dict:
    """The diagnosis of one failed run of ``spec`` (``record`` as ``parity.run_backend`` fills it, ``worst``
    its worst frame per criterion, ``ref`` the ``parity.ReferenceFrames`` of the same audio)."""
    from harness.backends.inprocess import open_template_source
    from harness.diagnosis.conventions import search_conventions
    from reference.models import ModelFiles, Models

    thresholds = spec.thresholds
    tolerance = thresholds.feature_max_abs if thresholds.feature_max_abs is not None else 1e-4
    out: dict = {"stages": localise_stage(record.get("features", {}), evaluate(thresholds, worst, {}, None),
                                          tolerance)}
    if cand_mouths is not None:
        found = temporal_offset(cand_mouths, ref.mouths)
        if found is not None:
            out["offset"] = found
    models = Models(ModelFiles.from_dir(inputs.models))
    source = open_template_source(inputs.source, inputs.source_kind)
    out["conventions"] = search_conventions(source, inputs.audio, models, candidate_first)
    layer = layer_candidate(spec.backend)
    if layer is not None and out["stages"]["first_stage"] in GENERATOR_STAGES:
        from harness.diagnosis.layers import first_divergent_layer, frame_inputs
        frame = frame_inputs(source, inputs.audio, models, 0)
        out["layers"] = first_divergent_layer(models.files.generator, frame, layer[0], LAYER_TOLERANCE, layer[1])
    return out


def _layer_text(found: dict) -> str:
    if found["node"] is None:
        return (f"no generator layer leaves {found['tolerance']:g} on frame 1 ({found['nodes_compared']} tensors "
                f"compared against ONNX Runtime CPU fp32)")
    return (f"first divergent generator layer on {found['candidate']}: {found['node']} ({found['op_type']}), "
            f"max abs {found['max_abs']:.3g} > {found['tolerance']:g}")


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
    if conv.get("explained") and "audio_source=aud_ave" in conv["best"]["conventions"]:
        out.append("output ignores the input audio: it matches the reference driven by the pack's aud_ave.bin")
    offset = found.get("offset") or {}
    if offset.get("explains"):
        out.append(offset["text"])
    if conv.get("explained"):
        out.append(conv["text"])
    stage = found.get("stages")
    if stage and stage["first_stage"] is not None:
        out.append(stage["text"])
    if found.get("layers"):
        out.append(_layer_text(found["layers"]))
    if not out or (conv and not conv.get("explained") and not offset.get("explains")):
        out.append(conv.get("text") or "no diagnosis recorded: run `synctalk-parity explain CONFIG` to compute one")
    return out
