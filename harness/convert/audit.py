"""A converted model audited against its ONNX source, section by section, each difference named.

Sections: inputs and outputs (names, shapes, dtypes, layout), precision (storage and compute, per-op
dtype counts), the op histogram (with the positions of added or dropped ops where the two graphs
order their ops alike) and the conv geometry, the source's shape arithmetic that the translator
folds (`folding`: its values checked against ONNX Runtime on the source), each resampling op's mode
and coordinate transform, and every weight tensor (`weights`). A `Difference` that `fails` makes the conversion not faithful;
the others are notes (a fixed batch axis, fp16 storage, a different count of shape-only ops).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from harness.convert.folding import check_folding
from harness.convert.weights import WeightPair, compare_weights
from harness.coreml.graph import (
    NOT_COUNTED,
    ONNX_KINDS,
    SHAPE_ONLY,
    Graph,
    Op,
    TensorInfo,
    describe_resample,
)

FLOAT_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


@dataclass(frozen=True)
class Difference:
    """One named observation of one section; `fails` when it makes the conversion unfaithful. `status`, for
    the weights section, is what the text begins with (a tensor's status word, "weights absent", or "the
    weights look random/untrained"): the report counts the lines of each."""

    section: str  # io, precision, ops, folding, resampling, weights
    text: str
    fails: bool
    status: str = ""

    def to_json(self) -> dict:
        return {"section": self.section, "text": self.text, "fails": self.fails}


@dataclass
class Audit:
    """The result of `audit`: both graphs, the weight pairs and the differences."""

    candidate: Graph
    source: Graph
    weights: list[WeightPair]
    differences: list[Difference] = field(default_factory=list)
    structure_only: bool = False

    @property
    def faithful(self) -> bool:
        return not any(d.fails for d in self.differences)

    @property
    def precision(self) -> str:
        """The candidate's storage precision: fp16, fp32, bf16 or mixed."""
        names = {FLOAT_NAMES.get(d, d) for d in self.candidate.storage()}
        return names.pop() if len(names) == 1 else "mixed" if names else "none"

    def failing(self, section: str) -> list[Difference]:
        return [d for d in self.differences if d.fails and d.section == section]

    def to_json(self) -> dict:
        def graph(g: Graph) -> dict:
            return {"path": str(g.path), "format": g.format, "inputs": [vars(t) for t in g.inputs],
                    "outputs": [vars(t) for t in g.outputs], "histogram": dict(g.histogram()),
                    "dtype_counts": {k: dict(v) for k, v in g.dtype_counts().items()},
                    "storage": dict(g.storage()), "resampling": [op.params | {"op": op.name} for op in g.resamples()],
                    "weights_absent": g.weights_absent, "declared": g.declared}
        return {"faithful": self.faithful, "precision": self.precision, "structure_only": self.structure_only,
                "candidate": graph(self.candidate), "source": graph(self.source),
                "findings": [d.to_json() for d in self.differences], "weights": [p.to_json() for p in self.weights]}


def _layout(cand: tuple, src: tuple) -> str | None:
    """'NHWC' (or the permutation) when `cand` is `src`'s shape with its axes permuted."""
    if len(cand) != len(src) or None in cand or None in src or sorted(cand) != sorted(src) or cand == src:
        return None
    if len(src) == 4 and cand == (src[0], src[2], src[3], src[1]):
        return "NHWC where the source is NCHW"
    return f"axes permuted: {cand} where the source has {src}"


def _compare_tensor(role: str, cand: TensorInfo, src: TensorInfo) -> list[Difference]:
    out = []
    if cand.kind != src.kind:
        out.append(Difference("io", f"{role} {src.name!r} is {cand.kind} in the candidate, {src.kind} in the source",
                              True))
        return out
    if cand.dtype != src.dtype:
        out.append(Difference("io", f"{role} {src.name!r} is {cand.dtype} in the candidate, {src.dtype} in the "
                              "source", True))
    layout = _layout(cand.shape, src.shape)
    if layout:
        out.append(Difference("io", f"{role} {src.name!r}: layout {layout}", True))
    elif not _compatible(cand.shape, src.shape):
        out.append(Difference("io", f"{role} {src.name!r} has shape {cand.shape_text()} in the candidate, "
                              f"{src.shape_text()} in the source", True))
    else:
        fixed = [i for i, (c, s) in enumerate(zip(cand.shape, src.shape)) if s is None and c is not None]
        if fixed:
            out.append(Difference("io", f"{role} {src.name!r}: axis {fixed[0]} fixed to {cand.shape[fixed[0]]} where "
                                  "the source's is dynamic (one item per call)", False))
        free = [i for i, (c, s) in enumerate(zip(cand.shape, src.shape)) if c is None and s is not None]
        if free:
            out.append(Difference("io", f"{role} {src.name!r}: axis {free[0]} dynamic in the candidate where the "
                                  f"source's is {src.shape[free[0]]} (it takes the source's shape)", False))
    return out


def _compatible(cand: tuple, src: tuple) -> bool:
    """Same rank, and every axis the same where both are fixed (a dynamic axis takes any size)."""
    return len(cand) == len(src) and all(c is None or s is None or c == s for c, s in zip(cand, src))


def audit_io(cand: list[TensorInfo], src: list[TensorInfo], role: str) -> list[Difference]:
    """Inputs (or outputs) matched by name; an unmatched pair of the same shape and dtype is a rename."""
    out = []
    by_name = {t.name: t for t in cand}
    unmatched = [t for t in cand if t.name not in {s.name for s in src}]
    for s in src:
        if s.name in by_name:
            out += _compare_tensor(role, by_name[s.name], s)
            continue
        twin = next((c for c in unmatched if c.dtype == s.dtype and _compatible(c.shape, s.shape)), None)
        twin = twin or (unmatched[0] if len(unmatched) == 1 and len(src) == len(cand) else None)
        if twin is None:
            out.append(Difference("io", f"{role} {s.name!r} of the source is missing from the candidate", True))
            continue
        unmatched.remove(twin)
        out.append(Difference("io", f"{role} {s.name!r} of the source is named {twin.name!r} in the candidate", True))
        out += _compare_tensor(role, twin, s)
    out += [Difference("io", f"extra {role} {c.name!r} in the candidate", True) for c in unmatched]
    return out


def audit_precision(cand: Graph, src: Graph) -> list[Difference]:
    """Storage and compute precision, side by side: notes, since the weights say whether it is faithful."""
    def summary(g: Graph) -> str:
        storage = ", ".join(f"{n} {d}" for d, n in sorted(g.storage().items())) or "no weights"
        compute = "; ".join(f"{d}: " + ", ".join(f"{k} {n}" for k, n in c.most_common())
                            for d, c in sorted(g.dtype_counts().items()))
        return f"storage {storage}; compute {compute}"
    return [Difference("precision", f"candidate: {summary(cand)}", False),
            Difference("precision", f"source: {summary(src)}", False)]


def _kind_name(kind: str, src: Graph) -> str:
    onnx = [op.type for op in src.ops if op.kind == kind][:1] or sorted(k for k, v in ONNX_KINDS.items() if v == kind)
    return f"{onnx[0]}/{kind}" if onnx else kind


def _locate(cand: list[Op], src: list[Op], expected: int) -> list[str]:
    """Where ops were added or dropped, if the two op sequences align with exactly `expected` changes."""
    def seq(ops: list[Op]) -> list[Op]:
        return [op for op in ops if op.kind not in NOT_COUNTED and op.kind not in SHAPE_ONLY]
    a, b = seq(src), seq(cand)
    lines = []
    matcher = SequenceMatcher(None, [o.kind for o in a], [o.kind for o in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("delete", "replace"):
            lines += [f"dropped: {op.type} {op.name} (source op {i1 + k + 1}, "
                      f"after {a[i1 + k - 1].name if i1 + k else 'the inputs'})" for k, op in enumerate(a[i1:i2])]
        if tag in ("insert", "replace"):
            lines += [f"added: {op.type} {op.name} (candidate op {j1 + k + 1})" for k, op in enumerate(b[j1:j2])]
    return lines if len(lines) == expected else []


def audit_ops(cand: Graph, src: Graph) -> list[Difference]:
    """The op histogram and, where the conv counts agree, each conv's geometry."""
    out = []
    hc, hs = cand.histogram(), src.histogram()
    changed = 0
    for kind in sorted(set(hc) | set(hs)):
        if hc[kind] == hs[kind]:
            continue
        shape_only = kind in SHAPE_ONLY
        changed += 0 if shape_only else abs(hc[kind] - hs[kind])
        more = "more" if hc[kind] > hs[kind] else "fewer"
        note = " (moves no values: a note)" if shape_only else ""
        out.append(Difference("ops", f"{_kind_name(kind, src)}: {hc[kind]} in the candidate, {hs[kind]} in the source "
                              f"({abs(hc[kind] - hs[kind])} {more}){note}", not shape_only))
    if changed:
        located = _locate(cand.ops, src.ops, changed)
        out += [Difference("ops", line, True) for line in located]
    convs_c = [op for op in cand.ops if op.kind == "conv"]
    convs_s = [op for op in src.ops if op.kind == "conv"]
    if len(convs_c) == len(convs_s):
        for k, (c, s) in enumerate(zip(convs_c, convs_s), 1):
            diffs = [f"{key} {c.params.get(key)} vs {s.params.get(key)}" for key in ("strides", "dilations", "groups", "pad")
                     if c.params.get(key) != s.params.get(key)
                     and not (key == "pad" and (isinstance(c.params.get(key), str) or isinstance(s.params.get(key), str)))]
            if diffs:
                out.append(Difference("ops", f"conv {k} ({s.name}): " + ", ".join(diffs), True))
    return out


def audit_resampling(cand: Graph, src: Graph) -> list[Difference]:
    """Each resampling op's kernel, coordinate transform and scale against the source's, in graph order."""
    out = []
    for k, (c, s) in enumerate(zip(cand.resamples(), src.resamples()), 1):
        same = {key: c.params.get(key) == s.params.get(key) for key in ("mode", "coordinates", "scale")}
        if c.params.get("scale") is None or s.params.get("scale") is None:
            same["scale"] = True
        if not all(same.values()):
            wrong = ", ".join(key for key, ok in same.items() if not ok)
            out.append(Difference("resampling", f"resample {k} ({s.name}): {describe_resample(c.params)} in the "
                                  f"candidate, {describe_resample(s.params)} in the source ({wrong} differ)", True))
    return out


def _size(p: WeightPair) -> str:
    """How far a pair's worst value is, in units of what the candidate's dtype allows there."""
    if not math.isfinite(p.ulps):
        return f"a value beyond what {p.candidate.dtype} holds"
    return f"up to {p.ulps:.3g} ulp of {p.candidate.dtype} where 1 is allowed"


def _weight_differences(pairs: list[WeightPair], cand: Graph, structure_only: bool) -> list[Difference]:
    out = []
    if cand.weights_absent:
        out.append(Difference("weights", f"weights absent: {cand.weights_absent}; structure and precision checked, "
                              "the weight values not", not structure_only, "weights absent"))
    for p in pairs:
        if p.ok or p.status == "unread":
            continue
        w = p.source or p.candidate
        where = f"{w.name} {tuple(w.shape)} ({w.op})"
        if p.source is not None and p.candidate is not None and p.candidate.name != p.source.name:
            where += f" = candidate {p.candidate.name}"
        label = {"random": "random/untrained", "shape": "shape differs"}.get(p.status, p.status)
        size = f" ({_size(p)}; max abs diff {p.max_abs:.3g})" if p.ulps else ""
        out.append(Difference("weights", f"{label}: {where}: {p.detail}{size}", True, label))
    statuses = Counter(p.status for p in pairs)
    if statuses["random"] >= 2 and statuses["random"] * 2 >= len(pairs) - statuses["match"]:
        values = sum(p.source.values.size for p in pairs if p.status == "random")
        total = sum(p.source.values.size for p in pairs if p.source is not None and p.source.values is not None)
        out.insert(0, Difference("weights", f"the weights look random/untrained: {statuses['random']} of "
                                 f"{len(pairs)} tensors ({100 * values / max(total, 1):.1f} % of the values) are "
                                 "unrelated to the source's", True, "the weights look random/untrained"))
    return out


def audit_folding(source: Graph) -> list[Difference]:
    """The source's shape arithmetic, folded for the translation, checked against ONNX Runtime on the source
    as given (`folding`); nothing when nothing was folded."""
    if source.format != "ONNX" or not any(op.kind == "folded" for op in source.ops):
        return []
    return [Difference("folding", text, fails) for text, fails in check_folding(source.path)]


def audit(candidate: Graph, source: Graph, structure_only: bool = False) -> Audit:
    """Compare `candidate` with its `source`, section by section."""
    pairs = compare_weights(source.weights, candidate.weights)
    differences = (audit_io(candidate.inputs, source.inputs, "input")
                   + audit_io(candidate.outputs, source.outputs, "output")
                   + audit_precision(candidate, source) + audit_ops(candidate, source) + audit_folding(source)
                   + audit_resampling(candidate, source) + _weight_differences(pairs, candidate, structure_only))
    return Audit(candidate, source, pairs, differences, structure_only)
