"""`synctalk-parity explain-layers`: its options and handler."""
from __future__ import annotations

import argparse

from harness.text.args import (
    add_run_args,
    command,
    conventions_of,
    models_of,
    source_of,
)


def add_parsers(sub) -> None:
    """The `explain-layers` subcommand."""
    p = command(sub, "explain-layers", cmd_explain_layers)
    add_run_args(p)
    p.add_argument("--candidate", required=True, metavar="ENGINE",
                   help="fp16 | openvino | onnxruntime:<Provider> | path to another generator .onnx")
    p.add_argument("--precision", choices=("f32", "bf16", "f16"), help="OpenVINO inference precision hint")
    p.add_argument("--frame", type=int, default=1, metavar="K", help="1-based frame whose inputs are used (default 1)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed per tensor (default 1e-4)")


def cmd_explain_layers(args: argparse.Namespace) -> int:
    """Name the first generator layer where an engine diverges.

    Run the generator with every intermediate tensor exposed on ONNX Runtime CPU fp32 and on a candidate
    engine, on the real inputs of one frame, and name the first node (in graph order) whose output
    differs by more than the tolerance, with the five largest differences.
    """
    from harness.diagnosis.layers import first_divergent_layer, frame_inputs
    models = models_of(args, frames_in_parallel=False)  # one frame's inputs: one session
    inputs = frame_inputs(source_of(args), args.audio, models, args.frame - 1, conventions_of(args.conventions))
    options = {"INFERENCE_PRECISION_HINT": args.precision} if args.precision else None
    result = first_divergent_layer(models.files.generator, inputs, args.candidate, args.tolerance, options)
    print(f"{result['nodes_compared']} tensors compared, frame {args.frame}, candidate {args.candidate}; "
          f"final output max abs {result['final_max_abs']:.3g}")
    if result["node"] is None:
        print(f"no layer leaves the tolerance {args.tolerance:g}")
    else:
        print(f"first divergent layer: {result['node']} ({result['op_type']}, node {result['index']} in graph "
              f"order): max abs {result['max_abs']:.3g} > {args.tolerance:g}, relative L2 {result['rel_l2']:.3g}")
    for item in result["largest"]:
        print(f"  largest: {item['node']} ({item['op_type']}): max abs {item['max_abs']:.3g}")
    return 0
