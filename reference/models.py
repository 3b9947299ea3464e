"""Loading and checking the two ONNX models (audio encoder, generator) with ONNX Runtime.

Running them needs no `onnx` package (0.6 s of import): ONNX Runtime's sessions say what the models
take and give, and `onnx` reads a file only where ONNX Runtime cannot load it (to say why) or for
another engine (`check_model`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from reference.errors import InputError
from reference.provenance import model_files

ENCODER_FILE = "audio_encoder.onnx"
GENERATOR_FILE = "generator.onnx"

# name -> shape; None marks a dimension that may be dynamic (the encoder's batch axis).
ENCODER_IO = {"inputs": {"mel": (None, 1, 80, 16)}, "outputs": {"emb": (None, 512)}}
GENERATOR_IO = {
    "inputs": {"input": (1, 6, 320, 320), "audio": (1, 32, 16, 16)},
    "outputs": {"output": (1, 3, 320, 320)},
}


@dataclass(frozen=True)
class ModelFiles:
    """Paths of the two models of one model folder."""

    encoder: Path
    generator: Path

    @classmethod
    def from_dir(cls, folder: str | Path) -> "ModelFiles":
        """Find `audio_encoder.onnx` and `generator.onnx` in `folder` (or its `models/` subfolder)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(folder, f"no {ENCODER_FILE} + {GENERATOR_FILE}: the models folder does not exist",
                             "give the folder holding the two .onnx files")
        for base in (folder, folder / "models"):
            if (base / ENCODER_FILE).is_file() and (base / GENERATOR_FILE).is_file():
                return cls(base / ENCODER_FILE, base / GENERATOR_FILE)
        for base in (folder, folder / "models"):
            for present, absent in ((ENCODER_FILE, GENERATOR_FILE), (GENERATOR_FILE, ENCODER_FILE)):
                if (base / present).is_file():
                    raise InputError(base / absent, f"model file not found (next to {present})",
                                     "both models must sit in one folder")
        raise InputError(folder, f"no {ENCODER_FILE} + {GENERATOR_FILE} here or in models/",
                         "build synthetic ones with `synctalk-parity fixtures models --out DIR`")


# An input or output as the checks see it: (element type as ONNX names it, lower case; shape, None
# where a dimension is dynamic).
Signature = tuple[str, tuple]


def check_io(path: Path, found: dict[str, dict[str, Signature]], io: dict) -> None:
    """Raise InputError unless `found` ({"inputs": {name: signature}, "outputs": ...}) is exactly `io`,
    in float32."""
    for kind in ("inputs", "outputs"):
        expected = io[kind]
        if set(found[kind]) != set(expected):
            raise InputError(path, f"{kind} are {sorted(found[kind])}, expected {sorted(expected)}",
                             f"export with {kind[:-1]} names {', '.join(expected)}")
        for name, want in expected.items():
            elem, got = found[kind][name]
            if elem != "float":
                raise InputError(path, f"{kind[:-1]} {name!r} is {elem}, expected float32",
                                 "export the model in float32")
            ok = len(got) == len(want) and all(w is None or g in (None, w) for g, w in zip(got, want))
            if not ok:
                shown = tuple("N" if w is None else w for w in want)
                raise InputError(path, f"{kind[:-1]} {name!r} has shape {got}, expected {shown}",
                                 "this is not a SyncTalk_2D 328 model")


def check_model(path: Path, io: dict) -> None:
    """Raise InputError unless the file at `path` is an ONNX model with exactly the expected float32
    inputs and outputs (read with `onnx`, imported here: engines other than ONNX Runtime check with it,
    and `Models` only when ONNX Runtime cannot load a file), and every external data file it names is
    there and long enough (`model_files`)."""
    import onnx
    model_files(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for non-ONNX files
        raise InputError(path, f"not an ONNX model ({exc.__class__.__name__})", "give a .onnx file") from exc
    if not model.graph.node:
        raise InputError(path, "not an ONNX model (empty graph)", "give a .onnx file")

    def signature(value_info: onnx.ValueInfoProto) -> Signature:
        tensor = value_info.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        return onnx.TensorProto.DataType.Name(tensor.elem_type).lower(), dims

    inits = {t.name for t in model.graph.initializer}
    check_io(path, {"inputs": {v.name: signature(v) for v in model.graph.input if v.name not in inits},
                    "outputs": {v.name: signature(v) for v in model.graph.output}}, io)


def check_session(path: Path, session: ort.InferenceSession, io: dict) -> None:
    """Raise InputError unless the loaded `session` of the model at `path` has exactly the expected
    float32 inputs and outputs (ONNX Runtime lists its inputs without the initializers)."""

    def signature(arg) -> Signature:  # arg.type "tensor(float)"; arg.shape ints, names or None
        elem = arg.type[len("tensor("):-1] if arg.type.startswith("tensor(") else arg.type
        return elem, tuple(d if isinstance(d, int) else None for d in arg.shape)

    check_io(path, {"inputs": {a.name: signature(a) for a in session.get_inputs()},
                    "outputs": {a.name: signature(a) for a in session.get_outputs()}}, io)


def load_session(path: Path, io: dict, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    """An ONNX Runtime session of the model at `path`, its inputs and outputs checked against `io`. A
    file ONNX Runtime cannot load is read again with `onnx`, so that a file which is not an ONNX model
    or has the wrong inputs is an InputError saying so; an engine's own error is raised as it is. An
    external data file that is missing or truncated is an InputError naming it before ONNX Runtime
    reads it (`model_files`)."""
    model_files(path)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception:  # ONNX Runtime's Fail, InvalidProtobuf, InvalidArgument, ...
        check_model(path, io)
        raise
    check_session(path, session, io)
    return session


def session_options(threads: int = 0, spinning: bool = False) -> ort.SessionOptions:
    """CPU session options; `threads` 0 lets ONNX Runtime choose, or takes `$SYNCTALK_PARITY_CORES`
    where it is set (`cores_limit`).

    Idle intra-op threads do not spin by default (`session.intra_op.allow_spinning` 0): spinning
    burns the cores that the pipeline's helper and writer threads need. Measured on 2 shared cores
    (full synthetic models, the Sanders pack, 2 threads; 10 paired rounds of 40 frames of `infer`'s
    pipeline and 20 bare generator calls, spinning on and off in alternating order, load 1.2-2.8):
    with spinning, the pipeline took 1.020 and 1.037 times as long per frame in two runs (every
    round of the second slower) and 3.6-5.7 % more CPU, while the bare generator alone was 3.7 %
    faster. The pipeline is what runs, so it stays off (`synctalk-parity bench` measures both).

    ONNX Runtime's memory pattern (one block planned per input shape) is off: on the full synthetic
    generator, single-threaded, a session then held 234 MB instead of 494 MB after two calls, its
    steady call took the same CPU (115.7 ms, median of 15 interleaved), and only its first call
    paid for fresh memory, not its first two (0.21 s + 0.12 s against 0.25 s + 0.21 s). The
    numbers are the same: the pattern places buffers, it does not change the arithmetic.
    """
    opts = ort.SessionOptions()
    opts.enable_mem_pattern = False
    opts.intra_op_num_threads = threads or cores_limit()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


class Models:
    """The audio encoder and generator as ONNX Runtime sessions, with their I/O checked.

    `providers` is ONNX Runtime's list (names or (name, options) pairs); `options` replaces the
    default CPU session options built from `threads`. `workers` > 1 loads the generator that many
    times, each session on `worker_threads` intra-op threads (spinning off), for frames made in
    parallel (`generate(..., worker=i)`); the options then apply to the encoder alone, and
    `generator_options`, where given, to the generator sessions.
    """

    def __init__(self, files: ModelFiles, threads: int = 0, providers: list | None = None,
                 options: ort.SessionOptions | None = None, workers: int = 1,
                 worker_threads: int = 1, generator_options: ort.SessionOptions | None = None) -> None:
        if workers < 1:
            raise ValueError(f"Models: workers must be at least 1, got {workers}")
        self.files = files
        self.workers, self.worker_threads = workers, worker_threads
        providers = providers or ["CPUExecutionProvider"]
        opts = options or session_options(threads)
        self.encoder = load_session(files.encoder, ENCODER_IO, opts, providers)
        generator_opts = generator_options or (opts if workers == 1 else session_options(worker_threads))
        self.generators = tuple(load_session(files.generator, GENERATOR_IO, generator_opts, providers)
                                for _ in range(workers))
        self.generator = self.generators[0]
        batch = self.encoder.get_inputs()[0].shape[0]
        self.encoder_batch = ENCODER_BATCH if not isinstance(batch, int) else batch

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings (N, 512) of encoder windows (N, 1, 80, 16), batched where the model allows it."""
        step = self.encoder_batch
        parts = [self.encoder.run(["emb"], {"mel": windows[i:i + step]})[0] for i in range(0, len(windows), step)]
        return check_finite(np.concatenate(parts).astype(np.float32, copy=False), self.files.encoder, "emb")

    def generate(self, image: np.ndarray, audio: np.ndarray, worker: int = 0) -> np.ndarray:
        """Generator output (1, 3, 320, 320) for input (1, 6, 320, 320) and audio (1, 32, 16, 16), on the
        generator session of `worker` (one caller at a time per worker)."""
        return check_finite(self.generators[worker].run(["output"], {"input": image, "audio": audio})[0],
                            self.files.generator, "output")


ENCODER_BATCH = 64  # encoder windows per call where the model's batch axis is dynamic; else its batch
MAX_FRAME_WORKERS = 8  # generator sessions at most: each holds ~170 MB of buffers (docs/pipeline.md)


CORES_ENV = "SYNCTALK_PARITY_CORES"


def cores_limit() -> int:
    """The cores `$SYNCTALK_PARITY_CORES` allows every engine left to size itself (a thread count of
    0); 0 without it. ValueError naming the variable when it is not a whole number of at least 1."""
    value = os.environ.get(CORES_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${CORES_ENV} must be a whole number of cores, at least 1, not {value!r}; unset it to use all")
    return int(value)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one), at most
    `$SYNCTALK_PARITY_CORES`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, cores_limit() or cores)


def cores_for(threads: int) -> int:
    """The cores a thread count spends: `threads`, or all this process may use (`available_cores`) for 0."""
    return int(threads) if threads else available_cores()


def frame_workers(threads: int) -> tuple[int, int]:
    """(sessions, intra-op threads each) of the reference's generator on `threads` cores (0: all,
    `available_cores`): one single-threaded session per core, at most MAX_FRAME_WORKERS sessions,
    which then share the cores out between them (16 cores: 8 sessions x 2 threads)."""
    if threads < 0:
        raise ValueError(f"threads must be 0 (all cores) or more, got {threads}")
    cores = cores_for(threads)
    workers = min(cores, MAX_FRAME_WORKERS)
    return workers, cores // workers


def reference_models(files: ModelFiles, threads: int = 0) -> Models:
    """The reference's engine on `threads` cores (0: all): the encoder on that many intra-op threads
    (0: ONNX Runtime's choice), the generator as one single-threaded session per core (`frame_workers`),
    which `ReferencePipeline` runs on consecutive frames in parallel. On one core, one session of one
    thread."""
    workers, worker_threads = frame_workers(threads)
    return Models(files, threads=threads, workers=workers, worker_threads=worker_threads)


def check_finite(values: np.ndarray, model: Path, output: str) -> np.ndarray:
    """`values`, or InputError naming the model when its output holds NaN or Inf."""
    if not np.isfinite(values).all():
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise InputError(model, f"output {output!r} holds {bad} NaN/Inf values of {values.size}",
                         "the model (or its precision) is broken: check the export")
    return values
