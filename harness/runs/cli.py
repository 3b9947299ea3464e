"""The commands that run the reference and judge against it: `infer`, `golden`, `check-golden`, `run`,
`explain` and `compare`; their options and handlers."""
from __future__ import annotations

import argparse
import shlex
from functools import partial
from pathlib import Path
from typing import Callable

from harness.text.args import (
    PROFILE_NAMES,
    add_backend_args,
    add_progress_args,
    add_run_args,
    command,
    conventions_of,
    models_of,
    progress_wanted,
    source_of,
)

RenderReport = Callable[[list[Path], Path], Path]  # (results files, folder) -> index.html


def add_parsers(sub, render_report: RenderReport) -> None:
    """The subcommands of this module; `render_report` renders `run --report DIR` (the reports layer's)."""
    _add_infer(sub)
    _add_run(sub, render_report)
    _add_compare(sub)
    _add_explain(sub)
    _add_golden(sub)
    _add_check_golden(sub)


def _add_infer(sub) -> None:
    p = command(sub, "infer", cmd_infer)
    add_run_args(p)
    p.add_argument("--output", type=Path, required=True, metavar="DIR", help="folder for the frames")
    p.add_argument("--format", choices=("png", "jpg"), default="png",
                   help="png (lossless, default) or jpg (quality 95, lossy: for looking, not for parity)")
    p.add_argument("--png-level", type=_png_level, default="fast", metavar="fast|0-9",  # reference.output.PNG_LEVEL
                   help="PNG compression: fast (the default: ISA-L's deflate, as fast to write as level 0 and "
                        "7x smaller) or a zlib level (0: stored, 2.8 MB a 1280x720 frame; 9: smallest, slowest)")
    p.add_argument("--dump-stages", type=Path, metavar="DIR",
                   help="also write every intermediate stage as .npy with an index.json")
    p.add_argument("--dump-frames", type=int, default=8, metavar="K",
                   help="frames whose generator output and patch are dumped (default 8)")
    add_progress_args(p)


def _png_level(text: str) -> int | str:
    """`--png-level`'s value: "fast" or a zlib level 0-9."""
    if text == "fast":
        return text
    if text in tuple("0123456789"):
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a PNG level: use fast or 0-9")


def cmd_infer(args: argparse.Namespace) -> int:
    """Run the canonical reference pipeline and write frames.

    Run the canonical Python reference (audio -> mel -> encoder -> generator -> composited frames).
    Frames are written as OUTPUT/frame_00001.png, 1-based; frame files a previous run left in OUTPUT are
    removed first.
    """
    from reference.infer import infer
    conv = conventions_of(args.conventions)
    result = infer(source_of(args), args.audio, models_of(args), args.output, args.frames,
                   args.format, conv, args.dump_stages, args.dump_frames, args.png_level, progress_wanted(args))
    print(f"{result.frames} frames -> {result.output}/frame_00001.{args.format} ... "
          f"({result.fps:.2f} FPS end to end, {result.seconds:.1f} s)")
    if result.stage_dump:
        print(f"stages -> {result.stage_dump}/index.json")
    return 0


def _add_run(sub, render_report: RenderReport) -> None:
    p = command(sub, "run", partial(cmd_run, render_report=render_report))
    p.add_argument("--config", type=Path, required=True, metavar="TOML", help="parity config (see examples/)")
    add_backend_args(p, only="run only this backend (repeatable)")
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


def cmd_run(args: argparse.Namespace, render_report: RenderReport) -> int:
    """Parity run: every backend of a config against the reference, results.json.

    Run the canonical reference once per audio, stream every configured backend's frames against it,
    judge each against the tolerance profile and write OUTPUT/results.json plus a console table. Exit 0
    all passed, 1 a threshold failed, 3 a backend could not run.
    """
    from harness.runs.config import load_config
    from harness.runs.console import golden_notes, results_table
    from harness.runs.parity import exit_code, run_parity
    from harness.text.terminal import colour_enabled
    cfg = load_config(args.config, only=args.backend, output=args.output, frames=args.frames)
    cfg.video = cfg.video or args.video
    cfg.explain = cfg.explain and not args.no_explain
    cfg.cache = cfg.cache and not args.no_cache
    results, path = run_parity(cfg, progress=progress_wanted(args))
    print(results_table(results, colour_enabled()))
    for note in golden_notes(results):
        print(note)
    print(f"\nresults -> {path}")
    folder = args.report or cfg.report
    if folder is None:
        command_line = ["synctalk-parity", "report", str(path), "--out", str(path.parent / "report")]
        print("report: " + shlex.join(command_line))
    else:
        print(f"report -> {render_report([path], folder)}")
    return exit_code(results)


def _add_compare(sub) -> None:
    p = command(sub, "compare", cmd_compare)
    p.add_argument("dir_a", type=Path, metavar="A", help="reference frames: a folder, or a video (.mp4 .mov .m4v .mkv)")
    p.add_argument("dir_b", type=Path, metavar="B", help="candidate frames: a folder, or a video as the app wrote it")
    p.add_argument("--audio", type=Path, metavar="WAV",
                   help="the run's input audio, against which a video's sound is timed (default: the reference "
                        "video's sound)")
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


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two folders of frames or videos, say why they differ, give a verdict.

    Pair the frames of two folders by name (of a video: by presentation time, frame k at (k-1)/25 s) and report pixel-identical %, within +-1/2/8 %, MAE, PSNR and
    SSIM, per frame and overall, the missing and extra frames, and the verdict under a tolerance
    profile: exit 0 when it holds, 1 when a threshold fails or a frame is missing or extra, 2 for bad
    input. With --pack, also the image evidence, from the pack and the frames alone (no models):
    template sequence, paste position, colour, resize kernel, JPEG settings, audio drive, precision
    noise, each with the dB it explains (docs/evidence.md).
    """
    from harness.runs.compare import compare_folders
    from harness.verdicts.tolerances import Thresholds
    given = {"psnr_min": args.psnr_min, "ssim_min": args.ssim_min, "identical_pct_min": args.identical_pct_min}
    thresholds = Thresholds.for_profile(args.profile).override({k: v for k, v in given.items() if v is not None})
    return compare_folders(args.dir_a, args.dir_b, args.pattern, args.pack, args.json, thresholds,
                           args.index_base, args.profile, args.stages_a, args.stages_b, progress_wanted(args),
                           args.audio)


def _add_explain(sub) -> None:
    p = command(sub, "explain", cmd_explain)
    p.add_argument("path", type=Path, metavar="CONFIG.toml|RESULTS.json", help="parity config or results file")
    add_backend_args(p, output="override [run].output (with a config)")
    p.add_argument("--frames", type=int, metavar="N", help="override [data].frames (with a config)")
    add_progress_args(p)


def cmd_explain(args: argparse.Namespace) -> int:
    """Name why each backend diverges: stage, convention, audio, offset, layer.

    With a parity config: run it with every diagnosis on (stage localisation, temporal offset, the bill
    of deviations (convention fit), first divergent layer for ONNX engines, audio dependence across the
    audio matrix) and print each backend's named causes. With a results.json: print the causes it
    records. A backend that matches says "no divergence".
    """
    from harness.diagnosis.explain import explain_text
    from harness.runs.parity import exit_code
    if args.path.suffix == ".json":
        from harness.verdicts.results import read_results
        results, path = read_results(args.path), args.path
    else:
        from harness.runs.config import load_config
        from harness.runs.parity import run_parity
        cfg = load_config(args.path, only=args.backend, output=args.output, frames=args.frames)
        cfg.explain = True
        results, path = run_parity(cfg, progress=progress_wanted(args))
    print(explain_text(results, args.backend))
    print(f"\nresults -> {path}")
    return exit_code(results)


def _add_golden(sub) -> None:
    p = command(sub, "golden", cmd_golden)
    add_run_args(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="golden folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing golden")
    p.add_argument("--store-models", action="store_true",
                   help="store the two models, with their external data files, in the golden too "
                        "(the template files and the audio always are)")


def cmd_golden(args: argparse.Namespace) -> int:
    """Write a golden reference run (manifest, features, lossless frames).

    Record the reference output of one run as a golden: manifest.json with hashes and versions, features
    as .npy, the face region of every frame as lossless PNG. Written atomically; an existing golden is
    kept unless --force.
    """
    from reference.golden import write_golden
    path = write_golden(args.out, source_of(args), args.audio, models_of(args), args.frames,
                        conventions_of(args.conventions), force=args.force, store_models=args.store_models)
    print(f"golden -> {path}")
    return 0


def _add_check_golden(sub) -> None:
    p = command(sub, "check-golden", cmd_check_golden)
    p.add_argument("golden", type=Path, metavar="DIR", help="a golden written by `golden`")
    p.add_argument("--models", type=Path, metavar="DIR",
                   help="the models it was recorded with, for a golden that does not store them")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="desktop",
                   help="tolerance profile when libraries or CPU differ from the recording (default desktop)")
    p.add_argument("--threads", type=int, default=1, metavar="T", help="ONNX Runtime threads (default 1)")


def cmd_check_golden(args: argparse.Namespace) -> int:
    """Check a golden on this machine against a fresh reference run.

    Run the reference again on the inputs a golden stores and compare stage by stage. The profile is
    exact where the library versions and the CPU are the recorded ones, --profile otherwise; the verdict
    names the libraries that changed version and the first stage out of tolerance, by how much. Exit 0
    passed, 1 failed, 2 input error.
    """
    from harness.runs.golden_check import check_golden
    from reference.models import ModelFiles
    check = check_golden(args.golden, ModelFiles.from_dir(args.models) if args.models else None, args.profile,
                         args.threads)
    print("\n".join(check.lines()))
    return 0 if check.ok else 1
