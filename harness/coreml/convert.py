"""`convert coreml`: both ONNX models to Core ML ML programs, each audited before success is reported.

The packages are written into a temporary folder beside OUT, audited against their sources there,
and moved into OUT only when both are faithful; a conversion that fails its own audit leaves OUT as
it was and exits 3 with the audit's findings (it is this tool's failure, not the models').
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from harness.coreml.audit import Audit, audit
from harness.coreml.package import PACKAGES, sources, write_package
from harness.coreml.read import read_model
from harness.coreml.report import cost_line, verdict_line, write_json
from harness.coreml.translate import PRECISIONS, TARGET
from reference.errors import ParityError
from reference.models import ENCODER_IO, GENERATOR_IO, ModelFiles, check_model
from reference.provenance import sha256


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
                f"{self.seconds:.1f} s): {verdict_line(self.audit).split(': ', 1)[1]}; "
                f"{len(self.audit.weights)} weight tensors, {sum(ops.values())} ops")


def convert_models(models: Path, out: Path, precision: str = "fp16", progress: bool = False) -> list[Converted]:
    """Convert, audit and place both models; ConversionFailed (nothing placed) when an audit fails."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    files = ModelFiles.from_dir(models)
    check_model(files.encoder, ENCODER_IO)
    check_model(files.generator, GENERATOR_IO)
    out.mkdir(parents=True, exist_ok=True)
    done: list[Converted] = []
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=out))
    try:
        for role, source in tqdm(list(sources(files).items()), desc="convert", unit="model", disable=not progress,
                                 leave=False):
            start = time.perf_counter()
            package = write_package(source, role, precision, staging / PACKAGES[role])
            seconds = time.perf_counter() - start
            result = audit(read_model(package), read_model(source))
            if not result.faithful:
                raise ConversionFailed(f"the {role} converted from {source} fails its own audit: "
                                       + "; ".join(f.text for f in result.findings if f.fails))
            done.append(Converted(role, source, out / PACKAGES[role], seconds, result))
        for item in done:
            if item.package.exists():
                shutil.rmtree(item.package)
            (staging / item.package.name).replace(item.package)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return done


def convert_coreml(models: Path, out: Path, precision: str = "fp16", progress: bool = False,
                   predict: bool = True) -> int:
    """The `convert coreml` command: print each model's line, the predicted cost, write conversion.json."""
    start = time.perf_counter()
    done = convert_models(models, out, precision, progress)
    for item in done:
        print(item.line())
    print(f"converted and audited in {time.perf_counter() - start:.1f} s (Core ML target {TARGET}, ML program)")
    document = {"precision": precision, "target": TARGET,
                "models": {item.role: {"source": str(item.source), "source_sha256": sha256(item.source),
                                       "package": item.package.name, "seconds": round(item.seconds, 3),
                                       "audit": item.audit.to_json()} for item in done}}
    if predict and precision == "fp16":
        from harness.coreml.cost import predict_cost
        cost = predict_cost(ModelFiles.from_dir(models), "both models")
        print(cost.line())
        document["predicted_cost"] = cost.to_json()
    elif predict:
        print(cost_line(done[0].audit)[0])
    write_json(out / "conversion.json", document)
    print(f"conversion -> {out / 'conversion.json'}; audit again with: synctalk-parity audit-model "
          f"{out / PACKAGES['generator']} --against {done[1].source}")
    return 0

