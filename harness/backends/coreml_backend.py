"""`coreml`: the pipeline with its two models run natively by Core ML (macOS), through coremltools' prediction.

Options: `compute_units` (ALL | CPU_AND_NE | CPU_AND_GPU | CPU_ONLY, default ALL), `precision` (fp16 |
fp32, default fp16) of the conversion made on the fly, or `packages`: a folder with the
AudioEncoder.mlpackage and Generator.mlpackage of `synctalk-parity convert coreml` (or of a port's own
conversion) to run instead. Packages converted here record the identity of their source model (graph
and external data, `model_sha256`); such a package converted from other models than the run's is refused.

Off macOS Core ML cannot predict: the backend is skipped with that reason. On macOS a coremltools
without its prediction library is an error, not a skip: the platform can run it.
"""
from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from harness.backends.base import BackendFailed, BackendUnavailable, RunInputs
from harness.backends.inprocess import PipelineBackend
from harness.backends.options import check_options
from reference.models import ModelFiles, check_finite
from reference.provenance import model_sha256

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_AND_GPU", "CPU_ONLY")
PRECISIONS = ("fp16", "fp32")
NAMES = {"audio encoder": (("mel",), ("emb",)), "generator": (("input", "audio"), ("output",))}


class CoreMLModels:
    """The two packages loaded by Core ML, with the runner interface of reference.models.Models."""

    def __init__(self, files: ModelFiles, packages: dict[str, Path], compute_units: str) -> None:
        from harness.coreml.quiet import coremltools
        ct = coremltools()
        self.files = files
        self.packages = packages
        units = getattr(ct.ComputeUnit, compute_units)
        self.encoder = ct.models.MLModel(str(packages["audio encoder"]), compute_units=units)
        self.generator = ct.models.MLModel(str(packages["generator"]), compute_units=units)
        for role, model in (("audio encoder", self.encoder), ("generator", self.generator)):
            spec = model.get_spec().description
            have = (tuple(i.name for i in spec.input), tuple(o.name for o in spec.output))
            if tuple(sorted(have[0])) != tuple(sorted(NAMES[role][0])) or have[1] != NAMES[role][1]:
                raise BackendFailed(f"{packages[role]}: inputs {have[0]} and outputs {have[1]}, expected "
                                    f"{NAMES[role][0]} and {NAMES[role][1]}; `synctalk-parity audit-model` names "
                                    "what else differs")

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings of encoder windows, one window per prediction (the packages fix the batch to 1)."""
        out = [self.encoder.predict({"mel": windows[i:i + 1]})["emb"] for i in range(len(windows))]
        return check_finite(np.concatenate(out).astype(np.float32, copy=False), self.files.encoder, "emb")

    def generate(self, image: np.ndarray, audio: np.ndarray) -> np.ndarray:
        result = self.generator.predict({"input": image, "audio": audio})["output"]
        return check_finite(np.asarray(result, np.float32), self.files.generator, "output")


class CoreMLBackend(PipelineBackend):
    """The pipeline on Core ML, natively."""

    kind = "coreml"

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        check_options(name, self.options, {"kind": str, "compute_units": str, "precision": str, "packages": str})
        if self.options.get("compute_units", "ALL") not in COMPUTE_UNITS:
            raise ValueError(f"backend {name!r}: compute_units {self.options['compute_units']!r}; "
                             f"choose one of {', '.join(COMPUTE_UNITS)}")
        if self.options.get("precision", "fp16") not in PRECISIONS:
            raise ValueError(f"backend {name!r}: precision {self.options['precision']!r}; "
                             f"choose one of {', '.join(PRECISIONS)}")

    def check_available(self) -> None:
        if platform.system() != "Darwin":
            raise BackendUnavailable(f"Core ML prediction needs macOS; this is {platform.system()} "
                                     "(convert and audit-model run here, prediction does not)")
        try:
            from harness.coreml.quiet import coremltools
            coremltools()
            import coremltools.libcoremlpython  # noqa: F401  (the macOS prediction library)
        except Exception as exc:  # on macOS the platform can run it: a failure, never a skip
            raise BackendFailed(f"coremltools cannot predict on this Mac ({exc}); install the lock: "
                                "pip install -r requirements.lock") from None

    def packages(self, files: ModelFiles) -> dict[str, Path]:
        """The packages to run: the `packages` option's, checked against the run's models, or converted here."""
        from harness.coreml.package import cached_packages, package_paths, source_sha256, sources
        if "packages" not in self.options:
            return package_paths(cached_packages(files, self.options.get("precision", "fp16")))
        paths = package_paths(Path(self.options["packages"]).expanduser())
        for role, source in sources(files).items():
            recorded, identity = source_sha256(paths[role]), model_sha256(source)
            if recorded is not None and recorded != identity:
                raise BackendFailed(f"{paths[role]} was converted from another {role} than the run's {source} "
                                    f"(graph and weights, sha256 {recorded[:12]} vs {identity[:12]}): convert again")
        return paths

    def open_models(self, inputs: RunInputs) -> CoreMLModels:
        files = ModelFiles.from_dir(inputs.models)
        return CoreMLModels(files, self.packages(files), self.options.get("compute_units", "ALL"))

    def describe(self, models: CoreMLModels) -> dict:
        from harness.coreml.quiet import coremltools
        return {"engine": "coreml", "coremltools": coremltools().__version__, "macos": platform.mac_ver()[0],
                "compute_units": self.options.get("compute_units", "ALL"),
                "precision": self.options.get("precision", "fp16") if "packages" not in self.options else "as packaged",
                "packages": {role: str(path) for role, path in models.packages.items()}}
