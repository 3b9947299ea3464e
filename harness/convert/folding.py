"""The source's folded shape arithmetic checked against the source as the user gave it.

The translator folds a TorchScript export's shape arithmetic at the pipeline's fixed shapes
(`harness.coreml.fold`) and translates the folded copy. The audit compares the package with the
original model, so the folding itself is checked here: ONNX Runtime runs the original model once, at
those shapes, on seeded random inputs, with every folded node's outputs exposed, and each value the
folding computed is compared with ONNX Runtime's; the folded copy's outputs are compared with the
original's on the same inputs. A node whose folded value differs is named.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from harness.coreml.fold import Folded, fold
from reference.models import session_options

OUTPUT_RTOL = 1e-5
"""The folded copy's outputs may differ from the original's by this much of their magnitude (ONNX Runtime
may order a float sum differently once a shape is constant); a folded value itself must be equal."""


def _session(model: onnx.ModelProto):
    import onnxruntime as ort
    return ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])


def _inputs(folded: Folded) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for value in folded.model.graph.input:
        if value.name in {t.name for t in folded.model.graph.initializer}:
            continue
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        out[value.name] = rng.standard_normal(dims).astype(dtype)
    return out


def _exposed(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """`model` with `names` added to its outputs (their element types from shape inference)."""
    types = {v.name: v.type.tensor_type.elem_type for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output}
    out.graph.output.extend(helper.make_tensor_value_info(n, types.get(n, onnx.TensorProto.UNDEFINED), None)
                            for n in names if n not in present)
    return out


def _same(folded: np.ndarray, computed: np.ndarray) -> bool:
    if folded.shape != computed.shape:
        return False
    if folded.dtype.kind == "f":
        return bool(np.allclose(folded, computed, rtol=1e-6, atol=0.0, equal_nan=True))
    return bool(np.array_equal(folded, computed))


def _shown(value: np.ndarray) -> str:
    return str(value.tolist()) if value.size <= 8 else f"{value.dtype} {value.shape}"


def check_folding(path: Path) -> list[tuple[str, bool]]:
    """(text, fails) for the folding of the ONNX model at `path`: one line per folded node whose value differs
    from ONNX Runtime's on the original, one per output that differs, else one note; [] when nothing folds."""
    original = onnx.load(str(path))
    folded = fold(original, path)
    if not folded.nodes:
        return []
    names = list(folded.values)
    feeds = _inputs(folded)
    outputs = [o.name for o in original.graph.output]
    results = _session(_exposed(original, names)).run(outputs + names, feeds)
    reference, computed = results[:len(outputs)], dict(zip(names, results[len(outputs):]))
    lines = []
    for node in folded.nodes:
        for name in (o for o in node.output if o):
            if not _same(folded.values[name], np.asarray(computed[name])):
                lines.append((f"folding changed {node.op_type} {node.name or name}: {name} is "
                              f"{_shown(folded.values[name])} folded, {_shown(np.asarray(computed[name]))} "
                              "under ONNX Runtime on the source", True))
    worst = 0.0
    for name, want, got in zip(outputs, reference, _session(folded.model).run(outputs, feeds)):
        if got.shape != want.shape:
            lines.append((f"output {name!r} of the folded copy has shape {got.shape}, the source's {want.shape} "
                          "under ONNX Runtime", True))
            continue
        diff = float(np.abs(got - want).max(initial=0.0))
        worst = max(worst, diff)
        if diff > OUTPUT_RTOL * max(1.0, float(np.abs(want).max(initial=0.0))):
            lines.append((f"output {name!r} of the folded copy differs from the source's by {diff:.3g} under ONNX "
                          "Runtime", True))
    if not lines:
        kinds = ", ".join(f"{op} {n}" for op, n in Counter(n.op_type for n in folded.nodes).most_common())
        shapes = ", ".join(f"{k} {'x'.join(map(str, v[1]))}" for k, v in folded.fixed.items()) or "its static shapes"
        lines.append((f"{len(folded.nodes)} nodes of shape arithmetic folded at {shapes} ({kinds}); ONNX Runtime "
                      f"on the source computes the same {len(names)} values, and the same outputs (max abs diff "
                      f"{worst:.3g})", False))
    return lines
