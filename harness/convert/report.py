"""An audit as text: side by side with the source, each difference named, its verdict, and the parity cost
its precision predicts."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from harness.convert.audit import Audit
from harness.coreml.graph import Graph, describe_resample
from harness.text.tables import grid
from reference.atomic import write_atomic
from reference.errors import InputError

SHOWN_PER_STATUS = 5
STATUS_WORDS = {"match": "match", "scaled": "scaled", "transposed": "transposed", "random": "random/untrained",
                "zero": "zero", "differs": "differ", "shape": "differ in shape", "missing": "missing",
                "extra": "extra", "unread": "not read (weights absent)"}


def _io_rows(a: Audit) -> list[tuple]:
    rows = [("", "candidate", "source")]
    for role, cand, src in (("input", a.candidate.inputs, a.source.inputs),
                            ("output", a.candidate.outputs, a.source.outputs)):
        for k in range(max(len(cand), len(src))):
            rows.append((role, cand[k].describe() if k < len(cand) else "-", src[k].describe() if k < len(src) else "-"))
    return rows


def _precision_rows(a: Audit) -> list[tuple]:
    def storage(g: Graph) -> str:
        return ", ".join(f"{d} x{n}" for d, n in sorted(g.storage().items())) or "no weights"

    def compute(g: Graph) -> str:
        counts = [(d, sum(c.values())) for d, c in sorted(g.dtype_counts().items())]
        return "; ".join(f"{d}: {n} op{'s' if n != 1 else ''}" for d, n in counts)
    rows = [("", "candidate", "source"), ("storage", storage(a.candidate), storage(a.source)),
            ("compute", compute(a.candidate), compute(a.source))]
    for key in ("storage_precision", "compute_precision"):
        if a.candidate.declared.get(key):
            rows.append((f"declared {key.split('_')[0]}", str(a.candidate.declared[key]), ""))
    return rows


def _histogram_rows(a: Audit) -> list[tuple]:
    hc, hs = a.candidate.histogram(), a.source.histogram()
    onnx_names = {op.kind: op.type for op in a.source.ops}
    mil_names = {op.kind: op.type for op in a.candidate.ops}
    rows = [("op", "candidate", "source", "difference")]
    for kind in sorted(set(hc) | set(hs), key=lambda k: (-hs[k], k)):
        label = f"{onnx_names.get(kind, '-')} / {mil_names.get(kind, '-')}"
        diff = hc[kind] - hs[kind]
        rows.append((label, hc[kind], hs[kind], "" if not diff else f"{diff:+d}"))
    return rows


def _per_dtype(g: Graph) -> str:
    return "; ".join(f"{d}: " + ", ".join(f"{k} {n}" for k, n in c.most_common())
                     for d, c in sorted(g.dtype_counts().items()))


def _resample_rows(a: Audit) -> list[tuple]:
    rows = [("#", "source op", "candidate", "source")]
    cand, src = a.candidate.resamples(), a.source.resamples()
    for k in range(max(len(cand), len(src))):
        rows.append((k + 1, src[k].name if k < len(src) else "-",
                     describe_resample(cand[k].params) if k < len(cand) else "-",
                     describe_resample(src[k].params) if k < len(src) else "-"))
    return rows


def _weights_summary(a: Audit) -> str:
    counts = Counter(p.status for p in a.weights)
    parts = [f"{n} {STATUS_WORDS.get(s, s)}" for s, n in counts.most_common()]
    matched = [p for p in a.weights if p.ok]
    worst = max(matched, key=lambda p: p.max_abs / p.allowed if p.allowed else p.max_abs, default=None)
    within = f"within {a.precision} rounding" if a.precision in ("fp16", "bf16") else "within one fp32 ulp"
    text = (f"{len(a.source.weights)} source tensors, {len(a.candidate.weights)} candidate tensors, in graph order: "
            + ", ".join(parts))
    if worst is not None and worst.max_abs:
        text += f"; matches are {within} (largest difference {worst.max_abs:.3g}, allowed there {worst.allowed:.3g})"
    elif worst is not None:
        text += "; every matched value is the source's bit for bit"
    return text


def audit_lines(a: Audit) -> list[str]:
    """The audit as text, section by section; every failing difference marked with "!"."""
    c, s = a.candidate, a.source
    lines = [f"audit: {c.path} [{c.format}]", f"  against {s.path} [{s.format}]", "", "inputs and outputs"]
    lines += ["  " + line for line in grid(_io_rows(a))]
    lines += [f"  ! {d.text}" if d.fails else f"  note: {d.text}" for d in a.differences if d.section == "io"]
    lines += ["", "precision"] + ["  " + line for line in grid(_precision_rows(a))]
    lines += [f"  per-op dtypes, candidate: {_per_dtype(c)}", f"  per-op dtypes, source:    {_per_dtype(s)}"]
    lines += ["", "op histogram (ONNX / MIL names; constants and casts left out)"]
    lines += ["  " + line for line in grid(_histogram_rows(a))]
    lines += [f"  ! {d.text}" if d.fails else f"  note: {d.text}" for d in a.differences if d.section == "ops"]
    folding = [d for d in a.differences if d.section == "folding"]
    if folding:
        lines += ["", "folding (the source's shape arithmetic, at the pipeline's fixed shapes)"]
        lines += [f"  ! {d.text}" if d.fails else f"  note: {d.text}" for d in folding]
    if s.resamples() or c.resamples():
        lines += ["", "resampling"] + ["  " + line for line in grid(_resample_rows(a))]
        lines += [f"  ! {d.text}" for d in a.differences if d.section == "resampling"]
    lines += ["", "weights", f"  {_weights_summary(a)}"]
    shown: Counter = Counter()
    for d in a.differences:
        if d.section != "weights":
            continue
        shown[d.status] += 1
        if shown[d.status] <= SHOWN_PER_STATUS:
            lines.append(f"  ! {d.text}" if d.fails else f"  note: {d.text}")
    for status, n in shown.items():
        if n > SHOWN_PER_STATUS:
            lines.append(f"  ... and {n - SHOWN_PER_STATUS} more {status} tensors (all in --json)")
    return lines


def verdict(a: Audit) -> str:
    """FAITHFUL up to its precision, or NOT FAITHFUL and the sections that differ."""
    if a.faithful:
        absent = " (structure only: weights absent)" if a.candidate.weights_absent else ""
        return f"FAITHFUL up to {a.precision} precision{absent}"
    sections = {"io": "inputs/outputs", "ops": "ops", "folding": "folding", "resampling": "resampling",
                "weights": "weights"}
    absent = bool(a.candidate.weights_absent) and bool(a.failing("weights"))
    failing = [name for key, name in sections.items() if a.failing(key) and not (key == "weights" and absent)]
    parts = ([", ".join(failing) + " differ"] if failing else []) + (["weights absent"] if absent else [])
    return "NOT FAITHFUL: " + "; ".join(parts)


def verdict_line(a: Audit) -> str:
    return f"verdict: {verdict(a)}"


def write_json(path: Path, document: dict) -> None:
    """`document` as JSON at `path`, written whole (`reference.atomic.write_atomic`: no fixed temporary name
    that two conversions into one folder would share)."""
    write_atomic(path, json.dumps(document, indent=1, default=str))


def cost_line(result: Audit) -> tuple[str, dict | None]:
    """(what the candidate's precision predicts, its JSON) for a faithful audit."""
    if result.precision == "fp32":
        return ("fp32: no precision cost predicted (weights and arithmetic are the source's; Core ML's own kernels "
                "are judged on a Mac by the coreml backend)"), None
    if result.precision != "fp16":
        return f"{result.precision} storage: no parity cost predicted (the emulation is fp16)", None
    from harness.convert.cost import model_role, predict_cost
    from reference.models import ModelFiles
    try:
        cost = predict_cost(ModelFiles.from_dir(result.source.path.parent), model_role(result.source.path))
    except InputError as exc:
        return f"parity cost not predicted: {exc}", None
    return cost.line(), cost.to_json()
