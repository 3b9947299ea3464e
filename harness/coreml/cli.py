"""`synctalk-parity audit-model` and `convert coreml`: their options and handlers."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.text.args import EPILOG, add_progress_args, command, progress_wanted


def add_parsers(sub) -> None:
    """The `audit-model` and `convert` subcommands."""
    p = command(sub, "audit-model", cmd_audit_model)
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
    csub = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    c = csub.add_parser("coreml", epilog=EPILOG, help="both models to Core ML ML programs (runs on Linux)",
                        description="Translate audio_encoder.onnx and generator.onnx into Core ML ML programs "
                                    "(AudioEncoder.mlpackage, Generator.mlpackage) with coremltools' MIL builder, "
                                    "no torch; the pipeline's input and output names are kept. Each package is "
                                    "audited against its source before it is placed in OUT; fp16 conversions "
                                    "also print the parity cost the fp16 emulation predicts. Exit 0 converted and "
                                    "faithful, 2 bad input (an op the translator does not take is named), 3 a "
                                    "package failed its own audit.")
    c.set_defaults(handler=cmd_convert)
    c.add_argument("--models", type=Path, required=True, metavar="DIR",
                   help="folder with audio_encoder.onnx and generator.onnx")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the two .mlpackage")
    c.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                   help="weights and compute precision (default fp16, Core ML's default; inputs stay float32)")
    c.add_argument("--no-cost", action="store_true", help="do not predict the parity cost of fp16")
    add_progress_args(c)


def cmd_audit_model(args: argparse.Namespace) -> int:
    """Audit a converted model (Core ML or ONNX) against its ONNX source.

    Read a converted model (.mlpackage, .mlmodel, .mlmodelc folder or another .onnx) and set it side by
    side with its ONNX source: inputs and outputs, storage and compute precision, the op histogram, each
    resampling op's mode and align_corners, and every weight tensor against its initializer (each
    difference named: random/untrained, scaled, transposed, missing). No Mac needed. Exit 0 faithful up
    to its precision (with the parity cost that precision predicts), 1 weights, I/O or ops differ, 2 bad
    input.
    """
    from harness.coreml.report import audit_model
    return audit_model(args.candidate, args.against, args.json, args.structure_only, predict=not args.no_cost)


def cmd_convert(args: argparse.Namespace) -> int:
    from harness.coreml.convert import convert_coreml
    return convert_coreml(args.models, args.out, args.precision, progress_wanted(args), predict=not args.no_cost)
