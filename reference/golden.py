"""Goldens: a recorded reference run (hashes, versions, features, lossless frames) and its check.

Layout of a golden folder:

* `manifest.json`: schema and version, frame count, conventions, the identity of both models
  (`models`: `provenance.model_sha256`, their graph and every external data file) and the sha256 of
  each of their files (`model_files`), the sha256 of the audio and every template file used, library
  versions, the CPU fingerprint, and per frame its template index, rect and the sha256 of its PNG.
* `inputs/source/...` (the template files used, at their paths in the pack or dataset),
  `inputs/audio/<audio file>` and, when recorded with `store_models`, `inputs/models/*.onnx` with
  their external data files: the inputs themselves, so that a golden is checked on another machine
  with exactly the files it was recorded from (version 2; a version-1 golden stores none and can only
  stand for a reference).
* `features/{mel,embeddings,padded_features}.npy`.
* `frames/frame_00001.png`, ...: the face rect of each composited frame, lossless. Outside the
  rect a composited frame equals its template frame, whose hash is in the manifest, so the rect
  is all that needs storing (a 250-frame Sanders golden is about 15 MB instead of 300 MB).
"""
from __future__ import annotations

import json
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reference.atomic import building, swap_paths
from reference.conventions import Conventions
from reference.data import Dataset, Pack, TemplateSource
from reference.errors import InputError
from reference.models import ENCODER_FILE, GENERATOR_FILE, ModelFiles, Models, reference_models
from reference.output import encode_frame, frame_path
from reference.pipeline import AudioFeatures, ReferencePipeline, audio_features
from reference.provenance import (
    cpu_fingerprint,
    file_changes,
    library_versions,
    model_file_hashes,
    model_files,
    model_identity,
    sha256,
)

SCHEMA = "synctalk-parity/golden"
VERSION = 2
READABLE_VERSIONS = (1, 2)
FEATURES = ("mel", "embeddings", "padded_features")
INPUTS = "inputs"
ROLES = {"audio_encoder": ENCODER_FILE, "generator": GENERATOR_FILE}  # manifest key -> file name


def model_hashes(files: ModelFiles) -> dict[str, dict[str, str]]:
    """Per role ("audio_encoder", "generator") the sha256 of each file of that model (`model_file_hashes`),
    its graph named as in a models folder (`ROLES`)."""
    out = {}
    for role, graph in (("audio_encoder", files.encoder), ("generator", files.generator)):
        out[role] = {ROLES[role] if name == graph.name else name: digest
                     for name, digest in model_file_hashes(graph).items()}
    return out


def model_identities(hashes: dict[str, dict[str, str]]) -> dict[str, str]:
    """Per role the identity (`model_identity`) of the models of `model_hashes`."""
    return {role: model_identity(files, ROLES[role]) for role, files in hashes.items()}


def model_changes(manifest: dict, role: str, now: dict[str, str]) -> list[str]:
    """How the `role` model of file hashes `now` differs from the one a golden recorded, in words
    ("generator.onnx.data changed"); empty when it is the same. A manifest without per-file hashes
    recorded a model without external data, whose identity is its graph's sha256."""
    if model_identity(now, ROLES[role]) == manifest["models"][role]:
        return []
    recorded = manifest.get("model_files", {}).get(role) or {ROLES[role]: manifest["models"][role]}
    return file_changes(recorded, now) or [f"{ROLES[role]} differs"]


def _feature_arrays(feats: AudioFeatures) -> dict[str, np.ndarray]:
    return {"mel": feats.mel, "embeddings": feats.embeddings, "padded_features": feats.padded}


def _inputs(source: TemplateSource, audio_path: Path, models: Models, templates: list[int],
            conv: Conventions) -> dict:
    crop_source = None if conv.crop_source == "default" else conv.crop_source
    files: dict[str, str] = {}
    for t in sorted(set(templates)):
        for path in source.paths(t, crop_source=crop_source, masked_source="pack" if conv.masked_input == "pack" else "memory"):
            files.setdefault(path.relative_to(source.root).as_posix(), sha256(path))
    hashes = model_hashes(models.files)
    return {
        "models": model_identities(hashes), "model_files": hashes,
        "audio": {"file": Path(audio_path).name, "sha256": sha256(audio_path)},
        "source": {"kind": source.kind, "n_images": source.n_images, "files": files},
    }


def write_golden(out: str | Path, source: TemplateSource, audio_path: str | Path, models: Models,
                 frames: int | None = None, conv: Conventions = Conventions(), force: bool = False,
                 store_models: bool = False) -> Path:
    """Run the reference and record it as a golden in `out` (atomically; `force` replaces one), with
    the template files and the audio it used (and the models with `store_models`)."""
    out = Path(out)
    if out.exists() and not force:
        raise InputError(out, "a golden already exists here", "pass --force to replace it, or choose another --out")
    feats = audio_features(audio_path, models, conv, frames)
    pipeline = ReferencePipeline(source, models, conv)
    n = pipeline.check_frames(feats, frames, audio_path)
    with building(out) as tmp:
        (tmp / "features").mkdir()
        (tmp / "frames").mkdir()
        for name, arr in _feature_arrays(feats).items():
            np.save(tmp / "features" / f"{name}.npy", arr)
        records = []
        for r in pipeline.frames(feats, n):
            x1, y1, x2, y2 = r.rect
            path = frame_path(tmp / "frames", r.index, "png")
            path.write_bytes(encode_frame(np.ascontiguousarray(r.frame[y1:y2, x1:x2]), "png", 9))
            records.append({"t": r.t, "rect": [x1, y1, x2, y2], "sha256": sha256(path)})
        inputs = _inputs(source, Path(audio_path), models, [r["t"] for r in records], conv)
        _store_inputs(tmp / INPUTS, source, Path(audio_path), models if store_models else None, inputs)
        manifest = {"schema": SCHEMA, "version": VERSION, "frames": n, "conventions": conv.label(), **inputs,
                    "stored": {"models": store_models}, "libraries": library_versions(), "cpu": cpu_fingerprint(),
                    "machine": platform.platform(), "frame_records": records}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _replace(tmp, out)
    return out


def _store_inputs(folder: Path, source: TemplateSource, audio_path: Path, models: Models | None, inputs: dict) -> None:
    """Copy the template files of `inputs`, the audio and (when given) the models, each with the external
    data files it names, into `folder`."""
    copies = {source.root / rel: folder / "source" / rel for rel in inputs["source"]["files"]}
    copies[audio_path] = folder / "audio" / inputs["audio"]["file"]
    if models is not None:
        for graph, name in ((models.files.encoder, ENCODER_FILE), (models.files.generator, GENERATOR_FILE)):
            graph_file, *data = model_files(graph)
            copies[graph_file] = folder / "models" / name
            copies.update({path: folder / "models" / path.relative_to(graph.parent) for path in data})
    for src, dest in copies.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def _replace(new: Path, out: Path) -> None:
    """Put `new` at `out`. An existing `out` is exchanged with `new` in one step (there is no moment
    without a golden) and then removed under `new`'s unique temporary name; where the file system
    cannot exchange, it is first moved to a fresh unique name (never a fixed ``.old`` one)."""
    if not out.exists():
        new.rename(out)
        return
    if swap_paths(new, out):
        shutil.rmtree(new)  # `new` now names the previous golden
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))  # empty: a rename may replace it
    out.rename(old)
    new.rename(out)
    shutil.rmtree(old)


def read_manifest(golden: str | Path) -> dict:
    """The manifest of a golden folder, checked for schema and version."""
    path = Path(golden) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read golden manifest: {exc}", "give a folder written by `golden`") from None
    if manifest.get("schema") != SCHEMA or manifest.get("version") not in READABLE_VERSIONS:
        raise InputError(path, f"not a golden manifest of version {' or '.join(map(str, READABLE_VERSIONS))}",
                         "re-create it with `golden --force`")
    return manifest


def golden_problems(manifest: dict, source: TemplateSource, models: dict[str, dict[str, str]],
                    audio_sha256: list[str], frames: int) -> list[str]:
    """Why a golden cannot stand for the canonical reference of a run on `source` with the models of file
    hashes `models` (`model_hashes`), one of the audios `audio_sha256` and `frames` frames; empty when
    it can."""
    problems = []
    if manifest["conventions"] != "canonical":
        problems.append(f"it was recorded with conventions {manifest['conventions']}, not the canonical pipeline")
    changes = [change for role in ROLES for change in model_changes(manifest, role, models[role])]
    if changes:
        problems.append(f"it was recorded with other models ({', '.join(changes)})")
    if manifest["audio"]["sha256"] not in audio_sha256:
        problems.append(f"its audio {manifest['audio']['file']} is none of the run's audio files")
    if manifest["frames"] < frames:
        problems.append(f"it holds {manifest['frames']} frames and the run needs {frames}")
    if manifest["source"]["kind"] != source.kind:
        problems.append(f"it was recorded from a {manifest['source']['kind']}, the run uses a {source.kind}")
    changed = [rel for rel, digest in manifest["source"]["files"].items()
               if not (source.root / rel).is_file() or sha256(source.root / rel) != digest]
    if changed:
        problems.append(f"{len(changed)} template file(s) differ from the ones recorded, e.g. {changed[0]}")
    return problems


def read_golden(golden: str | Path, frames: int) -> dict:
    """The first `frames` frames of a golden as the reference's fields: `templates`, `rects`, `patches`
    (each frame's face rect, checked against its recorded sha256) and `stages` (its features)."""
    golden = Path(golden)
    manifest = read_manifest(golden)
    templates, rects, patches = [], [], []
    for i, record in enumerate(manifest["frame_records"][:frames]):
        path = frame_path(golden / "frames", i, "png")
        if not path.is_file() or sha256(path) != record["sha256"]:
            raise InputError(path, "missing or changed since the golden was recorded",
                             "record the golden again with `synctalk-parity golden --force`")
        x1, y1, x2, y2 = record["rect"]
        patch = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if patch is None or patch.shape != (y2 - y1, x2 - x1, 3):
            raise InputError(path, f"not a {x2 - x1}x{y2 - y1} colour PNG", "record the golden again")
        templates.append(int(record["t"]))
        rects.append((x1, y1, x2, y2))
        patches.append(patch)
    stages = {}
    for name in FEATURES:
        try:
            stages[name] = np.load(golden / "features" / f"{name}.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(golden / "features" / f"{name}.npy", f"cannot read: {exc}", "record the golden again") from None
    return {"templates": templates, "rects": rects, "patches": patches, "stages": stages}


@dataclass(frozen=True)
class StoredInputs:
    """The inputs a golden was recorded from, as stored in it."""

    manifest: dict
    source: TemplateSource
    audio: Path
    models: ModelFiles


def stored_inputs(golden: str | Path, models: ModelFiles | None = None) -> StoredInputs:
    """A golden's stored inputs, each checked against the manifest's sha256. `models` stand for models
    the golden does not store (they must be the recorded ones, graph and external data: InputError
    naming each file that changed); stored models are used otherwise."""
    golden = Path(golden)
    manifest = read_manifest(golden)
    root = golden / INPUTS
    if "stored" not in manifest or not root.is_dir():
        raise InputError(golden, "this golden does not store the inputs it was recorded from (version 1)",
                         "record it again with `synctalk-parity golden --force`")
    if manifest["stored"]["models"]:
        models = ModelFiles.from_dir(root / "models")
    elif models is None:
        raise InputError(golden, "this golden does not store its models", "give the models it was recorded with (--models DIR)")
    audio = root / "audio" / manifest["audio"]["file"]
    expected = {root / "source" / rel: digest for rel, digest in manifest["source"]["files"].items()}
    expected[audio] = manifest["audio"]["sha256"]
    for path, digest in expected.items():
        if not path.is_file() or sha256(path) != digest:
            raise InputError(path, "missing, or not the file the golden was recorded from (its sha256 differs)",
                             "record the golden again")
    now = model_hashes(models)
    for role, graph in (("audio_encoder", models.encoder), ("generator", models.generator)):
        changes = model_changes(manifest, role, now[role])
        if changes:
            raise InputError(graph, f"not the model the golden was recorded from: {', '.join(changes)}",
                             "give the models the golden was recorded with, or record the golden again")
    kind = {"pack": Pack, "dataset": Dataset}[manifest["source"]["kind"]]
    return StoredInputs(manifest, kind(root / "source", n_images=manifest["source"]["n_images"]), audio, models)


@dataclass
class GoldenRerun:
    """A fresh reference run of a golden's stored inputs beside what the golden recorded: per stage
    (recorded, now) arrays, and per frame (recorded, now) face rects."""

    manifest: dict
    stages: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    frames: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


def rerun_golden(golden: str | Path, models: ModelFiles | None = None, threads: int = 1) -> GoldenRerun:
    """Run the reference again on a golden's stored inputs (see `stored_inputs`) with its conventions."""
    golden = Path(golden)
    inputs = stored_inputs(golden, models)
    manifest = inputs.manifest
    recorded = read_golden(golden, manifest["frames"])
    rerun = GoldenRerun(manifest)
    conv = Conventions.parse("" if manifest["conventions"] == "canonical" else manifest["conventions"])
    engine = reference_models(inputs.models, threads)
    feats = audio_features(inputs.audio, engine, conv, manifest["frames"])
    for name, arr in _feature_arrays(feats).items():
        rerun.stages[name] = (recorded["stages"][name], arr)
    frames = ReferencePipeline(inputs.source, engine, conv).frames(feats, manifest["frames"])
    for r, want in zip(frames, recorded["patches"]):
        x1, y1, x2, y2 = manifest["frame_records"][r.index]["rect"]
        rerun.frames.append((want, np.ascontiguousarray(r.frame[y1:y2, x1:x2])))
    return rerun
