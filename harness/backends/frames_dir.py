"""Frames backend: a folder of frames made elsewhere (a phone, a Mac without Python, another CI job).

Nothing runs: the frames are read from the folder (or a video) in order and judged like any backend's. A frame
file that is not there is handed out as None, so that the run counts it missing and goes on with
the others; the folder may hold more frames than the run asks for (the whole clip), which are
counted in ``info["frames_in_folder"]``.

Options (one TOML table, every key checked):

=============  ==============  ===================  ===============================================
name           type            default              meaning
=============  ==============  ===================  ===============================================
dir            str             (required, or video) the folder; relative to the config file; may hold
                                                    ``{audio}``: the audio's file name without its
                                                    extension ("silence" for the run's silence), one
                                                    folder per audio of the matrix
video          str             (instead of dir)     a video file (.mp4 .mov .m4v .mkv) as the app wrote
                                                    it; relative to the config file; may hold
                                                    ``{audio}``. Frame k is the picture shown at
                                                    (k - 1) / 25 s; a dropped one is a missing frame
pattern        str (printf)    "frame_%05d.jpg"     frame file name, one ``%d``/``%05d``
index_base     int, 0 or 1     1                    number in the first frame's file name
stage_dumps    table           {}                   stage name -> dump table, as for a subprocess
                                                    port; patterns relative to ``dir``
kind           str             "frames"             the registry's key
=============  ==============  ===================  ===============================================

Without ``stage_dumps`` the folder's dumps are found by name (`port_files.find_stage_dumps`): the
standard dump layout, the reference's ``<stage>.npy`` and the seed ports'
``debug_audio_<name>_frame<k>.bin`` beside the frames or one folder up. The frames must have the
size of the pack's templates; a frame that cannot be read (a truncated JPEG included:
`frame_files.read_frame`) is an error of the run naming the file. ``info["frame_files"]`` tells
the diagnosis where the files are (their codec is part of the evidence), ``info["video"]`` where the
video is (its timing, sound and codec are). There are no timings: the frames were made elsewhere.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.backends.base import Backend, BackendFailed, BackendRun, RunInputs
from harness.backends.frame_files import (
    FrameError,
    FrameFiles,
    check_placeholders,
    pattern_path,
)
from harness.backends.port_files import (
    DumpError,
    find_stage_dumps,
    frame_pattern,
    index_base,
    parse_dump,
    read_spec,
    template_size,
)

OPTION_KEYS = ("kind", "dir", "video", "pattern", "index_base", "stage_dumps")
AUDIO = "{audio}"


def _check_audio_placeholder(text: str, where: str) -> None:
    check_placeholders(text, where, ("audio",))


def parse_options(options: dict) -> dict:
    """Validated options with defaults filled in; ValueError naming the offending key."""
    for key in options:
        if key not in OPTION_KEYS:
            raise ValueError(f"unknown option {key!r} for a frames backend; known: {', '.join(OPTION_KEYS)}")
    if options.get("kind", FramesBackend.kind) != FramesBackend.kind:
        raise ValueError(f"kind: {options['kind']!r} is not {FramesBackend.kind!r}")
    video = options.get("video")
    if video is not None:
        from harness.video.read import SUFFIXES, is_video
        if "dir" in options:
            raise ValueError("dir and video: give one of them (a folder of frames or a video)")
        if not isinstance(video, str) or not is_video(video):
            raise ValueError(f"video: a video file ({' '.join(SUFFIXES)}) is required, got {video!r}")
        _check_audio_placeholder(video, "video")
    folder = options.get("dir", str(Path(video).parent) if video else None)
    if not isinstance(folder, str) or not folder:
        raise ValueError(f"dir: the folder of frames is required (a string), got {folder!r}")
    _check_audio_placeholder(folder, "dir")
    dumps = options.get("stage_dumps", {})
    if not isinstance(dumps, dict):
        raise ValueError(f"stage_dumps: must be a table, got {type(dumps).__name__}")
    return {"dir": folder, "video": video, "pattern": frame_pattern(options.get("pattern", "frame_%05d.jpg"), "pattern"),
            "index_base": index_base(options.get("index_base", 1), "index_base"),
            "stage_dumps": {stage: parse_dump(stage, spec, _check_audio_placeholder) for stage, spec in dumps.items()}}


def audio_key(inputs: RunInputs) -> str:
    """What ``{audio}`` stands for: the run's name of the audio, else its file name without extension."""
    return inputs.audio_name or Path(inputs.audio).stem


class FramesBackend(Backend):
    """Frames read from a folder; see the module docstring for its options."""

    kind = "frames"
    runs_here = False

    def __init__(self, name: str, options: dict | None = None) -> None:
        super().__init__(name, options)
        self.opts = parse_options(self.options)

    @property
    def follows_audio(self) -> bool:
        """Whether there is a folder or a video per audio (``{audio}`` in ``dir`` or ``video``)."""
        return AUDIO in self.opts["dir"] or AUDIO in (self.opts["video"] or "")

    def folder(self, inputs: RunInputs) -> Path:
        return Path(self.opts["dir"].replace(AUDIO, audio_key(inputs)))

    def run(self, inputs: RunInputs) -> BackendRun:
        if self.opts["video"]:
            return self._run_video(inputs)
        folder = self.folder(inputs)
        if not folder.is_dir():
            raise BackendFailed(f"{self.name}: folder of frames {folder} does not exist"
                                + (f" ({AUDIO} = {audio_key(inputs)!r})" if self.follows_audio else ""))
        pattern, base = self.opts["pattern"], self.opts["index_base"]
        files = FrameFiles(folder, pattern, base)
        present = set(files.indices())
        in_folder = len(present)
        info = {"dir": str(folder), "frames_in_folder": in_folder, "frame_files": files.to_info(),
                "missing_frames": [i for i in range(inputs.frames) if i not in present]}
        if len(info["missing_frames"]) == inputs.frames:
            raise BackendFailed(f"{self.name}: no frame file matching {pattern!r} (index base {base}) in {folder}; "
                                f"{in_folder} files match the pattern")
        dumps = self._dumps(folder, inputs.frames, audio_key(inputs))
        info["stage_dumps"] = {stage: str(where) for stage, (where, _) in dumps.items()}
        return BackendRun(frames=self._frames(files, inputs.frames, template_size(Path(inputs.source))),
                          stages=lambda: self._load(dumps), info=info, timings={})

    def _run_video(self, inputs: RunInputs) -> BackendRun:
        from harness.video.read import pictures, probe
        from reference.errors import InputError
        path = Path(self.opts["video"].replace(AUDIO, audio_key(inputs)))
        try:
            info = probe(path)
        except InputError as exc:
            raise BackendFailed(f"{self.name}: {exc}") from None
        line = info.timeline()
        shown = {k for k, j in enumerate(line.shown) if j is not None and k < inputs.frames}
        if not shown:
            raise BackendFailed(f"{self.name}: the video {path} has no picture for the run's {inputs.frames} frames")
        expected = template_size(Path(inputs.source))

        def frames() -> Iterator[np.ndarray | None]:
            stream = pictures(info, line)
            for k in range(inputs.frames):
                if k not in shown:
                    yield None
                    continue
                try:
                    picture = next(stream)
                except InputError as exc:
                    raise BackendFailed(f"{self.name}: {exc}") from None
                if expected is not None and picture.bgr.shape[:2] != tuple(expected):
                    raise BackendFailed(f"{self.name}: {path} is {picture.bgr.shape[1]}x{picture.bgr.shape[0]}, "
                                        f"expected {expected[1]}x{expected[0]}")
                yield picture.bgr

        dumps = self._dumps(path.parent, inputs.frames, audio_key(inputs))
        info_out = {"video": str(path), "frames_in_video": len(info.times),
                    "missing_frames": [i for i in range(inputs.frames) if i not in shown],
                    "stage_dumps": {stage: str(where) for stage, (where, _) in dumps.items()}}
        return BackendRun(frames=frames(), stages=lambda: self._load(dumps), info=info_out, timings={})

    def _dumps(self, folder: Path, frames: int, audio: str) -> dict:
        explicit = {}
        for stage, spec in self.opts["stage_dumps"].items():
            path_of = functools.partial(pattern_path, folder, spec["pattern"], values={"audio": audio})
            explicit[stage] = (path_of(spec["index_base"] if spec["per_frame"] else None),
                               lambda s=stage, sp=spec, p=path_of: read_spec(s, sp, p, frames))
        return explicit or find_stage_dumps(folder, frames)

    def _load(self, dumps: dict) -> dict[str, np.ndarray]:
        try:
            return {stage: load() for stage, (_, load) in dumps.items()}
        except DumpError as exc:
            raise BackendFailed(f"{self.name}: {exc}") from None

    def _frames(self, files: FrameFiles, frames: int, expected: tuple[int, int] | None) -> Iterator[np.ndarray | None]:
        for i in range(frames):
            if not files.path(i).is_file():
                yield None
                continue
            try:
                img = files.read(i, expected)
            except FrameError as exc:
                raise BackendFailed(f"{self.name}: {exc.problem} ({exc.path})") from None
            expected = expected or img.shape[:2]
            yield img
