"""`synctalk-parity audit-model` and `synctalk-parity convert coreml`: their options and handlers."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.text.args import add_progress_args, command, progress_wanted


def add_parsers(sub) -> None:
    """The `audit-model` and `convert coreml` subcommands."""
    p = command(sub, "audit-model", audit_model)
    p.add_argument("candidate", type=Path, metavar="CANDIDATE",
                   help="the converted model: .mlpackage, .mlmodel, .mlmodelc folder or .onnx")
    p.add_argument("--against", type=Path, required=True, metavar="MODEL.onnx", help="the ONNX model it came from")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the whole audit as JSON")
    p.add_argument("--structure-only", action="store_true",
                   help="accept absent weights (a package copied without its blobs): judge structure and precision")
    p.add_argument("--no-cost", action="store_true",
                   help="do not predict the parity cost of a faithful fp16 conversion (a few reference frames)")

    p = sub.add_parser("convert", help="convert the pipeline's models to another runtime's format",
                       description="Convert the pipeline's two ONNX models for another runtime.")
    c = command(p.add_subparsers(dest="target", required=True, metavar="TARGET"), "coreml", convert_coreml)
    c.add_argument("--models", type=Path, required=True, metavar="DIR",
                   help="folder with audio_encoder.onnx and generator.onnx")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the two .mlpackage")
    c.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                   help="weights and compute precision (default fp16, Core ML's default; inputs stay float32)")
    c.add_argument("--no-cost", action="store_true", help="do not predict the parity cost of fp16")
    add_progress_args(c)


def audit_model(args: argparse.Namespace) -> int:
    """Audit a converted model (Core ML or ONNX) against its ONNX source.

    Read a converted model (.mlpackage, .mlmodel, .mlmodelc folder or another .onnx) and set it side by
    side with its ONNX source: inputs and outputs, storage and compute precision, the op histogram, each
    resampling op's mode and align_corners, and every weight tensor against its initializer (each
    difference named: random/untrained, scaled, transposed, missing). No Mac needed. Exit 0 faithful up to
    its precision (with the parity cost that precision predicts), 1 weights, I/O or ops differ, 2 bad
    input.
    """
    from harness.convert.audit import audit
    from harness.convert.report import audit_lines, cost_line, verdict_line, write_json
    from harness.coreml.read import read_model
    result = audit(read_model(args.candidate), read_model(args.against), args.structure_only)
    for line in audit_lines(result):
        print(line)
    print()
    print(verdict_line(result))
    document = result.to_json()
    if result.faithful and not args.no_cost:
        line, document["predicted_cost"] = cost_line(result)
        print(f"  {line}")
    if args.json is not None:
        write_json(args.json, document)
        print(f"audit -> {args.json}")
    return 0 if result.faithful else 1


def convert_coreml(args: argparse.Namespace) -> int:
    """Both models to Core ML ML programs (runs on Linux).

    Translate audio_encoder.onnx and generator.onnx into Core ML ML programs (AudioEncoder.mlpackage,
    Generator.mlpackage) with coremltools' MIL builder, no torch; the pipeline's input and output names
    are kept. Each package is audited against its source before it is placed in OUT; fp16 conversions
    also print the parity cost the fp16 emulation predicts. Exit 0 converted and faithful, 2 bad input (an
    op the translator does not take is named), 3 a package failed its own audit.
    """
    from harness.convert.conversion import convert_models
    from harness.convert.report import cost_line, write_json
    from harness.coreml.package import PACKAGES
    from harness.coreml.translate import TARGET
    from reference.provenance import model_sha256
    start = time.perf_counter()
    done = convert_models(args.models, args.out, args.precision, progress_wanted(args))
    for item in done.values():
        print(item.line())
    print(f"converted and audited in {time.perf_counter() - start:.1f} s (Core ML target {TARGET}, ML program)")
    document = {"precision": args.precision, "target": TARGET,
                "models": {role: {"source": str(item.source), "source_sha256": model_sha256(item.source),
                                  "package": item.package.name, "seconds": round(item.seconds, 3),
                                  "audit": item.audit.to_json()} for role, item in done.items()}}
    if not args.no_cost and args.precision == "fp16":
        from harness.convert.cost import predict_cost
        from reference.models import ModelFiles
        cost = predict_cost(ModelFiles.from_dir(args.models), "both models")
        print(cost.line())
        document["predicted_cost"] = cost.to_json()
    elif not args.no_cost:
        print(cost_line(done["generator"].audit)[0])
    write_json(args.out / "conversion.json", document)
    print(f"conversion -> {args.out / 'conversion.json'}; audit again with: synctalk-parity audit-model "
          f"{args.out / PACKAGES['generator']} --against {done['generator'].source}")
    return 0
