"""Parity runs: the canonical reference once per audio (computed, cached or read from a golden), every
backend streamed against it (`harness.runs.frame_stream`), verdicts, diagnoses and results.json."""
from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from fixtures.cache import cached_models
from harness.backends.base import BackendFailed, BackendUnavailable, RunInputs
from harness.backends.reference import ReferenceBackend
from harness.diagnosis.audio import audio_dependence, mouth_thumbnail
from harness.diagnosis.evidence.of_run import run_findings
from harness.diagnosis.explain import diagnose
from harness.runs import refcache
from harness.runs.config import SILENCE, BackendSpec, ParityConfig
from harness.runs.frame_stream import ReferenceFrames, WorstFrames, compare_run
from harness.runs.golden_check import in_words, library_changes
from harness.runs.video import SideBySideVideo
from harness.system.crashlog import describe
from harness.system.memory import release_memory
from harness.system.procfs import BackgroundProbe
from harness.text.tables import frame_list
from harness.verdicts import metrics
from harness.verdicts.results import (
    audio_labels,
    distinct_names,
    machine_info,
    new_results,
    tree_sha256,
    write_results,
)
from harness.verdicts.timing import (
    frame_ms,
    latency_stats,
    steady_from_appearances,
    steady_from_latencies,
)
from harness.verdicts.tolerances import evaluate
from reference.audio import SAMPLE_RATE, VIDEO_FPS
from reference.data import open_template_source, template_index
from reference.errors import InputError
from reference.golden import golden_problems, model_hashes, model_identities, read_golden, read_manifest, sha256
from reference.models import ModelFiles
from reference.provenance import library_versions

REFERENCE_DIR = "reference"  # the reference's work folder; no backend's folder takes this name


def run_reference(inputs: RunInputs, progress: bool = True) -> ReferenceFrames:
    """Run the canonical reference and keep what comparisons need."""
    run = ReferenceBackend("reference").run(inputs)
    source = open_template_source(inputs.source, inputs.source_kind)
    templates, rects, patches, mouths = [], [], [], []
    for i, frame in enumerate(tqdm(run.frames, total=inputs.frames, desc="reference", unit="frame",
                                   disable=not progress, leave=False)):
        t = template_index(i, source.n_images)
        x1, y1, x2, y2 = source.rect(t)
        templates.append(t)
        rects.append((x1, y1, x2, y2))
        patches.append(frame[y1:y2, x1:x2].copy())
        mouths.append(mouth_thumbnail(frame, rects[-1]))
    ref = ReferenceFrames(inputs.source, inputs.source_kind, templates, rects, patches, run.stages(), run.timings,
                          np.stack(mouths))
    del run
    release_memory()  # the reference's model sessions
    return ref


def cached_reference(inputs: RunInputs, key: str | None, progress: bool = True) -> tuple[ReferenceFrames, dict]:
    """The reference of `inputs` from the cache (`harness.runs.refcache`) when `key` has an entry, else run and
    stored under `key`; with key None it is always run. Also {"cached", "stored", "seconds"}."""
    started = time.perf_counter()
    if key is None:
        return run_reference(inputs, progress), {"cached": False, "stored": False,
                                                 "seconds": time.perf_counter() - started}
    fields = refcache.load(key)
    if fields is None:
        with refcache.lock(key):  # another run computing the same reference finishes first
            fields = refcache.load(key)
            if fields is None:
                ref = run_reference(inputs, progress)
                stored = refcache.store(key, {name: getattr(ref, name) for name in refcache.FIELDS})
                return ref, {"cached": False, "stored": stored, "seconds": time.perf_counter() - started}
    ref = ReferenceFrames(inputs.source, inputs.source_kind, **fields)
    return ref, {"cached": True, "stored": True, "seconds": time.perf_counter() - started}


def golden_reference(inputs: RunInputs, golden: Path) -> tuple[ReferenceFrames, dict]:
    """The reference of `inputs` read from a golden (`synctalk-parity golden`): its face rects, rects,
    templates and features; the reference pipeline does not run. Also {"cached", "stored", "golden",
    "libraries_changed" (each library whose installed version is not the recorded one), "seconds"}."""
    started = time.perf_counter()
    fields = read_golden(golden, inputs.frames)
    mouths = np.stack([mouth_thumbnail(p, (0, 0, p.shape[1], p.shape[0])) for p in fields["patches"]])
    ref = ReferenceFrames(inputs.source, inputs.source_kind, mouths=mouths, timings={}, **fields)
    changed = in_words(library_changes(read_manifest(golden)["libraries"], library_versions()))
    return ref, {"cached": False, "stored": False, "golden": str(golden), "libraries_changed": changed,
                 "seconds": time.perf_counter() - started}


def golden_audios(cfg: ParityConfig, inputs: dict) -> dict[str, Path]:
    """Audio sha256 -> the golden of [data].golden that stands for that audio's reference; InputError for
    a golden that cannot (other models, pack, audio or conventions, too few frames) or a second one."""
    source = open_template_source(cfg.source, cfg.source_kind)
    hashes = [a["sha256"] for a in inputs["audio"]]
    out: dict[str, Path] = {}
    for golden in cfg.goldens:
        manifest = read_manifest(golden)
        problems = golden_problems(manifest, source, inputs["models"]["files"], hashes, cfg.frames)
        if problems:
            raise InputError(golden, "cannot stand for the reference: " + "; ".join(problems),
                             "record it with `synctalk-parity golden` from this config's pack, models and audio, "
                             "or remove it from [data].golden")
        audio = manifest["audio"]["sha256"]
        if audio in out:
            raise InputError(golden, f"a second golden for {manifest['audio']['file']} (the first: {out[audio]})",
                             "keep one of them in [data].golden")
        out[audio] = golden
    return out


def reference_of(cfg: ParityConfig, results: dict, audio_index: int, inputs: RunInputs, goldens: dict[str, Path],
                 progress: bool = True) -> tuple[ReferenceFrames, dict]:
    """The reference of audio number `audio_index`: its golden (`goldens`, from `golden_audios`), else the
    reference cache's entry ([run].cache), else computed (and stored). Also its results.json entry
    (``reference`` list, less the audio's name)."""
    audio_hash = results["inputs"]["audio"][audio_index]["sha256"]  # hashed once, in start_results
    if audio_hash in goldens:
        ref, how = golden_reference(inputs, goldens[audio_hash])
        return ref, {"key": None, **how}
    key = refcache.key_of(results["inputs"], audio_hash, cfg.frames, results["machine"]["libraries"]) \
        if cfg.cache else None
    ref, how = cached_reference(inputs, key, progress)
    return ref, {"key": key, **how}


def timing_summary(timings: dict, frames: int) -> dict:
    """FPS end to end (`fps`), steady state (`steady_fps`, `ttff_s`, `steady`), latency percentiles and
    every frame's latency (`frame_ms`) from a backend's raw timings: its own per-frame latencies when it
    has them, else the intervals between the frame files a port wrote."""
    out = {k: v for k, v in timings.items() if k not in ("frame_latency", "frame_appear_s")}
    total = timings.get("total")
    out["fps"] = frames / total if total else None
    own = timings.get("frame_latency") or []
    steady = steady_from_latencies(own, timings.get("load", 0.0) + timings.get("audio_features", 0.0))
    watched = steady_from_appearances(timings.get("frame_appear_s") or [])
    if own and watched:
        steady["ttff_s"] = watched["ttff_s"]  # a port's frame lines leave its start-up out
    steady = steady or watched
    out.update(latency_stats(own) if own else steady.get("interval", {}))
    if steady:
        out.update(steady_fps=steady["steady_fps"], ttff_s=steady["ttff_s"],
                   steady={k: v for k, v in steady.items() if k not in ("steady_fps", "ttff_s")})
    every = frame_ms(own, timings.get("frame_appear_s") or [])
    if every:
        out["frame_ms"] = every
    return out


def feature_drift(ref: dict, cand: dict) -> dict:
    """Drift of every stage both sides provide. Arrays that differ only in length (a port dumping the
    whole clip, the reference only what its frames use) are compared over their common rows; any
    other shape mismatch is reported, not raised."""
    out = {}
    for stage in sorted(set(ref) & set(cand)):
        if stage == "patches":
            continue
        try:
            out[stage] = metrics.stage_drift(ref[stage], cand[stage])
        except ValueError:
            out[stage] = {"error": f"shape {tuple(np.shape(cand[stage]))} differs from the reference's "
                                   f"{tuple(np.shape(ref[stage]))}"}
    return out


def record_error(record: dict, exc: Exception) -> dict:
    """A run record of a backend that could not run: "skipped" when unavailable here, else "error",
    with the reason (an engine's own exception by type and message) and, for a port, its log tail."""
    if isinstance(exc, BackendUnavailable):
        record.update(status="skipped", reason=str(exc))
    elif isinstance(exc, (BackendFailed, InputError)):
        record.update(status="error", reason=getattr(exc, "reason", str(exc)), log_tail=getattr(exc, "log_tail", ""))
    else:  # an engine error (ONNX Runtime, OpenVINO, ...) or a bug: that backend's error, not the run's end
        record.update(status="error", reason=f"{record['backend']}: {describe(exc)}",
                      log_tail="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:]))
    return record


def add_error(record: dict, what: str, message: str) -> None:
    """Note a failure after the verdict (the diagnosis, the video) on the run record; exit code 3."""
    record.setdefault("errors", []).append(f"{what}: {message}")


def run_backend(spec: BackendSpec, ref: ReferenceFrames, inputs: RunInputs, audio_name: str,
                results_dir: Path, progress: bool = True, video: bool = False, mouths: list | None = None,
                explain: bool = False) -> dict:
    """One backend x audio: run, compare, judge; worst-frame crops (and with `video` a side-by-side
    MP4 with the audio) go below `results_dir`. Never raises for a backend's own failure: an engine
    error is the backend's "error"; a failing diagnosis or video is noted under "errors"."""
    record = {"backend": spec.name, "kind": spec.backend.kind, "audio": audio_name, "status": "error",
              "failures": [], "frames": 0, "thresholds": spec.thresholds.to_dict(),
              "options": spec.backend.options}
    try:
        return _run_and_judge(record, spec, ref, inputs, results_dir, progress, video, mouths, explain)
    except Exception as exc:  # noqa: BLE001 - whatever an engine raises stays this backend's
        if record["status"] in ("passed", "failed"):  # judged already: the diagnosis failed
            add_error(record, "diagnosis", describe(exc))
            return record
        return record_error(record, exc)
    finally:
        release_memory()  # the backend's and the diagnosis's model sessions


def _run_and_judge(record: dict, spec: BackendSpec, ref: ReferenceFrames, inputs: RunInputs, results_dir: Path,
                   progress: bool, video: bool, mouths: list | None, explain: bool) -> dict:
    spec.backend.check_available()
    started = time.perf_counter()
    background = BackgroundProbe()
    worst_frames = WorstFrames()
    where = Path(inputs.workdir.parent.name) / inputs.workdir.name
    movie = SideBySideVideo(results_dir / "videos" / where.with_suffix(".mp4"), inputs.audio) if video else None
    run = None
    try:
        run = spec.backend.stream(inputs)
        first: list = []
        summary, per_frame, worst, n, missing = compare_run(run, ref, inputs.frames, progress, spec.name,
                                                            worst_frames, movie, mouths, first if explain else None)
        stages = run.stages()
        features = feature_drift(ref.stages, stages)
    except BaseException:
        if movie is not None:
            movie.discard()
        raise
    finally:
        if run is not None and hasattr(run.frames, "close"):
            run.frames.close()  # a port still running when the comparison stopped is killed now
    timings = timing_summary(run.timings, n)
    timings["wall_with_comparison"] = time.perf_counter() - started
    timings["background_cpu"] = background.share()
    failures = evaluate(spec.thresholds, worst, features, timings.get("fps"))
    if run.info.get("extra_frames"):
        failures.insert(0, f"wrote {run.info['extra_frames']} frame files more than the {n} asked for")
    if missing:
        failures.insert(0, f"{len(missing)} of {inputs.frames} frames missing: frames {frame_list([i + 1 for i in missing])}")
        record["missing_frames"] = [i + 1 for i in missing]
    record.update(status="failed" if failures else "passed", failures=failures, frames=n, summary=summary,
                  per_frame=per_frame, features=features, timings=timings, info=run.info,
                  worst_frames=worst_frames.write(results_dir / "worst_frames" / where, results_dir, ref.rects))
    try:
        if explain and (missing or evaluate(spec.thresholds, worst, features, None)):  # a frame or stage criterion failed
            _explain(record, spec, inputs, ref, run, first, missing, stages, worst, results_dir, where, movie)
    finally:
        if movie is not None:
            written = movie.close()
            if written is not None:
                record["video"] = written.relative_to(results_dir).as_posix()
            if movie.error is not None:
                add_error(record, "video", movie.error)
    return record


def _explain(record: dict, spec, inputs, ref, run, first: list, missing: list[int], stages: dict, worst,
             results_dir: Path, where: Path, movie: SideBySideVideo | None) -> None:
    """The failing run's image evidence (also on the video's closing card) and its diagnosis."""
    try:  # a failing evidence is noted, and the diagnosis still runs
        found = run_findings(ref, inputs, run.info, first, missing, ref.stages, stages,
                             results_dir / "evidence" / where, results_dir)
        record["findings"] = [f.to_dict() for f in found]
        if movie is not None and found:
            movie.card(f"{spec.name}: {record['status']}; findings", [f.line() for f in found])
    except Exception as exc:  # noqa: BLE001 - reported as the run's error (exit 3), never lost
        add_error(record, "evidence", describe(exc))
    record["diagnosis"] = diagnose(record, spec, inputs, ref, first, worst, stages)


def silence_wav(folder: Path, frames: int) -> Path:
    """Digital silence long enough for `frames` frames, 16 kHz mono PCM_16."""
    seconds = frames / VIDEO_FPS + 1.0
    path = folder / f"silence_{seconds:g}s.wav"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.zeros(int(seconds * SAMPLE_RATE), np.int16), SAMPLE_RATE, subtype="PCM_16")
    return path


def models_folder(cfg: ParityConfig) -> Path:
    """The models of the config: a folder, or the cached synthetic ones."""
    if cfg.models.startswith("synthetic:"):
        return cached_models(cfg.models.split(":", 1)[1])
    return Path(cfg.models)


def exit_code(results: dict) -> int:
    """3 if a backend could not run (error or unavailable) or its diagnosis or video failed, else 1 if
    one failed a threshold, else 0."""
    statuses = {r["status"] for r in results["runs"]}
    if statuses & {"error", "skipped"} or any(r.get("errors") for r in results["runs"]):
        return 3
    return 1 if "failed" in statuses else 0


def audio_files(cfg: ParityConfig) -> list[Path]:
    """The audio matrix with "silence" made into a WAV in the output folder."""
    return [silence_wav(cfg.output / "audio", cfg.frames) if a == SILENCE else Path(a) for a in cfg.audio]


def audio_names(cfg: ParityConfig) -> list[str]:
    """The audios' names in the run (``{audio}`` of a frames backend's folder): each file's name without
    its extension, "silence" for the silence the run makes."""
    return [SILENCE if a == SILENCE else Path(a).stem for a in cfg.audio]


def start_results(cfg: ParityConfig, models: Path, audios: list[Path]) -> dict:
    """An empty results document describing this machine, the inputs (with hashes) and the config."""
    hashes = model_hashes(ModelFiles.from_dir(models))  # each model's graph and external data files
    inputs_info = {
        "source": {"path": str(cfg.source), "kind": cfg.source_kind, "sha256": tree_sha256(cfg.source)},
        "models": {"folder": str(models), **model_identities(hashes), "files": hashes},
        "audio": [{"name": a.name, "path": str(a), "sha256": sha256(a)} for a in audios],
        "frames": cfg.frames,
    }
    config = {"path": str(cfg.path), "sha256": sha256(cfg.path), "text": cfg.path.read_text()}
    return new_results(machine_info(), inputs_info, cfg.profile, config)


def run_parity(cfg: ParityConfig, progress: bool = True) -> tuple[dict, Path]:
    """Run every backend x audio of the config; results.json is rewritten after each run."""
    out = cfg.output
    out.mkdir(parents=True, exist_ok=True)
    models = models_folder(cfg)
    audios = audio_files(cfg)
    results = start_results(cfg, models, audios)
    path = out / "results.json"
    ref_mouths: dict[str, np.ndarray] = {}
    cand_mouths: dict[str, dict[str, np.ndarray]] = {spec.name: {} for spec in cfg.backends}
    try:
        _run_matrix(cfg, results, path, models, audios, progress, ref_mouths, cand_mouths)
    except KeyboardInterrupt as exc:
        keep_partial(results, path, exc)
        raise
    judge_audio_dependence(results["runs"], cand_mouths, ref_mouths)
    results["partial"] = False
    write_results(results, path)
    return results, path


def keep_partial(results: dict, path: Path, exc: BaseException) -> None:
    """After an interruption: write the runs that finished, marked partial and interrupted; with none
    finished, leave an earlier results file untouched."""
    if results["runs"]:
        results["partial"] = True
        results["interrupted"] = str(exc) or "SIGINT"  # Ctrl-C raises a bare KeyboardInterrupt
        write_results(results, path)


def _run_matrix(cfg: ParityConfig, results: dict, path: Path, models: Path, audios: list[Path], progress: bool,
                ref_mouths: dict, cand_mouths: dict) -> None:
    """Every backend x audio; results.json is rewritten after each run."""
    out, work = cfg.output, cfg.output / "work"
    backend_dirs = unique_names([spec.name for spec in cfg.backends], reserved=(REFERENCE_DIR,))
    goldens = golden_audios(cfg, results["inputs"])
    for k, (audio, audio_dir, label) in enumerate(zip(audios, unique_names([a.stem for a in audios]),
                                                      audio_labels(audios))):
        ref_dir = fresh_dir(work / audio_dir / REFERENCE_DIR)
        name = audio_names(cfg)[k]
        base = RunInputs(cfg.source, cfg.source_kind, audio, models, cfg.frames, ref_dir, name)
        ref, entry = reference_of(cfg, results, k, base, goldens, progress)
        results.setdefault("reference", []).append({"audio": label, **entry})
        ref_mouths[label] = ref.mouths
        for spec, backend_dir in zip(cfg.backends, backend_dirs):
            inputs = RunInputs(cfg.source, cfg.source_kind, audio, models, cfg.frames,
                               fresh_dir(work / audio_dir / backend_dir), name)
            mouths: list = []
            results["runs"].append(run_backend(spec, ref, inputs, label, out, progress, cfg.video, mouths,
                                               cfg.explain))
            if mouths:
                cand_mouths[spec.name][label] = np.stack(mouths)
            write_results(results, path)


def judge_audio_dependence(runs: list[dict], cand_mouths: dict, ref_mouths: dict) -> None:
    """Flag (as a failure, with its numbers under "diagnosis") every backend whose mouth does not move
    with its input audio across the audio matrix."""
    for backend, mouths in cand_mouths.items():
        found = audio_dependence(mouths, ref_mouths)
        if found is None:
            continue
        for run in runs:
            if run["backend"] == backend and run["status"] in ("passed", "failed"):
                run.setdefault("diagnosis", {})["audio_dependence"] = found
                if found["ignores_input_audio"]:
                    run["failures"].append(found["text"])
                    run["status"] = "failed"


def _safe(name: str) -> str:
    """A folder name for a backend name (which may hold brackets and commas)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def unique_names(names: list[str], reserved: tuple[str, ...] = ()) -> list[str]:
    """One folder-safe name per entry, distinct from each other and from `reserved` even on a
    case-insensitive file system (`distinct_names`). Work folders never collide."""
    return distinct_names([_safe(name) or "_" for name in names], reserved)


def fresh_dir(folder: Path) -> Path:
    """`folder`, emptied (removed and made anew)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
