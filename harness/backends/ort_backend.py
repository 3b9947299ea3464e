"""`onnxruntime`: the pipeline on any ONNX Runtime execution provider, with its options.

Options: `provider` (full name or cpu | cuda | coreml | tensorrt | dml | rocm | openvino),
`provider_options` (table, checked for CoreML), `intra_op_threads`, `inter_op_threads`,
`graph_optimization` (disable | basic | extended | all), `count_nodes` (bool, default true),
`spinning` (bool, default false: idle intra-op threads sleep instead of spinning), `generator_sessions`
(0, the default: on the CPU provider one generator session per core with the intra-op threads shared
out, frames in parallel as the reference runs them, and one session elsewhere; N: N sessions sharing
the intra-op threads), `strict_placement`
(bool, default false: ONNX Runtime's `session.disable_cpu_ep_fallback`, so a model the provider
cannot take whole fails at session creation instead of running partly on the CPU unseen).

`info` says which providers the session actually uses and how many graph kernels each runs, read
from one profiled inference: CoreML and TensorRT fuse what they take into partitions and leave the
rest to the CPU, silently; the kernel count per provider makes that visible. Where the provider
logs how many of the graph's nodes it takes (CoreML does, at session creation), `info` also has
`nodes_per_provider`; with any node or kernel on the CPU under another provider, `cpu_fallback`
says so in words (the console and the report show it).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort

from harness.backends.base import BackendFailed, BackendUnavailable, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.options import check_options
from reference.errors import InputError
from reference.models import ModelFiles, Models, cores_for, frame_workers, session_options

SHORT_NAMES = {
    "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "coreml": "CoreMLExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider", "dml": "DmlExecutionProvider", "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_FLAG = ("0", "1")
COREML_OPTIONS = {
    "MLComputeUnits": ("CPUOnly", "CPUAndGPU", "CPUAndNeuralEngine", "ALL"),
    "ModelFormat": ("MLProgram", "NeuralNetwork"),
    "RequireStaticInputShapes": _FLAG,
    "EnableOnSubgraphs": _FLAG,
    "SpecializationStrategy": ("Default", "FastPrediction"),
    "ProfileComputePlan": _FLAG,
    "AllowLowPrecisionAccumulationOnGPU": _FLAG,
    "ModelCacheDirectory": None,  # any path
}
ALLOWED = {"kind": str, "provider": str, "provider_options": dict, "intra_op_threads": int,
           "inter_op_threads": int, "graph_optimization": str, "count_nodes": bool, "spinning": bool,
           "strict_placement": bool, "generator_sessions": int}
NODES_LOGGED = re.compile(r"number of nodes in the graph: (\d+) number of nodes supported by (\w+): (\d+)")
"""The summary an execution provider logs at session creation (CoreML's GetCapability)."""


def provider_name(text: str) -> str:
    """Full execution-provider name from a short or full name."""
    return SHORT_NAMES.get(text.lower(), text)


def _provider_options(backend: str, provider: str, options: dict) -> dict[str, str]:
    """ONNX Runtime wants strings; booleans become "1"/"0". CoreML options are checked by name and value."""
    out = {}
    for key, value in options.items():
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        if provider == "CoreMLExecutionProvider":
            if key not in COREML_OPTIONS:
                raise ValueError(f"backend {backend!r}: unknown CoreML option {key!r}; "
                                 f"known: {', '.join(COREML_OPTIONS)}")
            allowed = COREML_OPTIONS[key]
            if allowed is not None and text not in allowed:
                raise ValueError(f"backend {backend!r}: CoreML {key}={text!r}; choose one of {', '.join(allowed)}")
        out[key] = text
    return out


class OrtBackend(PipelineBackend):
    """The pipeline on one ONNX Runtime execution provider."""

    kind = "onnxruntime"

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        check_options(name, self.options, ALLOWED)
        self.provider = provider_name(self.options.get("provider", "cpu"))
        self.provider_opts = _provider_options(name, self.provider, self.options.get("provider_options", {}))
        level = self.options.get("graph_optimization", "all")
        if level not in OPT_LEVELS:
            raise ValueError(f"backend {name!r}: graph_optimization {level!r}; choose one of {', '.join(OPT_LEVELS)}")
        if self.options.get("generator_sessions", 0) < 0:
            raise ValueError(f"backend {name!r}: generator_sessions must be 0 (automatic) or more, "
                             f"got {self.options['generator_sessions']}")
        if self.options.get("strict_placement") and self.provider == "CPUExecutionProvider":
            raise ValueError(f"backend {name!r}: strict_placement forbids a fallback to the CPU; "
                             "it needs a provider other than cpu")

    def check_available(self) -> None:
        available = ort.get_available_providers()
        if self.provider not in available:
            raise BackendUnavailable(f"{self.provider} is not available in this onnxruntime "
                                     f"{ort.__version__} build (available: {', '.join(available)})")

    def generator_sessions(self) -> tuple[int, int]:
        """(generator sessions, intra-op threads each): `generator_sessions`, or 0 for the reference's
        way on the CPU provider (`frame_workers`) and one session on any other provider."""
        threads, sessions = int(self.options.get("intra_op_threads", 0)), int(self.options.get("generator_sessions", 0))
        if sessions == 0:
            return frame_workers(threads) if self.provider == "CPUExecutionProvider" else (1, threads)
        return sessions, max(1, cores_for(threads) // sessions) if sessions > 1 else threads

    def session_options(self, threads: int | None = None) -> ort.SessionOptions:
        """The session options of the backend's options (`threads`: intra-op threads in place of
        `intra_op_threads`)."""
        threads = int(self.options.get("intra_op_threads", 0)) if threads is None else threads
        opts = session_options(threads, self.options.get("spinning", False))
        opts.inter_op_num_threads = int(self.options.get("inter_op_threads", 0))
        opts.graph_optimization_level = OPT_LEVELS[self.options.get("graph_optimization", "all")]
        if self.options.get("strict_placement"):
            opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        return opts

    def providers(self) -> list:
        """The provider list handed to ONNX Runtime: this provider with its options, then the CPU fallback
        (none with strict_placement: ONNX Runtime refuses a CPU provider listed with its fallback off)."""
        if self.provider == "CPUExecutionProvider":
            return [("CPUExecutionProvider", self.provider_opts)]
        if self.options.get("strict_placement"):
            return [(self.provider, self.provider_opts)]
        return [(self.provider, self.provider_opts), "CPUExecutionProvider"]

    def open_models(self, inputs: RunInputs) -> Models:
        try:
            sessions, threads = self.generator_sessions()
            return Models(ModelFiles.from_dir(inputs.models), providers=self.providers(),
                          options=self.session_options(), workers=sessions, worker_threads=threads,
                          generator_options=self.session_options(threads))
        except InputError:
            raise
        except Exception as exc:  # ONNX Runtime's own error types
            if not self.options.get("strict_placement"):
                raise
            raise BackendFailed(f"strict_placement: {self.provider} cannot run the whole model, and the CPU "
                                f"fallback is off: {str(exc).strip()}") from None

    def describe(self, models: Models) -> dict:
        info = {"engine": "onnxruntime", "onnxruntime": ort.__version__, "provider": self.provider,
                "provider_options": self.provider_opts, "session_providers": models.generator.get_providers(),
                "strict_placement": bool(self.options.get("strict_placement", False)),
                "generator_sessions": models.workers, "generator_session_threads": models.worker_threads}
        if self.options.get("count_nodes", True):
            kernels, log = kernel_placement(models.files.generator, self.providers(), self.session_options(),
                                            log=self.provider != "CPUExecutionProvider")
            info["kernels_per_provider"] = kernels
            nodes = nodes_from_log(log)
            if nodes:
                info["nodes_per_provider"] = nodes
            fallback = cpu_fallback(self.provider, kernels, nodes)
            if fallback:
                info["cpu_fallback"] = fallback
        return info


def nodes_from_log(log: str) -> dict[str, int]:
    """Nodes per provider from a provider's session-creation summary ("number of nodes in the graph: 120
    number of nodes supported by CoreML: 112" -> {CoreMLExecutionProvider: 112, CPUExecutionProvider: 8})."""
    found = NODES_LOGGED.findall(log)
    if not found:
        return {}
    total, short, taken = found[-1]
    return {provider_name(short): int(taken), "CPUExecutionProvider": int(total) - int(taken)}


def cpu_fallback(provider: str, kernels: dict[str, int], nodes: dict[str, int]) -> str:
    """A sentence when a run under another provider put generator nodes or kernels on the CPU ("" when not)."""
    if provider == "CPUExecutionProvider":
        return ""
    counts = nodes or kernels
    on_cpu = counts.get("CPUExecutionProvider", 0)
    if not on_cpu:
        return ""
    what = "nodes" if nodes else "kernels"
    return (f"{on_cpu} of {sum(counts.values())} generator {what} ran on the CPU, not on {provider} "
            "(set strict_placement = true to make that an error)")


@contextlib.contextmanager
def _stderr_to(path: Path):
    """The process's file descriptor 2 (where ONNX Runtime's C++ logger writes) goes to `path` in the block."""
    saved = os.dup(2)
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def kernel_placement(model: Path, providers: list, options: ort.SessionOptions,
                     log: bool = False) -> tuple[dict[str, int], str]:
    """How many kernels each provider ran in one profiled inference of `model` on zero inputs, and with
    `log` what ONNX Runtime logged (at info level) while it created the session."""
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        log_path = Path(tmp) / "session.log"
        with _stderr_to(log_path) if log else contextlib.nullcontext():
            if log:
                options.log_severity_level = 1
            session = ort.InferenceSession(str(model), options, providers=providers)
            feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
                     for i in session.get_inputs()}
            session.run(None, feeds)
            events = json.loads(Path(session.end_profiling()).read_text())
        text = log_path.read_text(errors="replace") if log else ""
    placed = {e["name"]: e["args"].get("provider") for e in events
              if e.get("cat") == "Node" and e.get("args", {}).get("provider")}
    return dict(Counter(placed.values())), text
