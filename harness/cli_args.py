"""The `synctalk-parity` argument parser: every subcommand, its options and their help."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.terminal import add_progress_args

PROFILE_NAMES = ("exact", "desktop", "mobile", "lossy")  # harness.tolerances.PROFILES, not imported: a slow import

EPILOG = """exit codes: 0 success, 1 parity/perf threshold failed (only that), 2 usage, config or input error,
3 infrastructure error (a backend could not run, an engine error, an unexpected crash: the traceback
goes to a log file under $SYNCTALK_PARITY_CACHE/logs, default ~/.cache/synctalk-parity/logs).
Docs: README.md and docs/ (pipeline, conventions, metrics, results, ports, coreml)."""


def _add_source_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--pack", "--sanders", dest="pack", type=Path, metavar="DIR",
                       help="pre-cut pack (full_body_img/, crops_328/, rois_320/, cache/crop_rectangles.json); "
                            "--sanders is the alias the existing ports use")
    group.add_argument("--dataset", type=Path, metavar="DIR",
                       help="raw SyncTalk_2D dataset (full_body_img/, landmarks/); rects come from landmarks")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    _add_source_args(p)
    p.add_argument("--audio", type=Path, required=True, metavar="WAV",
                   help="input audio; any rate, channel count and sample format soundfile reads")
    p.add_argument("--models", type=Path, required=True, metavar="DIR",
                   help="folder with audio_encoder.onnx and generator.onnx (or a models/ subfolder): "
                        "the synthetic ones or the real trained models")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="first N frames (default: all, one per padded audio feature row)")
    p.add_argument("--threads", type=int, default=0, metavar="T",
                   help="ONNX Runtime intra-op threads (default 0: all cores)")
    p.add_argument("--conventions", default="", metavar="KNOB=VALUE,...",
                   help="run a convention variant instead of the canonical pipeline, e.g. "
                        "'audio_window=tile,template_order=linear' (see docs/conventions.md)")


def _add_backend_args(p: argparse.ArgumentParser, only: str = "only this backend (repeatable)",
                      output: str = "override [run].output") -> None:
    """``--backend`` (repeatable) and ``--output``, as the commands that take a parity config have them."""
    p.add_argument("--backend", action="append", metavar="NAME", help=only)
    p.add_argument("--output", type=Path, metavar="DIR", help=output)


def _command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand's parser, with the common epilog."""
    return sub.add_parser(name, epilog=EPILOG, **kwargs)


def int_list(text: str) -> list[int]:
    """argparse type of --threads / --frames sweeps: "1,2,4" -> [1, 2, 4]."""
    from harness.bench.settings import parse_int_list
    return parse_int_list(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="synctalk-parity",
        description="Prove that ports of the SyncTalk_2D lip-sync pipeline produce the same frames, "
                    "find out why they do not, and measure how fast each one is.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _command(sub, "infer", help="run the canonical reference pipeline and write frames",
                 description="Run the canonical Python reference (audio -> mel -> encoder -> generator -> "
                             "composited frames). Frames are written as OUTPUT/frame_00001.png, 1-based; "
                             "frame files a previous run left in OUTPUT are removed first.")
    _add_run_args(p)
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for the frames")
    p.add_argument("--format", choices=("png", "jpg"), default="png",
                   help="png (lossless, default) or jpg (quality 95, lossy: for looking, not for parity)")
    p.add_argument("--png-level", type=int, default=0, choices=range(10), metavar="0-9",  # reference.output.PNG_LEVEL
                   help="PNG zlib compression level (default 0: stored, the fastest to write; 9: smallest)")
    p.add_argument("--dump-stages", type=Path, metavar="DIR",
                   help="also write every intermediate stage as .npy with an index.json")
    p.add_argument("--dump-frames", type=int, default=8, metavar="K",
                   help="frames whose generator output and patch are dumped (default 8)")
    add_progress_args(p)

    p = _command(sub, "demo", help="build models, run the reference on the demo data, print where and how fast",
                 description="Build (once, cached) the full synthetic models and run the reference on the "
                             "Sanders pack when ../shared/data or $SYNCTALK_PARITY_DATA exists, otherwise on "
                             "a generated synthetic pack; then a parity run of the reference against ONNX "
                             "Runtime CPU, OpenVINO and fp16 on speech and silence, with its table.")
    p.add_argument("--frames", type=int, default=250, metavar="N", help="frames to generate (default 250)")
    p.add_argument("--threads", type=int, default=0, metavar="T", help="ONNX Runtime threads (default: all cores)")
    p.add_argument("--output", type=Path, default=Path("parity-out/demo"), metavar="DIR",
                   help="output folder (default parity-out/demo)")
    p.add_argument("--size", choices=("full", "tiny"), default="full", help="synthetic model size (default full)")
    p.add_argument("--parity-frames", type=int, default=100, metavar="N",
                   help="frames of the parity run that follows (reference vs ORT CPU, OpenVINO, fp16; "
                        "default 100, 0 to skip)")
    add_progress_args(p)

    p = _command(sub, "run", help="parity run: every backend of a config against the reference, results.json",
                 description="Run the canonical reference once per audio, stream every configured backend's "
                             "frames against it, judge each against the tolerance profile and write "
                             "OUTPUT/results.json plus a console table. Exit 0 all passed, 1 a threshold "
                             "failed, 3 a backend could not run.")
    p.add_argument("--config", type=Path, required=True, metavar="TOML", help="parity config (see examples/)")
    _add_backend_args(p, only="run only this backend (repeatable)")
    p.add_argument("--frames", type=int, metavar="N", help="override [data].frames")
    p.add_argument("--no-explain", action="store_true",
                   help="skip the diagnosis (stage localisation, offset search, bill of deviations) that says "
                        "why a failing backend diverges ([run].explain)")
    p.add_argument("--video", action="store_true",
                   help="also write a side-by-side MP4 (reference | candidate | difference x8) per backend "
                        "and audio, with the audio muxed in ([run].video)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="render the HTML report into DIR at the end and print its path ([run].report)")
    p.add_argument("--no-cache", action="store_true",
                   help="compute the reference anew and leave the reference cache alone ([run].cache = false)")
    add_progress_args(p)

    p = _command(sub, "bench", help="benchmark every backend of a config: FPS, stage times, latency, RSS, CPU",
                 description="Run each backend of the config on the first audio with warm-up frames "
                             "(reported, excluded), repeats, a bare-generator baseline at the same thread "
                             "count, and optional thread and frame-count sweeps. Writes OUTPUT/bench.json "
                             "(results.json schema) and prints a table. [bench] in the config sets defaults.")
    p.add_argument("--config", type=Path, required=True, metavar="TOML", help="parity config (see examples/)")
    _add_backend_args(p)
    p.add_argument("--threads", type=int_list, metavar="T,T,...", help="thread sweep, e.g. 1,2")
    p.add_argument("--frames", type=int_list, metavar="N,N,...", help="frames sweep, e.g. 50,100,250")
    p.add_argument("--warmup", type=int, metavar="N", help="warm-up frames per run (default [bench].warmup or 5)")
    p.add_argument("--repeats", type=int, metavar="N", help="repeats per run (default [bench].repeats or 1)")
    p.add_argument("--no-overhead", action="store_true",
                   help="skip the parity overhead (one more run per backend: a `run` of it alone with the "
                        "reference cached, over the backend's own time)")
    add_progress_args(p)

    p = _command(sub, "compare", help="compare two folders of frames, say why they differ, give a verdict",
                 description="Pair the frames of two folders by name and report pixel-identical %%, "
                             "within +-1/2/8 %%, MAE, PSNR and SSIM, per frame and overall, the missing "
                             "and extra frames, and the verdict under a tolerance profile: exit 0 when "
                             "it holds, 1 when a threshold fails or a frame is missing or extra, 2 for "
                             "bad input. With --pack, also the image evidence, from the pack and the frames "
                             "alone (no models): template sequence, paste position, colour, resize kernel, "
                             "JPEG settings, audio drive, precision noise, each with the dB it explains "
                             "(docs/evidence.md).")
    p.add_argument("dir_a", type=Path, metavar="DIR_A", help="reference frames")
    p.add_argument("dir_b", type=Path, metavar="DIR_B", help="candidate frames")
    p.add_argument("--pattern", default="frame_*.*", help="glob of the frame files (default frame_*.*)")
    p.add_argument("--pack", type=Path, metavar="DIR",
                   help="the pack the frames came from: adds face, mouth and outside-face regions")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the per-frame metrics as JSON")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="desktop",
                   help="tolerance profile of the verdict (default desktop: PSNR >= 45 dB on every frame)")
    for name, what in (("psnr-min", "PSNR in dB"), ("ssim-min", "SSIM"), ("identical-pct-min", "pixel-identical %%")):
        p.add_argument(f"--{name}", type=float, metavar="X", help=f"override the profile's minimum {what}")
    p.add_argument("--index-base", type=int, choices=(0, 1), default=1,
                   help="number in the first frame's file name, for --pack rects (default 1: frame_00001)")
    for side, which in (("a", "DIR_A's"), ("b", "DIR_B's")):
        p.add_argument(f"--stages-{side}", type=Path, metavar="DIR",
                       help=f"{which} stage dumps (<stage>.npy, <stage>/<row>.f32 or debug_audio_*_frame<k>.bin): "
                            "with both, each stage they share is compared (relative error, correlation, scale)")
    add_progress_args(p)

    p = _command(sub, "report", help="render results.json files (several machines merge) into an HTML report",
                 description="Render one or more results.json files into a self-contained HTML report "
                             "(DIR/index.html, images beside it; opens offline). Nothing is re-run.")
    p.add_argument("results", type=Path, nargs="+", metavar="RESULTS.json", help="results files to merge")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="report folder")
    p.add_argument("--markdown", action="store_true",
                   help="also print a markdown summary to stdout (fits $GITHUB_STEP_SUMMARY)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write the verdicts as JUnit XML")

    p = _command(sub, "explain", help="name why each backend diverges: stage, convention, audio, offset, layer",
                 description="With a parity config: run it with every diagnosis on (stage localisation, "
                             "temporal offset, the bill of deviations (convention fit), first divergent layer for ONNX engines, "
                             "audio dependence across the audio matrix) and print each backend's named "
                             "causes. With a results.json: print the causes it records. A backend that "
                             "matches says \"no divergence\".")
    p.add_argument("path", type=Path, metavar="CONFIG.toml|RESULTS.json", help="parity config or results file")
    _add_backend_args(p, output="override [run].output (with a config)")
    p.add_argument("--frames", type=int, metavar="N", help="override [data].frames (with a config)")
    add_progress_args(p)

    p = _command(sub, "explain-layers", help="name the first generator layer where an engine diverges",
                 description="Run the generator with every intermediate tensor exposed on ONNX Runtime CPU "
                             "fp32 and on a candidate engine, on the real inputs of one frame, and name the "
                             "first node (in graph order) whose output differs by more than the tolerance, "
                             "with the five largest differences.")
    _add_run_args(p)
    p.add_argument("--candidate", required=True, metavar="ENGINE",
                   help="fp16 | openvino | onnxruntime:<Provider> | path to another generator .onnx")
    p.add_argument("--precision", choices=("f32", "bf16", "f16"), help="OpenVINO inference precision hint")
    p.add_argument("--frame", type=int, default=1, metavar="K", help="1-based frame whose inputs are used (default 1)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference allowed per tensor (default 1e-4)")

    p = sub.add_parser("fixtures", help="build synthetic models or a synthetic pack",
                       description="Deterministic builders: the same seed gives byte-identical files.")
    fsub = p.add_subparsers(dest="what", required=True, metavar="WHAT")
    m = fsub.add_parser("models", help="write audio_encoder.onnx and generator.onnx")
    m.add_argument("--out", type=Path, required=True, metavar="DIR")
    m.add_argument("--size", choices=("full", "tiny"), default="full",
                   help="full: architecture-faithful (12.2 M + 2.8 M params); tiny: same I/O, < 1 MB each")
    m.add_argument("--seed", type=int, default=0)
    k = fsub.add_parser("pack", help="write a synthetic pre-cut pack with the Sanders layout and a speech-like WAV")
    k.add_argument("--out", type=Path, required=True, metavar="DIR")
    k.add_argument("--frames", type=int, default=60, metavar="N", help="template frames (default 60)")
    k.add_argument("--seed", type=int, default=0)

    from harness.convert.cli import add_parsers
    add_parsers(sub, _command)
    p = _command(sub, "golden", help="write a golden reference run (manifest, features, lossless frames)",
                 description="Record the reference output of one run as a golden: manifest.json with "
                             "hashes and versions, features as .npy, the face region of every frame as "
                             "lossless PNG. Written atomically; an existing golden is kept unless --force.")
    _add_run_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="golden folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing golden")
    p.add_argument("--store-models", action="store_true",
                   help="store the two models in the golden too (the template files and the audio always are)")

    p = _command(sub, "check-golden", help="check a golden on this machine against a fresh reference run",
                 description="Run the reference again on the inputs a golden stores and compare stage by stage. "
                             "The profile is exact where the library versions and the CPU are the recorded ones, "
                             "--profile otherwise; the verdict names the libraries that changed version and the "
                             "first stage out of tolerance, by how much. Exit 0 passed, 1 failed, 2 input error.")
    p.add_argument("golden", type=Path, metavar="DIR", help="a golden written by `golden`")
    p.add_argument("--models", type=Path, metavar="DIR",
                   help="the models it was recorded with, for a golden that does not store them")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="desktop",
                   help="tolerance profile when libraries or CPU differ from the recording (default desktop)")
    p.add_argument("--threads", type=int, default=1, metavar="T", help="ONNX Runtime threads (default 1)")

    from harness.history.cli import add_commands
    add_commands(sub, _command)
    return parser
