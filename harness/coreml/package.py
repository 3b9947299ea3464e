"""Core ML packages of the pipeline's two models: their names, how one is written, and the per-user
cache of conversions that the `coreml` backend runs when no packages are given.

Each package records the identity of the ONNX model it was converted from (`model_sha256`: its graph
and every external data file) in its user-defined metadata (`SOURCE_KEY`), so a run can refuse
packages converted from other models.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from harness.coreml.fold import Folded
from harness.coreml.quiet import coremltools
from harness.coreml.translate import TARGET, convert_onnx
from reference.atomic import building, cached
from reference.errors import InputError
from reference.models import ModelFiles
from reference.provenance import cache_dir, model_sha256

PACKAGES = {"audio encoder": "AudioEncoder.mlpackage", "generator": "Generator.mlpackage"}
SOURCE_KEY = "synctalk-parity.source_sha256"
DESCRIPTIONS = {
    "audio encoder": ("SyncTalk_2D audio encoder: one 16-frame mel window -> 512-d embedding",
                      {"mel": "normalised log-mel window (1, 1, 80, 16), float32", "emb": "embedding (1, 512)"}),
    "generator": ("SyncTalk_2D U-Net generator: ROI + masked ROI and an audio window -> the 320x320 face patch",
                  {"input": "BGR ROI and masked ROI, /255, (1, 6, 320, 320)", "audio": "audio window (1, 32, 16, 16)",
                   "output": "BGR patch in [0, 1], (1, 3, 320, 320)"}),
}


def sources(files: ModelFiles) -> dict[str, Path]:
    return {"audio encoder": files.encoder, "generator": files.generator}


def _shape_text(shape: tuple) -> str:
    return "x".join("N" if d is None else str(d) for d in shape)


def fixed_note(folded: Folded) -> str:
    """What the description adds when the source's dynamic batch axis was fixed ("" when none was)."""
    if not folded.fixed:
        return ""
    return (" (batch fixed to 1: the source's batch axis is dynamic, this model takes one item per call: "
            + ", ".join(f"{name} {_shape_text(shape)}" for name, (_, shape) in folded.fixed.items()) + ")")


def write_package(source: Path, role: str, precision: str, path: Path) -> Path:
    """Convert `source` (the `role` model) to an ML program at `path`, replacing what is there."""
    model, folded = convert_onnx(source, precision)
    summary, descriptions = DESCRIPTIONS[role]
    model.short_description = summary + fixed_note(folded)
    for name, text in descriptions.items():
        if name in model.input_description:
            model.input_description[name] = text
        elif name in model.output_description:
            model.output_description[name] = text
    model.author = "synctalk-parity convert coreml"
    model.user_defined_metadata[SOURCE_KEY] = model_sha256(source)
    model.user_defined_metadata["synctalk-parity.precision"] = precision
    model.user_defined_metadata["synctalk-parity.source"] = source.name
    if folded.fixed:
        model.user_defined_metadata["synctalk-parity.fixed_inputs"] = "; ".join(
            f"{name} {_shape_text(declared)} -> {_shape_text(shape)}" for name, (declared, shape) in folded.fixed.items())
    if folded.nodes:
        model.user_defined_metadata["synctalk-parity.folded_nodes"] = str(len(folded.nodes))
    with building(path) as tmp:
        model.save(str(tmp / path.name))
        if path.exists():
            shutil.rmtree(path)
        (tmp / path.name).replace(path)
    return path


def package_paths(folder: Path) -> dict[str, Path]:
    """The two packages in `folder` (InputError naming the missing one)."""
    paths = {role: Path(folder) / name for role, name in PACKAGES.items()}
    for role, path in paths.items():
        if not path.is_dir():
            raise InputError(path, f"the {role} package is missing",
                             "convert the models with `synctalk-parity convert coreml --models DIR --out DIR`")
    return paths


def source_sha256(package: Path) -> str | None:
    """The source model identity a package records (None when it was not written here)."""
    from harness.coreml.mil_proto import load_spec
    from harness.coreml.read import package_spec_path
    return dict(load_spec(package_spec_path(package)).description.metadata.userDefined).get(SOURCE_KEY)


def _code_key() -> str:
    """Changes with the translator, this module and coremltools, so a stale conversion is never reused."""
    here = Path(__file__).parent
    digest = hashlib.sha256(coremltools().__version__.encode())
    for name in ("translate.py", "fold.py", "package.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:12]


def cached_packages(files: ModelFiles, precision: str) -> Path:
    """A folder with both packages converted from `files` at `precision`, built once per model pair."""
    key = (f"coreml-{TARGET}-{precision}-{model_sha256(files.encoder)[:12]}-{model_sha256(files.generator)[:12]}"
           f"-{_code_key()}")

    def build(tmp: Path) -> None:
        for role, source in sources(files).items():
            write_package(source, role, precision, tmp / PACKAGES[role])
    return cached(cache_dir() / key, build)
