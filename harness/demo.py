"""`synctalk-parity demo`: cached synthetic models, the demo data, one reference run, FPS printed, then
a parity run with its table and report; the command's options and handler."""
from __future__ import annotations

import argparse
from pathlib import Path

from fixtures.locate import demo_data
from harness.text.args import add_progress_args, command, progress_wanted
from reference.provenance import cache_dir

DEMO_BACKENDS = """
[backends.ort_cpu]
kind = "onnxruntime"
provider = "cpu"

[backends.openvino]
kind = "openvino"
thresholds = {{ profile = "mobile", feature_max_abs = {bf16_features} }}

[backends.fp16]
kind = "fp16"
thresholds = {{ profile = "mobile", feature_max_abs = {fp16_features} }}
"""
FP16_FEATURES = 0.02  # fp16 embeddings drift by a few 1e-3 (values up to ~5); see docs/metrics.md, Tolerance profiles
BF16_FEATURES = 0.1  # OpenVINO runs bf16 by default where the CPU has it: 8 bits of mantissa


def write_demo_config(out: Path, pack: Path, audio: Path, models: Path, frames: int) -> Path:
    """The parity config the demo runs: reference vs ONNX Runtime CPU, OpenVINO and fp16, speech and silence."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "demo.toml"
    path.write_text(f"""# Written by `synctalk-parity demo`; run it again with: synctalk-parity run --config {path}
[data]
pack = "{pack}"
models = "{models}"
audio = ["{audio}", "silence"]
frames = {frames}

[run]
output = "{out / 'parity'}"
profile = "desktop"
""" + DEMO_BACKENDS.format(fp16_features=FP16_FEATURES, bf16_features=BF16_FEATURES))
    return path


def run_demo(frames: int = 250, threads: int = 0, output: Path = Path("parity-out/demo"), size: str = "full",
             parity_frames: int = 100, progress: bool = True) -> int:
    """Run the reference, print where the frames went and how fast, then a parity run and its table."""
    from fixtures.cache import cached_models
    from harness.bench.baseline import bare_generator, ways_text
    from reference.data import open_source
    from reference.infer import infer
    from reference.models import ModelFiles, reference_models
    print(f"models: synthetic {size} (cached in {cache_dir()}) ...", flush=True)
    models_dir = cached_models(size)
    files = ModelFiles.from_dir(models_dir)
    data = demo_data(frames)
    pack, audio = data.pack, data.audio
    print(f"data: {data.description}\naudio: {audio}", flush=True)
    result = infer(open_source(pack), audio, reference_models(files, threads), Path(output) / "frames", frames,
                   progress=progress)
    bare = bare_generator(models_dir, threads=threads, frames=min(30, frames))
    where = "all cores" if threads == 0 else f"{threads} threads"
    size_mb = sum(f.stat().st_size for f in result.output.glob("frame_*.png")) / 1e6
    print(f"\n{result.frames} frames -> {result.output.resolve()}/frame_00001.png ... ({size_mb:.0f} MB: lossless "
          f"PNG \"fast\", as quick to write as level 0 at a seventh of its size; `infer --png-level 0-9` "
          f"picks a zlib level)")
    print(f"reference: {result.fps:.2f} FPS end to end ({result.seconds:.1f} s, audio features "
          f"{result.audio_seconds:.2f} s)")
    print(f"bare generator: {bare['fps']:.2f} FPS ({where}, {bare['way']}: the fastest of every way); "
          f"reference / bare = {result.fps / bare['fps']:.2f}\n  every way: {ways_text(bare['ways'])}")
    if parity_frames <= 0:
        return 0
    from harness.runs.config import load_config
    from harness.runs.console import results_table
    from harness.runs.parity import exit_code, run_parity
    config = write_demo_config(Path(output).resolve(), pack, audio, models_dir, parity_frames)
    print(f"\nparity run, {parity_frames} frames x (speech, silence): reference vs ort_cpu, openvino, fp16 ...",
          flush=True)
    results, path = run_parity(load_config(config), progress=progress)
    print(results_table(results))
    from reports.html import render_html
    report = render_html([path], Path(output).resolve() / "report")
    print(f"\nresults -> {path}\nconfig  -> {config}\nreport  -> {report}")
    return exit_code(results)


def add_parsers(sub) -> None:
    """The `demo` subcommand."""
    p = command(sub, "demo", _cmd_demo)
    p.add_argument("--frames", type=int, default=250, metavar="N", help="frames to generate (default 250)")
    p.add_argument("--threads", type=int, default=0, metavar="T", help="cores for ONNX Runtime (default 0: all)")
    p.add_argument("--output", type=Path, default=Path("parity-out/demo"), metavar="DIR",
                   help="output folder (default parity-out/demo)")
    p.add_argument("--size", choices=("full", "tiny"), default="full", help="synthetic model size (default full)")
    p.add_argument("--parity-frames", type=int, default=100, metavar="N",
                   help="frames of the parity run that follows (reference vs ORT CPU, OpenVINO, fp16; "
                        "default 100, 0 to skip)")
    add_progress_args(p)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build models, run the reference on the demo data, print where and how fast.

    Build (once, cached) the full synthetic models and run the reference on the Sanders pack when
    ../shared/data or $SYNCTALK_PARITY_DATA exists, otherwise on a generated synthetic pack; then a
    parity run of the reference against ONNX Runtime CPU, OpenVINO and fp16 on speech and silence, with
    its table.
    """
    return run_demo(args.frames, args.threads, args.output, args.size, args.parity_frames, progress_wanted(args))
