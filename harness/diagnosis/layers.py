"""First divergent layer: run an ONNX model with its intermediate tensors exposed as graph outputs on
ONNX Runtime CPU fp32 (graph optimisation off, the baseline) and on a candidate, and name the first
node, in graph (topological) order, whose output differs by more than a tolerance.

Candidates:
- ``"fp16"``: the augmented model converted with onnxconverter-common (float32 I/O kept), ORT CPU;
- ``"openvino"``: the augmented model compiled by OpenVINO CPU (``candidate_options`` is its config,
  e.g. ``{"INFERENCE_PRECISION_HINT": "bf16"}``);
- ``"onnxruntime:<Provider>"``: the augmented model on that ONNX Runtime provider, optimisation off;
- a path to another ``.onnx`` file with the same node/tensor names (an edited or re-exported copy),
  run on ORT CPU.

Only tensors present in both runs are compared (a candidate may fuse or rename some away). When the
model has more than ``max_outputs`` nodes, outputs are exposed in rounds: every k-th node first, then
the nodes between the last good and the first bad sample (a divergence that goes back under the
tolerance between two samples can be missed there; the full exposure has no such blind spot).
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import onnx

from harness.verdicts.metrics import feature_drift
from reference.precision import fp16_model

__all__ = ["first_divergent_layer", "expose_outputs", "frame_inputs"]


def frame_inputs(source, audio_path: Path, models, i: int, conv=None) -> dict[str, np.ndarray]:
    """The generator's real inputs for 0-based frame `i` of the reference pipeline (image and audio window)."""
    from reference.conventions import Conventions
    from reference.pipeline import ReferencePipeline, audio_features
    conv = conv or Conventions()
    feats = audio_features(audio_path, models, conv, i + 1)
    pipeline = ReferencePipeline(source, models, conv)
    pipeline.check_frames(feats, i + 1, audio_path)
    image, audio = pipeline.generator_inputs(i, feats, pipeline.load_template(i))
    return {"input": image, "audio": audio}


def expose_outputs(model: onnx.ModelProto, names: list[str], typed: bool = True) -> onnx.ModelProto:
    """A copy of `model` with the tensors `names` added as graph outputs (typed where shape inference
    knows them and `typed`, name-only otherwise: ONNX Runtime accepts those)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    known = {}
    if typed:
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            known = {v.name: v for v in inferred.graph.value_info}
        except Exception:  # noqa: BLE001 - inference is only a help
            known = {}
    present = {o.name for o in out.graph.output}
    for name in names:
        if name in present:
            continue
        info = known.get(name)
        if info is None or not info.type.tensor_type.elem_type:
            info = onnx.ValueInfoProto(name=name)
        out.graph.output.append(info)
        present.add(name)
    return out


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _ort_run(model: onnx.ModelProto, inputs: dict, provider: str = "CPUExecutionProvider") -> dict:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=[provider])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def _openvino_run(model: onnx.ModelProto, inputs: dict, config: dict | None) -> dict:
    import openvino as ov
    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        compiled = core.compile_model(core.read_model(str(path)), "CPU", dict(config or {}))
    result = compiled.create_infer_request().infer(inputs)
    values = {}
    for port in compiled.outputs:
        array = np.array(result[port], copy=True)
        for name in port.get_names():
            values[name] = array
    return values


def _candidate_run(model: onnx.ModelProto, names: list[str], inputs: dict, candidate: str | Path,
                   options: dict | None) -> dict:
    if isinstance(candidate, Path) or str(candidate).endswith(".onnx"):
        other = onnx.load(str(candidate))
        return _ort_run(expose_outputs(other, names), inputs)
    if candidate == "fp16":
        # Convert first, then expose (name-only outputs, read as float16): converting a model whose
        # intermediate tensors are graph outputs makes onnxconverter-common emit mistyped casts.
        return _ort_run(expose_outputs(_to_fp16(model), names, typed=False), inputs)
    augmented = expose_outputs(model, names)
    if candidate == "openvino":
        return _openvino_run(augmented, inputs, options)
    if str(candidate).startswith("onnxruntime:"):
        return _ort_run(augmented, inputs, str(candidate).split(":", 1)[1])
    raise ValueError(f"unknown candidate {candidate!r}: use fp16, openvino, onnxruntime:<Provider> or a .onnx path")


_FP16_CACHE: dict[int, tuple[onnx.ModelProto, onnx.ModelProto]] = {}


def _to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` converted to float16 with float32 I/O, as the fp16 backend does (one conversion per
    model object)."""
    hit = _FP16_CACHE.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    converted = fp16_model(model)
    _FP16_CACHE.clear()
    _FP16_CACHE[id(model)] = (model, converted)
    return converted


def _numeric(value) -> bool:
    """A tensor a layer computes: floating point. Integer tensors are shape arithmetic and indices,
    which an engine may fold or clamp (OpenVINO reads the PyTorch export's Slice end 2**63 - 1 as
    another value) with no effect on the numbers; where they matter, the float outputs differ too."""
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size > 0


def _compare(model, order, indices, inputs, candidate, options) -> tuple[list[dict], float | None]:
    """Rows for the node indices `indices` (one per node: its worst output) and the max abs on the
    graph's real outputs."""
    real = [o.name for o in model.graph.output]
    names = [t for i in indices for t in order[i].output if t] + real
    base = _ort_run(expose_outputs(model, names), inputs)
    cand = _candidate_run(model, names, inputs, candidate, options)
    rows = []
    for i in indices:
        node, worst = order[i], None
        for tensor in node.output:
            a, b = base.get(tensor), cand.get(tensor)
            if not (_numeric(a) and _numeric(b)) or a.shape != np.shape(b):
                continue
            drift = feature_drift(a.astype(np.float32), np.asarray(b).astype(np.float32))
            if worst is None or drift["max_abs"] > worst["max_abs"]:
                worst = {"node": _node_label(node, i), "op_type": node.op_type, "output": tensor,
                         "max_abs": drift["max_abs"], "rel_l2": drift["rel_l2"], "index": i}
        if worst is not None:
            rows.append(worst)
    finals = [feature_drift(base[n].astype(np.float32), np.asarray(cand[n]).astype(np.float32))["max_abs"]
              for n in real if n in base and n in cand and _numeric(base[n]) and _numeric(cand[n])]
    return rows, (max(finals) if finals else None)


def first_divergent_layer(model: Path, inputs: dict[str, np.ndarray], candidate: str | Path,
                          tolerance: float = 1e-4, candidate_options: dict | None = None,
                          max_outputs: int = 400) -> dict:
    """The first node (graph order) whose output differs between ORT CPU fp32 and `candidate` by more
    than `tolerance` (max abs).

    Returns {"node", "op_type", "output", "max_abs", "rel_l2", "index", "nodes_compared",
    "final_max_abs", "largest" (top 5 compared nodes by max abs), "rounds" (runs made)}; "node" and
    its fields are None when every compared tensor is within tolerance.
    """
    proto = onnx.load(str(model))
    order = list(proto.graph.node)
    inputs = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
    compared: dict[int, dict] = {}
    finals: list[float] = []
    first = None
    rounds = 0
    lo, hi = 0, len(order)  # nodes [lo, hi) still to search; all sampled before lo were good
    while lo < hi:
        if hi - lo <= max_outputs:
            indices = list(range(lo, hi))
        else:
            k = math.ceil((hi - lo) / max(1, max_outputs - 1))
            indices = sorted(set(range(lo + k - 1, hi, k)) | {hi - 1})
        rows, final = _compare(proto, order, indices, inputs, candidate, candidate_options)
        rounds += 1
        if final is not None:
            finals.append(final)
        compared.update({r["index"]: r for r in rows})
        bad = [r for r in rows if r["max_abs"] > tolerance]
        if len(indices) == hi - lo:  # everything exposed: answer found (or none)
            first = bad[0] if bad else None
            break
        if not bad:
            break
        j = bad[0]["index"]
        good = [i for i in indices if i < j]
        new_lo = good[-1] + 1 if good else lo
        if new_lo == j:  # no unexposed node between the last good sample and j
            first = bad[0]
            break
        lo, hi = new_lo, j + 1
    empty = {"node": None, "op_type": None, "output": None, "max_abs": None, "rel_l2": None, "index": None}
    result = dict(first or empty)
    result.update({
        "nodes_compared": len(compared),
        "final_max_abs": finals[0] if finals else None,
        "largest": sorted(compared.values(), key=lambda r: r["max_abs"], reverse=True)[:5],
        "rounds": rounds,
        "tolerance": tolerance,
        "candidate": str(candidate),
    })
    return result
