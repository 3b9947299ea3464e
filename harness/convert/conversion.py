"""The conversion run of `convert coreml`: both ONNX models to Core ML ML programs, each audited before it
is placed.

The packages are written into a temporary folder beside OUT, audited against their sources there,
and moved into OUT only when both are faithful; a conversion that fails its own audit leaves OUT as
it was and exits 3 with the audit's differences (it is this tool's failure, not the models').
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from harness.convert.audit import Audit, audit
from harness.convert.report import verdict
from harness.coreml.package import PACKAGES, sources, write_package
from harness.coreml.read import read_model
from harness.coreml.translate import PRECISIONS
from reference.atomic import building
from reference.errors import ParityError
from reference.models import ENCODER_IO, GENERATOR_IO, ModelFiles, check_model


class ConversionFailed(ParityError):
    """The converted package does not pass its own audit."""

    exit_code = 3


@dataclass
class Converted:
    """One converted model: where it came from and went, how long it took, its audit."""

    role: str
    source: Path
    package: Path
    seconds: float
    audit: Audit

    def line(self) -> str:
        size = sum(f.stat().st_size for f in self.package.rglob("*") if f.is_file()) / 1e6
        ops = self.audit.candidate.histogram()
        return (f"{self.role}: {self.source} -> {self.package} ({self.audit.precision}, {size:.1f} MB, "
                f"{self.seconds:.1f} s): {verdict(self.audit)}; "
                f"{len(self.audit.weights)} weight tensors, {sum(ops.values())} ops")


def convert_models(models: Path, out: Path, precision: str = "fp16",
                   progress: bool = False) -> dict[str, Converted]:
    """Convert, audit and place both models (role -> its conversion, the audio encoder first);
    ConversionFailed (nothing placed) when an audit fails."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    files = ModelFiles.from_dir(models)
    check_model(files.encoder, ENCODER_IO)
    check_model(files.generator, GENERATOR_IO)
    out.mkdir(parents=True, exist_ok=True)
    done: dict[str, Converted] = {}
    with building(out / "converting") as staging:  # the packages are placed only when both are faithful
        for role, source in tqdm(list(sources(files).items()), desc="convert", unit="model", disable=not progress,
                                 leave=False):
            start = time.perf_counter()
            package = write_package(source, role, precision, staging / PACKAGES[role])
            seconds = time.perf_counter() - start
            result = audit(read_model(package), read_model(source))
            if not result.faithful:
                raise ConversionFailed(f"the {role} converted from {source} fails its own audit: "
                                       + "; ".join(d.text for d in result.differences if d.fails))
            done[role] = Converted(role, source, out / PACKAGES[role], seconds, result)
        for item in done.values():
            if item.package.exists():
                shutil.rmtree(item.package)
            (staging / item.package.name).replace(item.package)
    return done
