"""The reference pipeline: features, frame windows, conventions, a run, stage dumps."""
from __future__ import annotations

import json
import re
import threading
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.cli import build_parser
from reference import image
from reference.conventions import CHOICES, Conventions
from reference.data import Dataset, Pack, template_index
from reference.errors import InputError
from reference.features import audio_window, pad_features
from reference.infer import infer
from reference.models import ModelFiles, Models, reference_models
from reference.output import PNG_LEVEL, encode_frame, frame_path, output_roundtrip, write_frame
from reference.pipeline import ReferencePipeline, audio_features


def synctalk_get_audio_features(features, index):
    """inference_328.py's get_audio_features, transcribed with numpy in place of torch."""
    left, right = index - 8, index + 8
    pad_left = pad_right = 0
    if left < 0:
        pad_left, left = -left, 0
    if right > features.shape[0]:
        pad_right, right = right - features.shape[0], features.shape[0]
    auds = features[left:right]
    if pad_left > 0:
        auds = np.concatenate([np.zeros_like(auds[:pad_left]), auds], axis=0)
    if pad_right > 0:
        auds = np.concatenate([auds, np.zeros_like(auds[:pad_right])], axis=0)
    return auds


@pytest.fixture(scope="module")
def models(tiny_models_dir):
    return Models(ModelFiles.from_dir(tiny_models_dir), threads=1)


@pytest.fixture(scope="module")
def feats(models, synthetic_pack):
    return audio_features(synthetic_pack / "audio.wav", models)


def test_padding_and_windows_match_inference_328():
    emb = np.random.default_rng(0).random((30, 512), dtype=np.float32)
    padded = pad_features(emb)
    assert padded.shape == (32, 512)
    assert np.array_equal(padded[0], emb[0]) and np.array_equal(padded[1], emb[0])
    assert np.array_equal(padded[-1], emb[-1]) and np.array_equal(padded[-2], emb[-1])
    for i in (0, 3, 8, 15, 24, 31):
        want = synctalk_get_audio_features(padded, i)
        assert want.shape == (16, 512)
        assert np.array_equal(audio_window(padded, i), want.reshape(1, 32, 16, 16))
    tiled = audio_window(padded, 10, mode="tile").reshape(16, 512)
    assert np.array_equal(tiled, np.repeat(padded[10:11], 16, axis=0))
    assert np.array_equal(audio_window(padded, 10, offset=1), audio_window(padded, 11))
    assert np.array_equal(pad_features(emb, "none"), emb)


def test_run_writes_one_based_frames_composited_into_the_templates(models, synthetic_pack, tmp_path):
    out = tmp_path / "frames"
    out.mkdir()
    (out / "frame_00099.png").write_bytes(b"stale")
    (out / "notes.txt").write_text("kept")
    result = infer(Pack(synthetic_pack), synthetic_pack / "audio.wav", models, out, frames=5, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{i:05d}.png" for i in range(1, 6)] + ["notes.txt"]
    assert result.frames == 5 and result.fps > 0
    pack = Pack(synthetic_pack)
    for i in range(5):
        frame = cv2.imread(str(out / f"frame_{i + 1:05d}.png"))
        t = template_index(i, pack.n_images)
        assert t == i + 1  # frame 0 uses dataset index 1, image 2.jpg
        full = cv2.imread(str(synthetic_pack / "full_body_img" / f"{t + 1}.jpg"))
        x1, y1, x2, y2 = pack.rect(t)
        outside = np.ones(full.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        assert np.array_equal(frame[outside], full[outside])
        assert not np.array_equal(frame[y1:y2, x1:x2], full[y1:y2, x1:x2])


def test_written_frames_decode_to_the_exact_composited_frames(models, synthetic_pack, feats, tmp_path):
    """The PNG level is a speed choice: infer's default (the CLI's too) writes lossless frames."""
    pack = Pack(synthetic_pack)
    infer(pack, synthetic_pack / "audio.wav", models, tmp_path, frames=3, progress=False)
    for result in ReferencePipeline(pack, models).frames(feats, 3):
        written = cv2.imread(str(frame_path(tmp_path, result.index, "png")), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8 and np.array_equal(written, result.frame)
    infer_options = build_parser()._subparsers._group_actions[0].choices["infer"]
    assert infer_options.get_default("png_level") == PNG_LEVEL


@pytest.mark.parametrize("workers", [1, 2])
def test_frames_prepare_ahead_and_composite_behind_the_generator(tiny_models_dir, synthetic_pack, feats, workers):
    """While a generator thread makes frame i (on session i mod K, K = workers), the helper thread has
    prepared frame i + K, composites frame i - 1 and, with K > 1, frame i + K - 1 is being made on
    another session: a generator call that waits for these would hang (and fail here) in a pipeline
    that did them in turn; and the frames are those of frame(), one by one, in order."""
    models = Models(ModelFiles.from_dir(tiny_models_dir), threads=1, workers=workers)
    pipeline = ReferencePipeline(Pack(synthetic_pack), models)
    n = 6
    done: dict[tuple[str, int], threading.Event] = {(k, i): threading.Event() for k in ("prepared", "finished", "made")
                                                   for i in range(n)}
    helpers: set[int] = set()
    generators: dict[int, int] = {}  # frame -> thread
    prepare, finish, generate = pipeline.prepare, pipeline.finish, pipeline.generate

    def prepare_ahead(i, feats):
        helpers.add(threading.get_ident())
        prepared = prepare(i, feats)
        done["prepared", i].set()
        return prepared

    def finish_behind(prepared, output):
        helpers.add(threading.get_ident())
        result = finish(prepared, output)
        done["finished", prepared.index].set()
        return result

    def generate_waiting(prepared, worker=0):
        i = prepared.index
        assert worker == i % workers
        generators[i] = threading.get_ident()
        done["made", i].set()
        assert i + workers >= n or done["prepared", i + workers].wait(10), f"frame {i + workers} not prepared during frame {i}"
        assert i == 0 or done["finished", i - 1].wait(10), f"frame {i - 1} not composited during frame {i}"
        later = i + workers - 1
        assert later >= n or done["made", later].wait(10), f"frame {later} not made alongside frame {i}"
        return generate(prepared, worker)

    pipeline.prepare, pipeline.finish, pipeline.generate = prepare_ahead, finish_behind, generate_waiting
    results = list(pipeline.frames(feats, n))
    assert len(helpers) == 1 and threading.get_ident() not in helpers
    if workers == 1:  # one session: the calling thread runs the generator, only while it is asked for a frame
        assert set(generators.values()) == {threading.get_ident()}
    else:
        assert len(set(generators.values())) == workers and not set(generators.values()) & (helpers | {threading.get_ident()})
    sequential = ReferencePipeline(Pack(synthetic_pack), models)
    for i, result in enumerate(results):
        assert result.index == i and np.array_equal(result.frame, sequential.frame(i, feats).frame)


def test_stopping_early_cancels_what_has_not_started(models, synthetic_pack, feats):
    """Closing the iteration (an error, Ctrl-C) waits only for the helper's current call: the work
    queued behind it never runs."""
    pipeline = ReferencePipeline(Pack(synthetic_pack), models, prefetch=3)
    started: list[int] = []
    prepare = pipeline.prepare

    def slow_prepare(i, feats):
        started.append(i)
        if i >= 3:
            time.sleep(0.5)  # frame 4's prepare (queued at frame 1) has not started when the iteration is closed
        return prepare(i, feats)

    pipeline.prepare = slow_prepare
    frames = pipeline.frames(feats, 12)
    assert next(frames).index == 0
    frames.close()
    assert started[:3] == [0, 1, 2] and 4 not in started, started


@pytest.mark.parametrize("fmt, level", [("png", 0), ("png", 1), ("png", 9), ("png", "fast"), ("jpg", 0)])
def test_write_frame_writes_encode_frames_bytes(synthetic_pack, tmp_path, fmt, level):
    frame = cv2.imread(str(synthetic_pack / "full_body_img" / "1.jpg"))
    path = tmp_path / f"frame.{fmt}"
    write_frame(path, frame, fmt, level)
    assert path.read_bytes() == encode_frame(frame, fmt, level)


def test_the_default_png_of_a_pack_frame_is_lossless_and_at_most_half_a_megabyte(shared_data, tmp_path):
    """The default output keeps every pixel of a 1280x720 frame in at most 0.5 MB (level 0: 2.8 MB), as
    OpenCV and Pillow both decode it."""
    frame = cv2.imread(str(shared_data / "sanders_pack" / "full_body_img" / "1.jpg"))
    assert frame.shape == (720, 1280, 3)
    path = tmp_path / "frame_00001.png"
    write_frame(path, frame, "png")
    assert path.stat().st_size <= 500_000, path.stat().st_size
    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), frame)
    with Image.open(path) as png:
        assert png.mode == "RGB" and np.array_equal(np.asarray(png), frame[..., ::-1])


@pytest.mark.parametrize("kind", ["grey", "bgra", "crop"])
def test_the_fast_png_is_lossless_for_grey_bgra_and_cropped_images(synthetic_pack, kind):
    frame = cv2.imread(str(synthetic_pack / "full_body_img" / "1.jpg"))
    img = {"grey": cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), "bgra": cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA),
           "crop": frame[5:41, 7:60]}[kind]
    decoded = cv2.imdecode(np.frombuffer(encode_frame(img, "png", "fast"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, img)


def test_the_fast_png_names_what_it_cannot_encode():
    with pytest.raises(ValueError, match=r"8-bit grey, BGR or BGRA image, not float32 \(4, 4, 3\)"):
        encode_frame(np.zeros((4, 4, 3), np.float32), "png", "fast")


@pytest.mark.parametrize("output", ["jpeg95", "jpeg37", "jpeg80_444", "pil_jpeg85", "pil_jpeg90_444", "lossless"])
def test_the_round_trip_of_a_box_is_the_whole_frames_round_trip_there(synthetic_pack, output):
    """`output_roundtrip` with a box gives the whole frame's round trip in the box, for boxes anywhere
    (on the edges, off the block grid) on a pack frame and on noise of an odd size; the box's own
    pixels alone, without the blocks around them, would not."""
    rng = np.random.default_rng(3)
    frame = cv2.imread(str(synthetic_pack / "full_body_img" / "1.jpg"))
    noise = rng.integers(0, 256, (77, 101, 3), np.uint8)
    for img in (frame, noise):
        whole = output_roundtrip(img, output)
        h, w = img.shape[:2]
        boxes = [(slice(0, h), slice(0, w)), (slice(h - 5, h), slice(0, 9)), (slice(17, 40), slice(33, 66))]
        boxes += [(slice(y, y + rng.integers(1, h - y + 1)), slice(x, x + rng.integers(1, w - x + 1)))
                  for y, x in zip(rng.integers(0, h - 1, 8), rng.integers(0, w - 1, 8))]
        for box in boxes:
            assert np.array_equal(output_roundtrip(img, output, box), whole[box]), (img.shape, box)
    if output != "lossless":
        box = (slice(17, 40), slice(33, 66))
        assert not np.array_equal(output_roundtrip(np.ascontiguousarray(noise[box]), output), whole[box])


def test_write_frame_raises_the_systems_error_where_opencv_cannot_write(synthetic_pack, tmp_path):
    frame = cv2.imread(str(synthetic_pack / "full_body_img" / "1.jpg"))
    with pytest.raises(FileNotFoundError, match="missing"):
        write_frame(tmp_path / "missing" / "frame.png", frame, "png")


def test_too_many_frames_is_a_clear_error(models, synthetic_pack, feats, tmp_path):
    with pytest.raises(InputError, match=f"audio gives {feats.n_frames}"):
        infer(Pack(synthetic_pack), synthetic_pack / "audio.wav", models, tmp_path, frames=feats.n_frames + 1,
              progress=False)


def test_stage_dump_holds_every_stage_consistently(models, synthetic_pack, feats, tmp_path):
    infer(Pack(synthetic_pack), synthetic_pack / "audio.wav", models, tmp_path / "f", frames=6,
          dump_stages=tmp_path / "stages", dump_frames=3, progress=False)
    index = json.loads((tmp_path / "stages" / "index.json").read_text())
    stages = {name: np.load(tmp_path / "stages" / meta["file"]) for name, meta in index["stages"].items()}
    assert set(stages) == {"mel", "encoder_windows", "embeddings", "padded_features", "audio_windows",
                           "generator_outputs", "patches"}
    for name, meta in index["stages"].items():
        assert list(stages[name].shape) == meta["shape"]
    assert np.array_equal(stages["mel"], feats.mel)
    k = len(stages["embeddings"])
    assert k == 6 + 8  # only the windows the 6 frames read are encoded
    assert np.allclose(stages["embeddings"], feats.embeddings[:k], atol=1e-6)
    assert stages["audio_windows"].shape == (6, 32, 16, 16)
    assert np.array_equal(stages["audio_windows"][4], audio_window(stages["padded_features"], 4)[0])
    assert stages["generator_outputs"].shape == (3, 3, 320, 320)
    for k in range(3):
        assert np.array_equal(image.quantize(stages["generator_outputs"][k]), stages["patches"][k])
    assert index["frame_templates"] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_held_pipeline_makes_no_frame_and_goes_on_after(tiny_models_dir, synthetic_pack, feats, workers):
    """Within `hold` no piece of frame work (prepare, generator call, composite) is under way or
    starts (a measurement's pause); after it the frames go on, the same as without it."""
    models = Models(ModelFiles.from_dir(tiny_models_dir), threads=1, workers=workers)
    pipeline = ReferencePipeline(Pack(synthetic_pack), models)
    calls: dict[str, list[int]] = {"prepare": [], "generate": [], "finish": []}

    def counted(name, work):
        def run(*args):
            first = args[0]
            calls[name].append(first if isinstance(first, int) else first.index)
            time.sleep(0.05)  # long enough for a held pipeline to start another, if it would
            return work(*args)
        return run

    for name in calls:
        setattr(pipeline, name, counted(name, getattr(pipeline, name)))
    frames = pipeline.frames(feats, 8)
    first = [next(frames) for _ in range(2)]
    with pipeline.hold():
        assert pipeline._in_flight == 0
        made = {name: len(done) for name, done in calls.items()}
        time.sleep(0.3)
        assert {name: len(done) for name, done in calls.items()} == made, "frame work started within hold"
    results = first + list(frames)
    assert [r.index for r in results] == list(range(8))
    assert all(sorted(done) == list(range(8)) for done in calls.values()), calls
    sequential = ReferencePipeline(Pack(synthetic_pack), models)
    assert all(np.array_equal(r.frame, sequential.frame(r.index, feats).frame) for r in results)


def test_the_reference_spends_its_cores_on_at_most_eight_generator_sessions(monkeypatch):
    from reference import models as models_module
    assert [models_module.frame_workers(t) for t in (1, 2, 3, 8, 9, 16, 32)] == [
        (1, 1), (2, 1), (3, 1), (8, 1), (8, 1), (8, 2), (8, 4)]
    monkeypatch.setattr(models_module, "available_cores", lambda: 5)
    assert models_module.frame_workers(0) == (5, 1)
    with pytest.raises(ValueError, match="threads must be 0"):
        models_module.frame_workers(-1)


def test_the_cores_variable_caps_every_engine_left_to_size_itself(monkeypatch):
    """$SYNCTALK_PARITY_CORES caps the cores the reference spreads its sessions over and the threads of a
    session left at 0; an explicit thread count stays; a bad value is an error naming the variable."""
    from reference import models as models_module
    monkeypatch.delenv(models_module.CORES_ENV, raising=False)
    cores = models_module.available_cores()
    assert models_module.session_options(0).intra_op_num_threads == 0  # ONNX Runtime chooses
    monkeypatch.setenv(models_module.CORES_ENV, "1")
    assert models_module.available_cores() == 1 and models_module.frame_workers(0) == (1, 1)
    assert models_module.session_options(0).intra_op_num_threads == 1
    assert models_module.session_options(3).intra_op_num_threads == 3
    monkeypatch.setenv(models_module.CORES_ENV, str(cores + 5))
    assert models_module.available_cores() == cores  # never more than the process may use
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(models_module.CORES_ENV, bad)
        with pytest.raises(ValueError, match=r"\$SYNCTALK_PARITY_CORES must be a whole number"):
            models_module.available_cores()


def test_frames_in_parallel_are_byte_identical_to_one_session(tiny_models_dir, synthetic_pack, tmp_path):
    """K = 2 generator sessions on alternating frames write the same frame files and stage dumps, byte
    for byte, as the single session of --threads 1 (every frame's generator output dumped)."""
    files = ModelFiles.from_dir(tiny_models_dir)
    written = {}
    for threads in (1, 2):
        models = reference_models(files, threads)
        assert models.workers == threads
        out = tmp_path / f"k{threads}"
        infer(Pack(synthetic_pack), synthetic_pack / "audio.wav", models, out / "frames", frames=9,
              dump_stages=out / "stages", dump_frames=9, progress=False)
        written[threads] = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len([name for name in written[1] if name.startswith("frames/")]) == 9
    assert {"stages/generator_outputs.npy", "stages/patches.npy", "stages/index.json"} <= set(written[1])
    assert written[1].keys() == written[2].keys()
    for name, data in written[1].items():
        assert written[2][name] == data, f"{name} differs between 1 and 2 generator sessions"


def test_dataset_and_pack_agree_on_rects(synthetic_pack):
    pack, dataset = Pack(synthetic_pack), Dataset(synthetic_pack)
    assert [pack.rect(t) for t in range(pack.n_images)] == [dataset.rect(t) for t in range(dataset.n_images)]


def _variants():
    for knob, values in CHOICES.items():
        for value in values[1:]:
            if not (knob == "crop_source" and value == "pack"):  # the pack's own default
                yield f"{knob}={value}"
    yield "audio_offset=1"
    yield "audio_offset=-1"


def test_conventions_parse_and_reject():
    conv = Conventions.parse("audio_window=tile, audio_offset=-1")
    assert conv.variants() == {"audio_window": "tile", "audio_offset": -1}
    assert conv.label() == "audio_window=tile,audio_offset=-1"
    assert Conventions.parse("").label() == "canonical"
    unknown_value = "convention {}={!r} is unknown; choose "
    for bad, message in (("resize_kernel=lanczos", unknown_value.format("resize_kernel", "lanczos")),
                         ("audio_window=tiles", unknown_value.format("audio_window", "tiles") + "one of window, tile"),
                         ("audio_offset=9", "convention audio_offset=9 must be an integer in -8..8"),
                         ("audio_window", "unknown convention 'audio_window'; knobs are "),
                         ("output=jpeg0", unknown_value.format("output", "jpeg0") + "lossless or"),
                         ("output=jpeg101", unknown_value.format("output", "jpeg101")),
                         ("output=jpeg", unknown_value.format("output", "jpeg")),
                         ("precision=int8", unknown_value.format("precision", "int8") + "one of fp32, fp16, bf16"),
                         ("paste=crop320", unknown_value.format("paste", "crop320") + "one of crop328, direct"),
                         ("audio_source=npy", unknown_value.format("audio_source", "npy") + "one of wav, aud_ave")):
        with pytest.raises(ValueError, match=re.escape(message)):
            Conventions.parse(bad)


@pytest.mark.parametrize("variant", list(_variants()))
def test_every_variant_changes_the_frames(models, synthetic_pack, feats, variant):
    pack = Pack(synthetic_pack)
    conv = Conventions.parse(variant)
    canonical = ReferencePipeline(pack, models)
    other = ReferencePipeline(pack, models, conv)
    other_feats = audio_features(synthetic_pack / "audio.wav", models, conv)
    frames = [0, 1, 2, other_feats.n_frames - 1]
    differs = any(not np.array_equal(canonical.frame(min(i, feats.n_frames - 1), feats).frame,
                                     other.frame(i, other_feats).frame) for i in frames)
    assert differs, f"{variant} gave the canonical frames"


def test_encoding_only_the_needed_windows_changes_nothing(models, synthetic_pack, feats):
    pack = Pack(synthetic_pack)
    for conv in (Conventions(), Conventions.parse("audio_offset=1"), Conventions.parse("feature_padding=none")):
        full = audio_features(synthetic_pack / "audio.wav", models, conv)
        part = audio_features(synthetic_pack / "audio.wav", models, conv, frames=5)
        assert part.n_frames == full.n_frames and len(part.embeddings) < len(full.embeddings)
        for i in range(5):
            assert np.array_equal(audio_window(part.padded, i, offset=conv.audio_offset),
                                  audio_window(full.padded, i, offset=conv.audio_offset))
        pipeline = ReferencePipeline(pack, models, conv)
        assert np.array_equal(pipeline.frame(4, part).frame, pipeline.frame(4, full).frame)
