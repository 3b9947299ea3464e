"""Property tests (hypothesis) of the input readers: whatever the bytes, each returns a well-formed value
or raises its own clear error (InputError / ConfigError), never anything else (issue 8)."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.runs.config import ConfigError, ParityConfig, config_from_dict, read_toml
from harness.verdicts.results import read_results
from reference.audio import load_wav
from reference.data import N_LANDMARKS, Pack, read_landmarks
from reference.errors import InputError

# $FUZZ_EXAMPLES runs more examples (600 each passed when this was written); no example database is kept.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def value_or_named_error(call, path: Path):
    """`call()`'s value, or None when it raised an InputError naming `path` (any other error fails)."""
    try:
        return call()
    except InputError as exc:
        assert exc.path == path and str(path) in str(exc)
        return None


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


# --------------------------------------------------------------------------- WAV loader

@st.composite
def wav_files(draw) -> bytes:
    """A RIFF/WAVE header with arbitrary fields and sizes, followed by arbitrary bytes (or raw bytes)."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2000))
    fmt_tag = draw(st.sampled_from([1, 3, 0, 2, 0xFFFE, draw(st.integers(0, 0xFFFF))]))
    channels = draw(st.integers(0, 8))
    rate = draw(st.sampled_from([16000, 44100, 48000, 8000, 0, 1, draw(st.integers(0, 2**32 - 1))]))
    bits = draw(st.sampled_from([8, 16, 24, 32, 64, 0, 7]))
    block = max(1, channels * bits // 8)
    payload = draw(st.binary(max_size=20000))
    size = draw(st.sampled_from([len(payload), 0, 0xFFFFFFFF, draw(st.integers(0, 2**32 - 1))]))
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, fmt_tag, channels, rate, rate * block % 2**32, block % 2**16, bits)
    return b"RIFF" + struct.pack("<I", (36 + len(payload)) % 2**32) + b"WAVE" + fmt + b"data" \
        + struct.pack("<I", size) + payload


@FUZZ
@given(data=wav_files())
def test_wav_loader_returns_16k_mono_float_or_input_error(folder, data):
    path = write(folder, "fuzz.wav", data)
    wav = value_or_named_error(lambda: load_wav(path), path)
    if wav is None:
        return
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.size >= 3000 and np.isfinite(wav).all()


# --------------------------------------------------------------------------- .lms parser

numbers = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", "x", "1e40", "-0", "0x10", "٣"]))
lines = st.lists(numbers, min_size=0, max_size=3).map(" ".join)


@st.composite
def lms_files(draw) -> str:
    """110 good lines with a few replaced, removed or added, or arbitrary text."""
    if draw(st.booleans()):
        return draw(st.text(max_size=300))
    rows = [f"{i}.5 {2 * i}.25" for i in range(N_LANDMARKS)]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(rows)))
        action = draw(st.sampled_from(["replace", "delete", "insert"]))
        if action == "insert" or at == len(rows):
            rows.insert(at, draw(lines))
        elif action == "delete":
            del rows[at]
        else:
            rows[at] = draw(lines)
    return "\n".join(rows)


@FUZZ
@given(text=lms_files())
def test_landmark_parser_returns_110_points_or_input_error(folder, text):
    path = write(folder, "fuzz.lms", text)
    lms = value_or_named_error(lambda: read_landmarks(path), path)
    if lms is None:
        return
    assert lms.shape == (N_LANDMARKS, 2) and lms.dtype == np.int32


@FUZZ
@given(points=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=110, max_size=110))
def test_landmark_parser_truncates_valid_files_like_synctalk(folder, points):
    path = write(folder, "valid.lms", "\n".join(f"{x!r} {y!r}" for x, y in points))
    expected = np.array(points, dtype=np.float32).astype(np.int32)
    np.testing.assert_array_equal(read_landmarks(path), expected)


# --------------------------------------------------------------------------- crop_rectangles.json

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2000, 4000) | st.floats(allow_nan=False)
                           | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner,
                                                                                     max_size=4),
                           max_leaves=20)
rect_entries = st.fixed_dictionaries({"rect": st.one_of(st.lists(st.integers(-10, 1300), min_size=4, max_size=4),
                                                         json_values)})
rect_files = st.one_of(json_values,
                       st.dictionaries(st.sampled_from(["0", "1", "2", "3", "x"]), rect_entries, max_size=4))


def load_rects(path: Path, n: int) -> list:
    """Pack's rect-file reader on its own (a Pack without the folder checks of its constructor)."""
    pack = Pack.__new__(Pack)
    pack.rects_path = path
    return pack._load_rects(n)


@FUZZ
@given(doc=rect_files, n=st.integers(1, 4), raw=st.booleans())
def test_rect_json_reader_returns_valid_rects_or_input_error(folder, doc, n, raw):
    path = write(folder, "crop_rectangles.json", json.dumps(doc)[:-1] if raw else json.dumps(doc))
    rects = value_or_named_error(lambda: load_rects(path, n), path)
    if rects is None:
        return
    assert len(rects) == n
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 < x2 and 0 <= y1 < y2 and all(type(v) is int for v in (x1, y1, x2, y2))


# --------------------------------------------------------------------------- config loader

toml_values = st.recursive(st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=False, allow_infinity=False)
                           | st.sampled_from(["", "cpu", "silence", "synthetic:tiny", "synthetic:x", "desktop",
                                              "../x", "/", "{pack}", "f%05d.png", "x\x00"]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.sampled_from(["kind", "provider", "thresholds", "psnr_min", "profile", "command",
                                                "threads", "timeout", "zz"]), inner, max_size=3),
                           max_leaves=12)
def mutate(draw, doc, values: st.SearchStrategy):
    """A deep copy of `doc` with one random place (reached by random steps into dicts and lists)
    replaced by a drawn value, deleted, or given an extra key."""
    doc = json.loads(json.dumps(doc))
    node = doc
    while True:
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return doc
        key = draw(st.sampled_from(keys))
        if isinstance(node[key], (dict, list)) and node[key] and draw(st.sampled_from([True, True, False])):
            node = node[key]
            continue
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            node[key] = draw(values)
        elif action == "delete" and isinstance(node, dict):
            del node[key]
        elif isinstance(node, dict):
            node[draw(st.sampled_from(["kind", "fps", "outptu", "psnr", "zz"]))] = draw(values)
        return doc


def valid_config(pack: str, models: str, audio: str) -> dict:
    return {"data": {"pack": pack, "models": models, "audio": [audio, "silence"], "frames": 2},
            "run": {"output": "out", "profile": "desktop", "explain": False},
            "backends": {"a": {"kind": "fp16", "thresholds": {"psnr_min": 40, "profile": "mobile"}},
                         "p": {"kind": "subprocess", "command": ["port", "--out={output}"], "timeout": 5,
                               "output_pattern": "f%05d.png"},
                         "reference[channel_order=rgb]": {"threads": 1}}}


@st.composite
def configs(draw, pack: str, models: str, audio: str) -> dict:
    """The valid config with up to three random mutations."""
    doc = valid_config(pack, models, audio)
    for _ in range(draw(st.integers(0, 3))):
        doc = mutate(draw, doc, toml_values)
    return doc


@pytest.fixture(scope="module")
def config_inputs(synthetic_pack, tiny_models_dir, folder) -> tuple[str, str, str, Path]:
    return str(synthetic_pack), str(tiny_models_dir), str(synthetic_pack / "audio.wav"), folder / "parity.toml"


@FUZZ
@given(data=st.data())
def test_config_loader_returns_a_config_or_config_error(config_inputs, data, monkeypatch_cwd):
    pack, models, audio, path = config_inputs
    raw = data.draw(configs(pack, models, audio))
    try:
        cfg = config_from_dict(raw, path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: ")
        return
    assert isinstance(cfg, ParityConfig) and cfg.frames >= 1 and cfg.backends


@pytest.fixture(scope="module")
def monkeypatch_cwd(folder):
    """The config tests run in the fuzz folder (outputs resolve below it)."""
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    yield
    mp.undo()


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_toml_reader_returns_a_table_or_config_error(folder, text):
    path = write(folder, "fuzz.toml", text)
    try:
        assert isinstance(read_toml(path), dict)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}: ")


# --------------------------------------------------------------------------- results.json reader

VALID = {"schema": "synctalk-parity/results", "version": 2, "created": "now", "partial": False,
         "machine": {"name": "m", "os": "o", "cpu": "c", "python": "3", "libraries": {}}, "profile": "desktop",
         "inputs": {"source": {"path": "p", "kind": "pack", "sha256": "0"},
                    "models": {"audio_encoder": "0", "generator": "0"}, "audio": [{"name": "a", "sha256": "0"}]},
         "runs": [{"backend": "b", "kind": "k", "audio": "a", "status": "passed", "failures": [], "frames": 1}]}


@st.composite
def results_docs(draw) -> str:
    """The valid document with one random mutation, arbitrary JSON, or broken text."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.text(max_size=100))
    if choice == 1:
        return json.dumps(draw(json_values))
    return json.dumps(mutate(draw, VALID, json_values))


@FUZZ
@given(text=results_docs())
def test_results_reader_returns_a_valid_document_or_input_error(folder, text):
    path = write(folder, "results.json", text)
    results = value_or_named_error(lambda: read_results(path), path)
    if results is None:
        return
    assert results["schema"] == "synctalk-parity/results" and isinstance(results["runs"], list)


def test_results_reader_accepts_the_valid_document(folder):
    assert read_results(write(folder, "valid.json", json.dumps(VALID)))["runs"][0]["status"] == "passed"


# --------------------------------------------------------------------------- what ports hand us (issue 13)

def _port():
    from harness.backends.subprocess_port import SubprocessBackend
    return SubprocessBackend("port", {"command": ["port"]})


def dump_or_backend_failed(spec: dict, path: Path):
    """The dump reader's array (checked: finite real numbers of the declared shape), or None when it
    raised BackendFailed naming the file (any other error fails)."""
    from harness.backends.base import BackendFailed
    from harness.backends.subprocess_port import _parse_dump
    parsed = _parse_dump("audio_windows", spec)
    try:
        arr = _port()._read_dump("audio_windows", parsed, path, 0.0)
    except BackendFailed as exc:
        assert str(path) in str(exc)
        return None
    assert isinstance(arr, np.ndarray) and arr.ndim >= 1 and arr.size and arr.dtype.kind in "biuf"
    assert np.isfinite(arr).all()
    if parsed["shape"] is not None:
        assert len(arr.shape) == len(parsed["shape"])
        assert all(d in (-1, a) for d, a in zip(parsed["shape"], arr.shape))
    return arr


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


@st.composite
def npy_files(draw) -> bytes:
    """A .npy file of any real/complex/text dtype and shape (NaN and inf allowed), maybe truncated or with
    a header that claims another shape, or plain bytes."""
    from hypothesis.extra import numpy as hnp
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=400))
    dtype = draw(st.sampled_from(["<f4", ">f8", "<i2", "|u1", "|b1", "<c8", "<U3"]))
    arr = draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
    data = _npy_bytes(arr)
    cut = draw(st.sampled_from(["none", "truncate", "claim"]))
    if cut == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif cut == "claim":  # the header claims far more data than the file holds
        data = data.replace(str(arr.shape).encode(), f"({draw(st.integers(2**20, 2**40))},)".encode(), 1)
    return data


@FUZZ
@given(data=npy_files(), shape=st.one_of(st.none(), st.lists(st.sampled_from([-1, 1, 2, 3, 4]), max_size=3)))
def test_npy_stage_dump_reader_returns_finite_numbers_or_backend_failed(folder, data, shape):
    spec = {"pattern": "dump.npy"} if shape is None or shape.count(-1) > 1 else {"pattern": "dump.npy",
                                                                                 "shape": shape}
    dump_or_backend_failed(spec, write(folder, "dump.npy", data))


@FUZZ
@given(floats=st.lists(st.floats(width=32), max_size=40), extra=st.sampled_from([0, 0, 1, 2, 3]),
       shape=st.one_of(st.none(), st.lists(st.integers(1, 5), min_size=1, max_size=3)), infer=st.booleans())
def test_f32le_stage_dump_reader_returns_finite_numbers_or_backend_failed(folder, floats, extra, shape, infer):
    data = np.asarray(floats, "<f4").tobytes() + b"\0" * extra  # NaN, inf, wrong sizes, truncated
    shape = shape or [max(1, len(floats))]  # None: the size that fits (before truncation)
    shape = [-1] + shape[1:] if infer else shape
    arr = dump_or_backend_failed({"pattern": "dump.bin", "format": "f32le", "shape": shape},
                                 write(folder, "dump.bin", data))
    if arr is not None:
        assert arr.dtype == np.float32 and arr.tobytes() == data


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=6)


@st.composite
def stdout_lines(draw) -> bytes:
    """A port's stdout: timing lines with any "stage" and "ms" (huge integers, NaN, negative, strings),
    other JSON, text and raw bytes, with or without a final newline."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            ms = draw(st.one_of(st.integers(), st.integers(10**300, 10**400), st.floats(), st.text(max_size=4)))
            doc = {"stage": draw(st.sampled_from(["frame", "generator", ""]) | st.text(max_size=5)), "ms": ms}
            lines.append(json.dumps(doc, allow_nan=True).encode())
        elif kind == 1:
            lines.append(json.dumps(draw(JSON_VALUES), allow_nan=True).encode())
        elif kind == 2:
            lines.append(draw(st.text(max_size=30)).encode("utf-8", "surrogatepass"))
        else:
            lines.append(draw(st.binary(max_size=30)))
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))


@FUZZ
@given(data=stdout_lines())
def test_timing_lines_parser_keeps_only_finite_durations(folder, data):
    from harness.backends.subprocess_port import _parse_timing_lines
    latencies: list = []
    seconds, counts = _parse_timing_lines(write(folder, "stdout.log", data), latencies)
    assert seconds.keys() == counts.keys()
    assert all(isinstance(v, float) and np.isfinite(v) and v >= 0 for v in seconds.values())
    assert all(isinstance(v, int) and v > 0 for v in counts.values())
    assert len(latencies) == counts.get("frame", 0) and all(np.isfinite(x) and x >= 0 for x in latencies)
