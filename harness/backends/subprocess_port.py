"""Subprocess backend: run a port of the pipeline (a Go/Swift/Python binary) and read its frames.

A port is any program that takes the pack, audio, models and frame count on its command line
and writes numbered frame images into a folder. The backend runs it as a plain argv (never
through a shell), in a session of its own so that a timeout kills the port *and everything it
started*, logs its stdout/stderr to files in the workdir, parses the optional JSON timing lines
it prints, checks that every expected frame file is there and then hands the frames out lazily
(`stream`: each frame as soon as the next one's file appears, the same checks when the port ends).

Options (one TOML table, every key validated; an unknown key is a ValueError naming it):

================  ===================  =====================  =============================================
name              type                 default                meaning
================  ===================  =====================  =============================================
command           list of str          (required)             argv; placeholders below, no shell
output_pattern    str (printf)         "frame_%05d.jpg"       frame file name, one ``%d``/``%05d``
index_base        int, 0 or 1          1                      number in the first frame's file name
output_subdir     str                  ""                     folder inside ``{output}`` holding the frames
stage_dumps       table                {}                     stage name -> dump description (below)
env               table of str         {}                     extra environment, merged over os.environ
cwd               str                  the run's workdir      working directory (relative: to the workdir)
timeout           number > 0           600                    seconds before the process group is killed
kill_grace        number >= 0          2                      seconds between SIGTERM and SIGKILL
private_pack      bool                 false                  ``{pack}`` is a fresh private view of the pack
                                                              (below): ``models/`` holds the run's models,
                                                              ``cache/`` takes new files
kind              str                  "subprocess"           the registry's key; only "subprocess"
================  ===================  =====================  =============================================

``private_pack`` exists for ports that read their models from inside the pack (``PACK/models/``)
or write into it (a cache in ``PACK/cache/``): it gives them the run's models without a pack copy
and keeps their writes out of the user's pack and out of the next run. ``{pack}`` is then
``workdir/pack``, made anew (the old one removed) before every run: a symlink to each entry of
the real source folder except ``models/`` and ``cache/``; ``models/`` is a real folder with
symlinks to the run's ``audio_encoder.onnx`` and ``generator.onnx`` and the external data files they
name (those the reference uses, replacing any the pack has); ``cache/`` is a real folder with a symlink to each entry of the
pack's ``cache/``, where the port can create files and folders. A port that opens a *linked*
file for writing still writes through the link into the real pack; only new entries stay private.

Placeholders, substituted in every argv element, in ``env`` values, ``cwd`` and stage-dump
patterns, whole or inside an element (``"--out={output}"``): ``{pack}`` (the source folder,
pack or dataset; its private view with ``private_pack``), ``{audio}``, ``{models}``, ``{output}`` (``workdir/output``, created and
cleared of stale frame files), ``{frames}`` (N) and ``{workdir}``. Substitution is one pass
over the literal text (a value that itself contains ``{output}`` is not substituted again), an
element is never re-split, and any other ``{identifier}`` is a ValueError at construction.

``output_pattern`` uses printf syntax: exactly one integer conversion ``%d``, ``%Nd`` or
``%0Nd``; ``%%`` is a literal percent sign; no ``/`` (use ``output_subdir``). Frame i
(0-based) is the file ``output_pattern % (i + index_base)``. All N frames must exist (the
first missing one fails the run); files matching the pattern beyond them are counted in
``info["extra_frames"]``. Frames are read by `frame_files.read_frame` (BGR uint8; a truncated
JPEG or an undecodable file is an error naming it); every frame must have the template's size
(``{pack}/full_body_img/1.jpg`` when it exists, else the first frame's), checked while iterating.

``stage_dumps`` maps a stage name of ``base.STAGES`` to a table:

* ``pattern`` (str, required): the dump's path, relative to the process's cwd (where a port
  writing a bare file name puts it) unless absolute or starting with a placeholder such as
  ``{output}/``. With one printf integer conversion it is a per-frame file: files
  ``index_base, index_base + 1, ...`` are read in order (at most N; at least one must exist)
  and stacked into ``(count, *shape)``. Without one it is the whole array.
* ``format``: ``"npy"`` (default) or ``"f32le"`` (raw little-endian float32, no header).
* ``shape`` (list of int): per file. Required for ``f32le``: the byte size must equal
  ``prod(shape) * 4``; for a whole-array f32le file one entry may be -1 (inferred). For npy it
  is optional and checked when given (-1 matches any size).
* ``index_base`` (0 or 1, default 0): number of the first per-frame file.

**The standard dump folder** needs no ``stage_dumps`` entry: the harness makes
``workdir/stage_dumps`` anew before every run and sets ``SYNCTALK_PARITY_DUMP_DIR`` to its path
in the port's environment (over any inherited or ``env`` value). After the run every stage
folder found there, ``<stage>/<row>.f32`` (raw little-endian float32) or ``<stage>/<row>.npy``
with ``<row>`` the 0-based row (frame) number, is read as a per-frame dump with the stage's row
shape (``harness/backends/dump_dir.py``, ``docs/ports.md``). An explicit ``stage_dumps`` entry
for the same stage wins (the folder's files are then not read). ``info["dump_dir"]`` is the path.

Dump files older than the run are rejected (a stale dump from a previous run must not pass as
this run's). Example, the Go port's audio windows::

    [backends.go.stage_dumps.audio_windows]
    pattern = "{output}/../debug_audio_go_frame%d.bin"   # written beside the output folder
    format = "f32le"
    shape = [32, 16, 16]
    index_base = 1                                        # debug_audio_go_frame1.bin is frame 0

Timings (seconds unless named otherwise): ``total`` (wall time from start to exit),
``peak_rss_mb``, ``cpu_s`` (user + system), ``stages`` (sum per stage of the ``ms`` of the
stdout lines that are JSON objects ``{"stage": "generator", "ms": 41.2}``, converted to
seconds) and ``stage_counts`` (how many lines each stage had); the lines of the stage named
``"frame"`` (one per frame, if the port prints them) also give ``frame_latency`` (a list of
seconds, for the p50/p90/p99 latency). Every other stdout line is ignored.

While the port runs, a thread (`frame_watch.FrameWatcher`) polls the frames folder every 3 ms:
``frame_appear_s`` lists, per expected frame, when its file first appeared (seconds after the
start; None if never seen before the exit), from which the time to first frame, the steady-state
FPS and the per-frame intervals are derived (`harness.verdicts.timing.steady_from_appearances`);
``frame_mtime_span_s`` (last minus first frame's ``st_mtime_ns``) cross-checks the span. A port
that prints frame lines keeps its own per-frame figures.

Peak RSS (``peak_rss_of`` says so: "port process (wait4)") is the port's own: the port is started
by ``port_launcher.py``, a bare interpreter of a few MB, which waits for it with ``os.wait4``
(started directly, the port would inherit the harness's high-water mark: Linux keeps ``ru_maxrss``
across fork and exec). It covers the port process and the descendants it waited for itself, not
grandchildren it left running or orphaned (those are killed with the process group when the port
exits), and it is the high-water mark of the largest one of them, not a sum over concurrent
processes; never below the launcher's few MB. It includes the interpreter of a port run through
one. ``cpu_s`` is the port's own too; ``total`` includes the launcher's start.

POSIX only (process groups, ``os.killpg``, ``os.wait4``).
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from harness.backends import dump_dir
from harness.backends.base import Backend, BackendFailed, BackendRun, RunInputs
from harness.backends.frame_files import (
    PLACEHOLDER,
    FrameError,
    FrameFiles,
    check_placeholders,
    pattern_path,
    substitute,
)
from harness.backends.frame_watch import FrameWatcher
from harness.backends.port_files import (
    DumpError,
    frame_pattern,
    index_base,
    is_number,
    parse_dump,
    read_dump,
    read_rows,
    read_spec,
    template_size,
)
from harness.backends.port_process import PortProcess
from reference.errors import InputError
from reference.models import ModelFiles
from reference.provenance import model_files

BINARY = "<port binary>"  # stand-in for the port's executable; `preset_options` replaces it
PORT_PRESET = {
    "command": [BINARY, "--sanders", "{pack}", "--audio", "{audio}", "--output", "{output}", "--frames", "{frames}"],
    "output_pattern": "frame_%05d.jpg",
    "index_base": 1,
}
"""The command line and output layout of the existing Go/Swift ports."""

PLACEHOLDERS = ("pack", "audio", "models", "output", "frames", "workdir")
DEFAULTS = {
    "output_pattern": "frame_%05d.jpg",
    "index_base": 1,
    "output_subdir": "",
    "stage_dumps": {},
    "env": {},
    "cwd": None,
    "timeout": 600.0,
    "kill_grace": 2.0,
    "private_pack": False,
}
OPTION_KEYS = ("kind", "command") + tuple(DEFAULTS)
PRIVATE_PACK = "pack"  # the private view of the pack, inside the run's workdir
STDOUT_LOG = "port.stdout.log"
LAUNCH_REPORT = "port.rusage.json"  # the launcher's report of the port's own rusage
LAUNCHER = Path(__file__).with_name("port_launcher.py")
STDERR_LOG = "port.stderr.log"
TAIL_LINES = 20
_MAX_JSON_LINE = 64 * 1024  # longer stdout lines are not timing lines and are skipped unread
_MAX_STAGE_MS = 1e12  # a stage line's "ms" is a duration: 0 <= ms < about 30 years, else the line is ignored

STALE_SLACK_S = 2.0  # a dump last written this long before the start is stale (coarse file-system timestamps)


def preset_options(binary: str | Sequence[str], **overrides) -> dict:
    """Options for an existing port: `PORT_PRESET` with `binary` as the executable, then `overrides`.

    `binary` is the executable's path or name, or an argv prefix such as ``["python3", "port.py"]``.
    """
    prefix = [binary] if isinstance(binary, (str, os.PathLike)) else list(binary)
    options = {key: (list(value) if isinstance(value, list) else value) for key, value in PORT_PRESET.items()}
    options["command"] = [str(part) for part in prefix] + options["command"][1:]
    options.update(overrides)
    return options


# --------------------------------------------------------------------------- option parsing

def _check_placeholders(text: str, where: str) -> None:
    check_placeholders(text, where, PLACEHOLDERS)


def _parse_dump(stage: str, spec) -> dict:
    return parse_dump(stage, spec, _check_placeholders)


def parse_options(options: dict) -> dict:
    """Validated options with defaults filled in; ValueError naming the offending key."""
    if not isinstance(options, dict):
        raise ValueError(f"subprocess backend options must be a table, got {type(options).__name__}")
    for key in options:
        if key not in OPTION_KEYS:
            raise ValueError(f"unknown option {key!r} for a subprocess backend; known: {', '.join(OPTION_KEYS)}")
    opts = {**DEFAULTS, **options}
    if "kind" in opts and opts["kind"] != SubprocessBackend.kind:
        raise ValueError(f"kind: {opts['kind']!r} is not {SubprocessBackend.kind!r}")

    command = options.get("command")
    if (not isinstance(command, (list, tuple)) or not command
            or not all(isinstance(part, str) for part in command) or not command[0]):
        raise ValueError("command: must be a non-empty list of strings (an argv, not a shell string), "
                         f"got {command!r}")
    for part in command:
        _check_placeholders(part, "command")
    opts["command"] = list(command)

    frame_pattern(opts["output_pattern"], "output_pattern")
    opts["index_base"] = index_base(opts["index_base"], "index_base")

    subdir = opts["output_subdir"]
    if not isinstance(subdir, str) or Path(subdir).is_absolute() or ".." in Path(subdir).parts:
        raise ValueError(f"output_subdir: must be a relative folder inside the output folder, got {subdir!r}")

    dumps = opts["stage_dumps"]
    if not isinstance(dumps, dict):
        raise ValueError(f"stage_dumps: must be a table, got {type(dumps).__name__}")
    opts["stage_dumps"] = {stage: _parse_dump(stage, spec) for stage, spec in dumps.items()}

    env = opts["env"]
    if not isinstance(env, dict):
        raise ValueError(f"env: must be a table of strings, got {type(env).__name__}")
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or not isinstance(value, str):
            raise ValueError(f"env.{name}: names and values must be strings (quote numbers), got {value!r}")
        _check_placeholders(value, f"env.{name}")

    cwd = opts["cwd"]
    if cwd is not None:
        if not isinstance(cwd, str) or not cwd:
            raise ValueError(f"cwd: must be a non-empty string, got {cwd!r}")
        _check_placeholders(cwd, "cwd")

    if not isinstance(opts["private_pack"], bool):
        raise ValueError(f"private_pack: must be true or false, got {opts['private_pack']!r}")

    for key, minimum in (("timeout", None), ("kill_grace", 0)):
        value = opts[key]
        if not is_number(value) or (value <= 0 if minimum is None else value < minimum):
            raise ValueError(f"{key}: must be a {'positive' if minimum is None else 'non-negative'} "
                             f"number of seconds, got {value!r}")
        opts[key] = float(value)
    return opts


# --------------------------------------------------------------------------- helpers

def _tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a log file (reading at most its last `max_bytes`)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


def _parse_timing_lines(path: Path, latencies: list[float] | None = None) -> tuple[dict[str, float], dict[str, int]]:
    """Sum the ``{"stage": ..., "ms": ...}`` JSON lines of a stdout log; everything else is ignored.

    The ``ms`` of each "frame" line is also appended, in seconds, to `latencies` when given.
    """
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    whole_line = True  # the previous chunk ended a line
    with open(path, "rb") as f:
        while True:
            chunk = f.readline(_MAX_JSON_LINE)
            if not chunk:
                break
            starts_line, whole_line = whole_line, chunk.endswith(b"\n")
            if not (starts_line and whole_line or starts_line and len(chunk) < _MAX_JSON_LINE):
                continue  # part of an over-long line
            text = chunk.strip()
            if not text.startswith(b"{"):
                continue
            try:
                record = json.loads(text.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if not isinstance(record, dict):
                continue
            stage, ms = record.get("stage"), record.get("ms")
            if not isinstance(stage, str) or not is_number(ms) or not 0 <= ms < _MAX_STAGE_MS:
                continue
            seconds[stage] = seconds.get(stage, 0.0) + ms / 1000.0
            if stage == "frame" and latencies is not None:
                latencies.append(ms / 1000.0)
            counts[stage] = counts.get(stage, 0) + 1
    return seconds, counts


def _maxrss_mb(maxrss: int) -> float:
    """ru_maxrss in MiB: kilobytes on Linux, bytes on macOS."""
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return maxrss * scale / (1024.0 * 1024.0)


def _launched(argv: list[str], report: Path) -> list[str]:
    """The port's argv run through `port_launcher`, which reports the port's own peak RSS to `report`."""
    return [sys.executable, "-I", "-S", str(LAUNCHER), str(report), *argv]


def _read_launch_report(report: Path) -> dict:
    """What the launcher wrote: {"error": ...} when the port could not start, else its "peak_rss_mb" and
    "cpu_s"; {} when the launcher was killed before writing (a timeout)."""
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        return {}
    if "error" in doc:
        return {"error": str(doc["error"])}
    return {"peak_rss_mb": _maxrss_mb(int(doc["ru_maxrss"])), "cpu_s": float(doc["cpu_s"])}


def _private_pack(source: Path, models: Path, workdir: Path) -> Path:
    """Make ``workdir/pack`` anew: links to `source`'s entries, ``models/`` linking the run's two
    models, ``cache/`` a real folder linking the pack's cache entries (see the module docstring)."""
    files = ModelFiles.from_dir(models)  # InputError when the run's models are not there
    view = workdir / PRIVATE_PACK
    if view.is_symlink() or view.is_file():
        view.unlink()
    elif view.exists():
        shutil.rmtree(view)  # removes the links, never what they point to
    source = source.absolute()
    (view / "models").mkdir(parents=True)
    (view / "cache").mkdir()
    for entry in sorted(source.iterdir()):
        if entry.name not in ("models", "cache"):
            (view / entry.name).symlink_to(entry)
    for graph in (files.encoder, files.generator):
        for model_file in model_files(graph):  # the graph and its external data files
            link = view / "models" / model_file.relative_to(graph.parent)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(model_file.absolute())
    if (source / "cache").is_dir():
        for entry in sorted((source / "cache").iterdir()):
            (view / "cache" / entry.name).symlink_to(entry)
    return view


@dataclass
class _Launch:
    """A started port and what the checks after its end need."""

    port: PortProcess
    files: FrameFiles  # the frame files
    frames: int  # how many are expected
    output: Path
    expected: tuple[int, int] | None  # (h, w) every frame must have; None: the first frame's
    argv0: str
    report: Path
    stdout_log: Path
    stderr_log: Path
    info: dict
    timings: dict  # filled when the port has ended
    stages: Callable[[], dict[str, np.ndarray]]


# --------------------------------------------------------------------------- backend

class SubprocessBackend(Backend):
    """A port run as a child process; see the module docstring for its options."""

    kind = "subprocess"

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        self.opts = parse_options(self.options)

    # ---- availability

    def _resolve_executable(self, argv0: str, env: dict[str, str] | None = None) -> str:
        """Absolute path of the executable; BackendFailed with the reason when there is none (a port the
        config names must run: a missing binary is an error, never a skip)."""
        if os.sep in argv0 or (os.altsep and os.altsep in argv0):
            path = Path(argv0).expanduser()
            if not path.exists():
                raise BackendFailed(f"{self.name}: port executable {argv0} does not exist")
            if not path.is_file():
                raise BackendFailed(f"{self.name}: port executable {argv0} is not a file")
            if not os.access(path, os.X_OK):
                raise BackendFailed(f"{self.name}: port executable {argv0} is not executable (chmod +x)")
            return os.path.abspath(path)  # not resolve(): a venv's python is a symlink that must stay one
        search = (env or os.environ).get("PATH", os.defpath)
        found = shutil.which(argv0, path=search)
        if found is None:
            raise BackendFailed(f"{self.name}: port executable {argv0!r} not found on PATH")
        return found

    def check_available(self) -> None:
        """BackendFailed when the configured binary is missing or not executable (an error, not a skip)."""
        argv0 = self.opts["command"][0]
        if PLACEHOLDER.search(argv0):
            return  # depends on the run's inputs: checked by run()
        self._resolve_executable(argv0, {**os.environ, **self.opts["env"]})

    # ---- running

    def run(self, inputs: RunInputs) -> BackendRun:
        """Run the port to its end, check how it ended, then hand its frames out lazily."""
        launch = self._launch(inputs)
        self._finish(launch)
        return BackendRun(frames=self._iter_frames(launch, 0, launch.expected), stages=launch.stages,
                          info=launch.info, timings=launch.timings)

    def stream(self, inputs: RunInputs) -> BackendRun:
        """Like `run`, but frame i is handed out as soon as frame i + 1's file appears (or the port has
        ended) while the port still runs; the checks of `run` come when the port has ended."""
        launch = self._launch(inputs)
        return BackendRun(frames=self._streamed(launch), stages=launch.stages, info=launch.info,
                          timings=launch.timings)

    def _launch(self, inputs: RunInputs) -> _Launch:
        opts = self.opts
        workdir = Path(inputs.workdir).resolve()
        output = workdir / "output"
        frames_dir = output / opts["output_subdir"] if opts["output_subdir"] else output
        frames_dir.mkdir(parents=True, exist_ok=True)
        files = FrameFiles(frames_dir, opts["output_pattern"], opts["index_base"])
        for stale in files.indices():  # a frame left by an earlier run must not pass as this run's
            files.path(stale).unlink()

        pack = Path(inputs.source)
        if opts["private_pack"]:
            try:
                pack = _private_pack(pack, Path(inputs.models), workdir)
            except (InputError, OSError) as exc:
                raise BackendFailed(f"{self.name}: private_pack: could not make the pack's private view: {exc}") from exc

        values = {"pack": str(pack), "audio": str(inputs.audio), "models": str(inputs.models),
                  "output": str(output), "frames": str(inputs.frames), "workdir": str(workdir)}
        argv = [substitute(part, values) for part in opts["command"]]
        extra_env = {name: substitute(value, values) for name, value in opts["env"].items()}
        env = {**os.environ, **extra_env}
        argv[0] = self._resolve_executable(argv[0], env)
        dumps = dump_dir.prepare(workdir)
        env[dump_dir.DUMP_ENV] = str(dumps)
        cwd = workdir if opts["cwd"] is None else workdir / substitute(opts["cwd"], values)
        if not cwd.is_dir():
            raise BackendFailed(f"{self.name}: working directory {cwd} does not exist")

        stdout_log, stderr_log = workdir / STDOUT_LOG, workdir / STDERR_LOG
        info = {"command": argv, "cwd": str(cwd), "env": extra_env, "pack": str(pack), "returncode": None,
                "stdout_log": str(stdout_log), "stderr_log": str(stderr_log), "extra_frames": 0,
                "dump_dir": str(dumps), "frame_files": files.to_info()}

        started_wall = time.time()
        report = workdir / LAUNCH_REPORT
        report.unlink(missing_ok=True)
        watcher = FrameWatcher(frames_dir, [files.path(i).name for i in range(inputs.frames)])
        expected = template_size(Path(inputs.source))
        with open(stdout_log, "wb") as out, open(stderr_log, "wb") as err:
            start = time.perf_counter()
            try:
                proc = subprocess.Popen(_launched(argv, report), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err, start_new_session=True, close_fds=True)
            except OSError as exc:
                raise BackendFailed(f"{self.name}: could not start {argv[0]}: {exc}") from exc
        watcher.begin(start)
        port = PortProcess(proc, start, watcher, opts["timeout"], opts["kill_grace"])
        stages = functools.partial(self._load_stages, cwd, values, inputs.frames, started_wall, dumps)
        return _Launch(port, files, inputs.frames, output, expected, argv[0], report, stdout_log, stderr_log, info, {},
                       stages)

    def _finish(self, launch: _Launch) -> None:
        """Wait for the port's end; fill its timings and info; BackendFailed when it could not start, timed
        out, failed or left frames missing."""
        ended = launch.port.wait()
        returncode = launch.port.proc.returncode
        launch.info["returncode"] = returncode
        latencies: list[float] = []
        stage_seconds, stage_counts = _parse_timing_lines(launch.stdout_log, latencies)
        own = _read_launch_report(launch.report)
        if "error" in own:
            raise BackendFailed(f"{self.name}: could not start {launch.argv0}: {own['error']}")
        rusage = ended.rusage
        launch.timings.update({"total": ended.elapsed, "frames": launch.frames,
                               "peak_rss_mb": own.get("peak_rss_mb"), "peak_rss_of": "port process (wait4)",
                               "cpu_s": own.get("cpu_s", rusage.ru_utime + rusage.ru_stime),
                               "stages": stage_seconds, "stage_counts": stage_counts,
                               "frame_appear_s": ended.appear,
                               "frame_mtime_span_s": launch.port.watcher.mtime_span_s()})
        if latencies:
            launch.timings["frame_latency"] = latencies

        if ended.timed_out:
            raise BackendFailed(f"{self.name}: timed out after {self.opts['timeout']:g} s (process group killed)",
                                self._log_tail(launch.stdout_log, launch.stderr_log))
        if returncode != 0:
            if returncode < 0:
                try:
                    what = f"was killed by signal {signal.Signals(-returncode).name}"
                except ValueError:
                    what = f"was killed by signal {-returncode}"
            else:
                what = f"exited with code {returncode}"
            tail = self._log_tail(launch.stdout_log, launch.stderr_log)
            last = tail.splitlines()[-1].strip() if tail else ""
            raise BackendFailed(f"{self.name}: port {what}" + (f": {last}" if last else ""), tail)
        self._check_frames(launch.files, launch.frames, launch.info)

    def _streamed(self, launch: _Launch) -> Iterator[np.ndarray]:
        """Frames while the port runs, each once the next one's file exists; a frame that fails its checks
        then is reported after the exit checks (a crash or a missing frame comes first, as in `run`)."""
        expected, failed, i = launch.expected, None, 0
        try:
            while i < launch.frames and launch.port.frame_ready(i):
                try:
                    img = self._read_frame(launch, i, expected)
                except BackendFailed as exc:
                    failed = exc
                    break
                expected = expected or img.shape[:2]
                yield img
                i += 1
            self._finish(launch)
            if failed is not None:
                raise failed
            yield from self._iter_frames(launch, i, expected)
        finally:
            launch.port.stop()

    @staticmethod
    def _log_tail(stdout_log: Path, stderr_log: Path) -> str:
        return _tail(stderr_log) or _tail(stdout_log)

    def _check_frames(self, files: FrameFiles, n: int, info: dict) -> None:
        """BackendFailed naming the first of the N expected frame files that is missing; else the files beyond
        them counted in ``info["extra_frames"]``."""
        present = set(files.indices())
        missing = [i for i in range(n) if i not in present]
        if missing:
            raise BackendFailed(f"{self.name}: missing output frame {files.path(missing[0])}: "
                                f"found {n - len(missing)} of {n} expected frames ({len(present)} files match "
                                f"{files.pattern!r}, index base {files.index_base})")
        info["extra_frames"] = len(present) - n

    def _iter_frames(self, launch: _Launch, start: int, expected: tuple[int, int] | None) -> Iterator[np.ndarray]:
        for i in range(start, launch.frames):
            img = self._read_frame(launch, i, expected)
            expected = expected or img.shape[:2]
            yield img

    def _read_frame(self, launch: _Launch, i: int, expected: tuple[int, int] | None) -> np.ndarray:
        """Frame `i` as BGR uint8; BackendFailed when it cannot be read (a truncated JPEG included) or is not
        `expected` (h, w) in size."""
        label = launch.files.path(i).relative_to(launch.output).as_posix()
        try:
            return launch.files.read(i, expected, label)
        except FrameError as exc:
            raise BackendFailed(f"{self.name}: {exc.problem} ({exc.path})") from None

    # ---- stage dumps

    def _load_stages(self, cwd: Path, values: dict, frames: int, started_wall: float,
                     dumps: Path) -> dict[str, np.ndarray]:
        stages = {stage: self._load_dump(stage, spec, cwd, values, frames, started_wall)
                  for stage, spec in self.opts["stage_dumps"].items()}
        for stage in dump_dir.stages_found(dumps):
            if stage not in stages:  # an explicit stage_dumps entry wins
                stages[stage] = self._load_dump_dir(stage, dumps, frames, started_wall)
        return stages

    def _failed(self, exc: DumpError) -> BackendFailed:
        return BackendFailed(f"{self.name}: {exc}")

    def _load_dump_dir(self, stage: str, dumps: Path, frames: int, started_wall: float) -> np.ndarray:
        """The rows of `stage` the port wrote into the standard dump folder, stacked."""
        try:
            return read_rows(stage, dumps, frames, started_wall - STALE_SLACK_S)
        except DumpError as exc:
            raise self._failed(exc) from None

    def _load_dump(self, stage: str, spec: dict, cwd: Path, values: dict, frames: int,
                   started_wall: float) -> np.ndarray:
        path_of = functools.partial(pattern_path, cwd, spec["pattern"], values=values)
        try:
            return read_spec(stage, spec, path_of, frames, started_wall - STALE_SLACK_S)
        except DumpError as exc:
            raise self._failed(exc) from None

    def _read_dump(self, stage: str, spec: dict, path: Path, started_wall: float) -> np.ndarray:
        try:
            return read_dump(stage, spec, path, started_wall - STALE_SLACK_S)
        except DumpError as exc:
            raise self._failed(exc) from None
