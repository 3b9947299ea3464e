"""parity.toml: the data, models, audio matrix, frames, backends and tolerances of a parity run.

```toml
[data]
pack = "data:sanders_pack"        # or dataset = "..."; "data:" is the real-data folder
models = "synthetic:full"         # a folder with the two .onnx files, or synthetic:full | synthetic:tiny
audio = ["data:audio/talk_hb.wav", "silence"]   # "silence": digital silence of the needed length
frames = 250
golden = ["goldens/talk"]         # optional: goldens (`synctalk-parity golden`) that stand for the reference
                                  # of their audio, which then is not computed at all

[run]
output = "parity-out/linux"       # results.json and logs go here (relative to the working directory;
                                  # must stay below it or below the config's folder: `--output` overrides)
profile = "desktop"               # exact | desktop | mobile | lossy
report = "parity-out/report"      # optional: render the HTML report here at the end (like --report)
cache = true                      # keep the reference of each audio in the user cache (--no-cache: off)

[backends.ort_cpu]                # one table per backend; kind picks the engine
kind = "onnxruntime"
provider = "cpu"
thresholds = { psnr_min = 40 }    # per-backend overrides of the profile
```
Relative paths are relative to the config file. Every key is checked: an unknown key, a wrong
type or a missing file is a `ConfigError` (exit 2) that names the key.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from fixtures.locate import shared_data_dir
from harness.backends.base import Backend
from harness.backends.registry import make_backend
from harness.verdicts.tolerances import Thresholds
from reference.errors import ParityError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SILENCE = "silence"
SECTIONS = {"data", "run", "backends", "bench"}
DATA_KEYS = {"pack": str, "dataset": str, "models": str, "audio": list, "frames": int, "golden": list}
RUN_KEYS = {"output": str, "profile": str, "explain": bool, "video": bool, "report": str, "cache": bool}
BENCH_KEYS = {"warmup": int, "repeats": int, "threads": list, "frames": list}
BENCH_DEFAULTS = {"warmup": 5, "repeats": 1, "threads": None, "frames": None}


class ConfigError(ParityError):
    """The parity config is wrong; the message names the file and the key."""


@dataclass
class BackendSpec:
    """A configured backend and its thresholds."""

    name: str
    backend: Backend
    thresholds: Thresholds


@dataclass
class ParityConfig:
    """A loaded, checked parity config."""

    path: Path
    source: Path
    source_kind: str
    models: str  # a folder path, or synthetic:full | synthetic:tiny
    audio: list[str]  # paths, or "silence"
    frames: int
    output: Path
    profile: str
    backends: list[BackendSpec] = field(default_factory=list)
    explain: bool = True  # search the conventions that explain a failing backend
    video: bool = False  # side-by-side MP4 per backend x audio
    report: Path | None = None  # [run].report: render the HTML report here after the run
    cache: bool = True  # [run].cache: keep the reference of each audio in the user cache (harness.runs.refcache)
    goldens: list[Path] = field(default_factory=list)  # [data].golden: recorded references of some audios
    bench: dict = field(default_factory=lambda: dict(BENCH_DEFAULTS))  # [bench], checked


def _check_keys(path: Path, where: str, table: dict, allowed: dict) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{path}: unknown key [{where}].{key}; allowed: {', '.join(sorted(allowed))}")
        if not isinstance(value, allowed[key]) or (isinstance(value, bool) and allowed[key] is int):
            raise ConfigError(f"{path}: [{where}].{key} must be {allowed[key].__name__}, got {value!r}")


def check_bench(path: Path, table: object) -> dict:
    """The ``[bench]`` table, checked, with defaults filled in: ``warmup`` (int >= 0, default 5),
    ``repeats`` (int >= 1, default 1), ``threads`` (list of int >= 0) and ``frames`` (list of
    int >= 1), both default none. Every command checks it, so a typo is an error for `run` too."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [bench] must be a table")
    settings = dict(BENCH_DEFAULTS)
    for key, value in table.items():
        if key not in BENCH_KEYS:
            raise ConfigError(f"{path}: unknown key [bench].{key}; allowed: {', '.join(sorted(BENCH_KEYS))}")
        want = BENCH_KEYS[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise ConfigError(f"{path}: [bench].{key} must be {want.__name__}, got {value!r}")
        if want is list:
            least = 0 if key == "threads" else 1
            if not value or any(not isinstance(v, int) or isinstance(v, bool) or v < least for v in value):
                raise ConfigError(f"{path}: [bench].{key} must be a non-empty list of integers >= {least}, "
                                  f"got {value!r}")
        elif value < (1 if key == "repeats" else 0):
            raise ConfigError(f"{path}: [bench].{key} must be at least {1 if key == 'repeats' else 0}, got {value}")
        settings[key] = list(value) if want is list else value
    return settings


def resolve_path(text: str, base: Path, key: str, config: Path) -> Path:
    """`data:REL` (the real-data folder), absolute, or relative to the config file; must exist."""
    if text.startswith("data:"):
        data = shared_data_dir()
        if data is None:
            raise ConfigError(f"{config}: {key} = {text!r} needs the real data: set SYNCTALK_PARITY_DATA "
                              "or place ../shared/data beside the project")
    try:
        if text.startswith("data:"):
            path = data / text[5:]
        else:
            path = Path(text).expanduser()
            path = path if path.is_absolute() else base / path
        found = path.exists()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{config}: {key} = {text!r}: not a usable path ({exc})") from None
    if not found:
        raise ConfigError(f"{config}: {key} = {text!r}: {path} does not exist")
    return path.resolve()


def read_toml(path: Path) -> dict:
    """The parsed TOML of a config file; ConfigError when it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_config(path: str | Path, only: list[str] | None = None, output: str | Path | None = None,
                frames: int | None = None) -> ParityConfig:
    """Read and check a parity config; `only` keeps the named backends; `output` and `frames` (the
    command line's overrides) replace [run].output and [data].frames."""
    path = Path(path)
    cfg = config_from_dict(read_toml(path), path, only)
    if output is not None:
        cfg.output = Path(output).resolve()
    if frames:
        cfg.frames = frames
    return cfg


def _table(path: Path, raw: dict, name: str) -> dict:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table, got {table!r}")
    return table


def output_folder(text: str, config: Path, key: str = "[run].output") -> Path:
    """[run].output (or another folder `key` of the config), relative to the working directory; it must
    stay below the working directory or the config's folder, so that a config cannot make a run write
    anywhere else."""
    try:
        target = Path(text).expanduser()
        target = (target if target.is_absolute() else Path.cwd() / target).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{config}: {key} = {text!r}: not a usable path ({exc})") from None
    roots = (Path.cwd().resolve(), config.parent.resolve())
    if not any(target == root or root in target.parents for root in roots):
        raise ConfigError(f"{config}: {key} = {text!r} resolves to {target}, outside the working directory "
                          f"({roots[0]}) and the config's folder ({roots[1]}); give a folder below one of them, "
                          "or pass --output")
    return target


def _check_source(path: Path, kind: str, source: Path) -> None:
    """A pack that is a raw dataset (or the other way round) is named with the key to change."""
    from reference.data import Dataset, Pack, open_source
    from reference.errors import InputError
    try:
        found = open_source(source) if kind == "pack" else Dataset(source)
    except InputError as exc:
        raise ConfigError(f"{path}: [data].{kind}: {exc}") from None
    if kind == "pack" and not isinstance(found, Pack):
        raise ConfigError(f"{path}: [data].pack = {str(source)!r} is a raw dataset, not a pre-cut pack; "
                          "write dataset = ... instead")


def config_from_dict(raw: dict, path: Path, only: list[str] | None = None) -> ParityConfig:
    """Check the parsed TOML of the config at `path` (relative paths are relative to its folder)."""
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"{path}: unknown section [{key}]; sections are {', '.join(sorted(SECTIONS))}")
    data, run = _table(path, raw, "data"), _table(path, raw, "run")
    if isinstance(data.get("golden"), str):
        data = {**data, "golden": [data["golden"]]}
    _check_keys(path, "data", data, DATA_KEYS)
    _check_keys(path, "run", run, RUN_KEYS)
    bench = check_bench(path, raw.get("bench", {}))
    base = path.parent
    if ("pack" in data) == ("dataset" in data):
        raise ConfigError(f"{path}: [data] needs exactly one of pack = ... or dataset = ...")
    kind = "pack" if "pack" in data else "dataset"
    source = resolve_path(data[kind], base, f"[data].{kind}", path)
    _check_source(path, kind, source)
    models = data.get("models", "synthetic:full")
    if not models.startswith("synthetic:"):
        models = str(resolve_path(models, base, "[data].models", path))
    elif models not in ("synthetic:full", "synthetic:tiny"):
        raise ConfigError(f"{path}: [data].models = {models!r}; use a folder, synthetic:full or synthetic:tiny")
    audio = []
    for i, item in enumerate(data.get("audio", ["data:audio/talk_hb.wav", SILENCE])):
        if not isinstance(item, str):
            raise ConfigError(f"{path}: [data].audio[{i}] must be a path string, got {item!r}")
        audio.append(item if item == SILENCE else str(resolve_path(item, base, f"[data].audio[{i}]", path)))
    if not audio or all(a == SILENCE for a in audio):
        raise ConfigError(f"{path}: [data].audio needs at least one audio file besides silence")
    frames = data.get("frames", 250)
    if frames < 1:
        raise ConfigError(f"{path}: [data].frames must be at least 1, got {frames}")
    profile = run.get("profile", "desktop")
    try:
        Thresholds.for_profile(profile)
    except ValueError as exc:
        raise ConfigError(f"{path}: [run].profile: {exc}") from None
    output = output_folder(run.get("output", "parity-out"), path)
    report = output_folder(run["report"], path, "[run].report") if "report" in run else None
    cfg = ParityConfig(path, source, kind, models, audio, frames, output, profile,
                       explain=run.get("explain", True), video=run.get("video", False), report=report,
                       bench=bench, cache=run.get("cache", True), goldens=_goldens(path, data.get("golden", [])))
    tables = raw.get("backends", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: [backends] needs at least one backend table, e.g. [backends.ort_cpu]")
    for name, table in tables.items():
        if only and name not in only:
            continue
        cfg.backends.append(_backend(path, name, table, profile))
    for spec in cfg.backends:
        if not spec.backend.follows_audio and len(audio) > 1:
            raise ConfigError(f"{path}: [backends.{spec.name}]: its folder of frames has no {{audio}}, so the same "
                              f"frames would be judged against each of the {len(audio)} audios of [data].audio; put "
                              "{audio} in dir (one folder per audio, named after its file without the extension, "
                              "\"silence\" for silence) or give [data].audio one file")
    if only:
        missing = sorted(set(only) - {b.name for b in cfg.backends})
        if missing:
            raise ConfigError(f"{path}: no backend named {', '.join(missing)}; have {', '.join(tables)}")
    return cfg


def _goldens(path: Path, items: list) -> list[Path]:
    """[data].golden: folders written by `synctalk-parity golden` (their manifests are read here)."""
    from reference.errors import InputError
    from reference.golden import read_manifest
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{path}: [data].golden[{i}] must be a path string, got {item!r}")
        folder = resolve_path(item, path.parent, f"[data].golden[{i}]", path)
        try:
            read_manifest(folder)
        except InputError as exc:
            raise ConfigError(f"{path}: [data].golden[{i}]: {exc}") from None
        out.append(folder)
    return out


def _backend(path: Path, name: str, table: object, profile: str) -> BackendSpec:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [backends.{name}] must be a table")
    options = dict(table)
    overrides = options.pop("thresholds", {})
    if not isinstance(overrides, dict):
        raise ConfigError(f"{path}: [backends.{name}].thresholds must be a table, got {overrides!r}")
    overrides = dict(overrides)
    for key in ("dir", "video"):
        folder = options.get(key)
        if isinstance(folder, str) and folder and not Path(folder).expanduser().is_absolute():
            options[key] = str(path.parent / folder)  # a folder of frames or a video is relative to the config
    command = options.get("command")
    if isinstance(command, list) and command and isinstance(command[0], str) and "/" in command[0] \
            and not Path(command[0]).is_absolute():
        options["command"] = [str((path.parent / command[0]).resolve())] + command[1:]  # relative to the config
    try:
        own_profile = overrides.pop("profile", profile)
        if not isinstance(own_profile, str):
            raise ValueError(f"thresholds.profile must be a string, got {own_profile!r}")
        thresholds = Thresholds.for_profile(own_profile).override(overrides)
        backend = make_backend(name, options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: [backends.{name}]: {exc}") from None
    return BackendSpec(name, backend, thresholds)
