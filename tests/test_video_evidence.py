"""Videos that travelled: the reference's frames (tiny synthetic models, synthetic pack) encoded to H.264
with PyAV, each with one planted defect, compared with `compare` against the reference's folder; each
names its finding with the right numbers, nothing else above 1 dB. No model is loaded while comparing."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import travelled

from harness.runs.compare import compare_folders
from harness.video import read, write
from reference.audio import load_wav
from reference.data import read_image

N = 20  # frames: enough for the audio drive through H.264, few enough to keep the file under 30 s
DELAY_S = 0.120
DROP, DUP = 11, 17  # pipeline frame numbers (1-based)
OTHERS_BELOW_DB = 1.0
VIDEO_KINDS = {"video_codec", "frame_timing", "av_offset"}


def _frames(folder: Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted(folder.glob("frame_*.png"))]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """The pack, the reference's frames (PNG), the planted folders and every planted video; the models are
    deleted before any comparison."""
    import shutil

    from fixtures.models import build_models
    from fixtures.pack import build_pack
    root = tmp_path_factory.mktemp("videos")
    pack = build_pack(root / "pack", frames=40, seed=0)
    build_models(root / "models", "tiny", seed=0)
    audio = pack / "audio.wav"
    same = travelled.SameInputs(root / "models")
    ref = travelled.make_folder(pack, audio, same, root / "reference", N)
    flipped = travelled.make_folder(pack, audio, same, root / "y_flipped", N, paste=travelled.y_flipped)
    weak = travelled.make_folder(pack, audio, root / "models", root / "weak", N, features=lambda f: f * 0.01)
    shutil.rmtree(root / "models")
    frames = _frames(ref)
    sound = (load_wav(audio)[: int(16000 * N / 25)], 16000)
    v = root / "videos"
    v.mkdir()
    write.encode(v / "crf18.mp4", frames, audio=sound)
    write.encode(v / "crf18_again.mp4", frames, audio=sound)
    delayed = np.concatenate([np.zeros(int(DELAY_S * 16000), np.float32), sound[0]])[: len(sound[0])]
    write.encode(v / "audio_late.mp4", frames, audio=(delayed, 16000))
    keep = [i for i in range(N) if i != DROP - 1]
    write.encode(v / "dropped.mp4", [frames[i] for i in keep], times=[i / 25 for i in keep])
    write.encode(v / "duplicated.mp4", [frames[i - 1] if i == DUP - 1 else frames[i] for i in range(N)])
    retimed = [frames[int((j + 0.5) * 25 / 30)] for j in range(N * 30 // 25)]
    write.encode(v / "fps30.mp4", retimed, fps=30)
    write.encode(v / "bt601_as_bt709.mp4", frames, matrix="bt601", tag_matrix="bt709")
    write.encode(v / "limited_as_full.mp4", frames, rng="limited", tag_range="full")
    write.encode(v / "crf30.mp4", frames, crf=30)
    write.encode(v / "y_flipped.mp4", _frames(flipped))
    write.encode(v / "weak.mp4", _frames(weak))
    return root


def compared(made: Path, a: Path, b: Path, tmp_path: Path, audio: bool = True) -> list[dict]:
    out = tmp_path / "compare.json"
    compare_folders(a, b, pack=made / "pack", json_out=out, audio=made / "pack" / "audio.wav" if audio else None)
    return json.loads(out.read_text())["findings"]


def _db(f: dict) -> float:
    return math.inf if f["explains_db"] == "inf" else (f["explains_db"] or 0.0)


def others_above(found: list[dict], kinds: set[str]) -> list[dict]:
    return [f for f in found if f["kind"] not in kinds and _db(f) > OTHERS_BELOW_DB]


def one(found: list[dict], kind: str) -> dict:
    mine = [f for f in found if f["kind"] == kind]
    assert len(mine) == 1, (kind, found)
    return mine[0]


CASES = {  # video -> (kind, check of its fields, kinds allowed beside it)
    "audio_late": ("av_offset", lambda f: abs(f["offset_ms"] - DELAY_S * 1000) <= 10 and not f["other_audio"]
                   and f["sample_rate"] == 16000 and f["channels"] == 1, set()),
    "dropped": ("frame_timing", lambda f: f["dropped"] == [DROP] and f["duplicated"] == [] and not f["vfr"], set()),
    "duplicated": ("frame_timing", lambda f: f["duplicated"] == [DUP] and f["dropped"] == [], set()),
    "fps30": ("frame_timing", lambda f: f["fps_nominal"] == 30 and abs(f["fps_real"] - 30) < 0.01
              and f["dropped"] == [] and f["duplicated"] == [], set()),
    "bt601_as_bt709": ("video_codec", lambda f: f["colour_reading"]["mismatch"] == "matrix"
                       and f["colour_reading"]["fits"] == "bt601 full" and f["colour_reading"]["tagged"] == "bt709 full",
                       {"colour"}),
    "limited_as_full": ("video_codec", lambda f: f["colour_reading"]["mismatch"] == "range"
                        and f["colour_reading"]["fits"] == "bt601 limited", {"colour"}),
    "crf30": ("video_codec", lambda f: f["reencode_b"]["crf"] == 30 and f["colour_reading"]["mismatch"] is None
              and f["reference_psnr_db"] < 40, set()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_planted_video_defect_gives_its_finding_and_nothing_else(made, name, tmp_path, no_models, capsys):
    kind, check, allowed = CASES[name]
    found = compared(made, made / "reference", made / "videos" / f"{name}.mp4", tmp_path)
    with capsys.disabled():
        print(f"\n{name}: " + " | ".join(f"{f['kind']} {f['explains_db']}: {f['summary']}" for f in found))
    assert check(one(found, kind)), one(found, kind)
    assert not others_above(found, {kind, "video_codec"} | allowed), others_above(found, {kind} | allowed)
    if kind != "frame_timing":
        assert "frame_timing" not in {f["kind"] for f in found}
    if kind != "av_offset":
        assert "av_offset" not in {f["kind"] for f in found}
    assert "paste_position" not in {f["kind"] for f in found}  # codec noise does not move the patch


@pytest.mark.parametrize("name, kind, field, value", [("y_flipped", "paste_position", "pattern", "y_flipped"),
                                                      ("weak", "audio_drive", "reading", "weak drive")])
def test_image_evidence_on_decoded_frames_matches_the_folder(made, name, kind, field, value, tmp_path, no_models):
    """The folder and the same frames as a CRF 18 video give the same findings apart from video_codec."""
    from_folder = compared(made, made / "reference", made / name, tmp_path)
    from_video = compared(made, made / "reference", made / "videos" / f"{name}.mp4", tmp_path)
    assert one(from_video, kind)[field] == one(from_folder, kind)[field] == value
    kinds = lambda found: {f["kind"] for f in found} - {"video_codec"}  # noqa: E731
    assert kinds(from_video) == kinds(from_folder), (from_folder, from_video)
    assert "video_codec" in {f["kind"] for f in from_video} and "video_codec" not in kinds(from_folder)


def test_a_crf18_video_of_the_folder_gives_only_video_codec(made, tmp_path, no_models):
    found = compared(made, made / "reference", made / "videos" / "crf18.mp4", tmp_path)
    assert [f["kind"] for f in found] == ["video_codec", "residual"], found
    assert found[1]["suspect"]["region"] != "mouth" and found[1]["left_pct"] < 10, found[1]
    assert found[0]["reencode_b"]["crf"] == 18 and found[0]["codec_b"]["profile"] == "High"


def test_the_same_frames_encoded_twice_give_nothing_but_video_codec(made, tmp_path, no_models):
    found = compared(made, made / "videos" / "crf18.mp4", made / "videos" / "crf18_again.mp4", tmp_path, audio=False)
    assert {f["kind"] for f in found} <= {"video_codec"}, found


def test_timeline_pairs_slots_by_presentation_time():
    line = read.timeline(np.array([0, 1, 2, 4, 5]) / 25)
    assert line.shown == (0, 1, 2, None, 3, 4) and line.dropped == [3]
    retimed = read.timeline(np.arange(12) / 30)
    assert retimed.dropped == [] and len(retimed.shown) == 10 and len(retimed.unshown) == 2


def test_yuv_readings_invert_the_encoder(tmp_path):
    """`yuv_to_bgr` under the reading the planes were written with gives the frame back; swscale's decode
    under the stream's tags agrees with it."""
    colours = np.array([[200, 30, 40], [30, 200, 60], [40, 60, 220], [128, 128, 128]], np.uint8)
    img = np.repeat(np.repeat(colours.reshape(2, 2, 3), 32, 0), 32, 1)
    for matrix, rng in (("bt709", "limited"), ("bt601", "full")):
        path = write.encode(tmp_path / f"{matrix}{rng}.mkv", [img], crf=0, matrix=matrix, rng=rng)
        info = read.probe(path)
        assert (info.stream.matrix, info.stream.range) == (matrix, rng)
        pic = next(read.pictures(info, info.timeline(), raw=True))
        inner = (slice(8, 24), slice(8, 24))
        assert np.abs(read.yuv_to_bgr(*pic.yuv, matrix, rng)[inner].astype(int) - img[inner]).max() <= 2
        assert np.abs(pic.bgr[inner].astype(int) - img[inner]).max() <= 2
        other = "bt601" if matrix == "bt709" else "bt709"
        assert np.abs(read.yuv_to_bgr(*pic.yuv, other, rng)[inner].astype(int) - img[inner]).max() > 8


@pytest.mark.parametrize("content", [None, b"not a video at all"])
def test_a_missing_or_corrupt_video_is_an_input_error(tmp_path, content):
    from reference.errors import InputError
    path = tmp_path / "out.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match="out.mp4") as err:
        read.probe(path)
    assert "as the app wrote it" in str(err.value)


def test_the_real_python_video_against_its_own_frames_shows_only_codec_loss(shared_data, tmp_path):
    """The Python port's frames 1-50 (JPEG q95) against its video (x264 CRF 20, AAC of talk_hb.wav at no
    offset): no timing, no sound offset, only the codec."""
    travelled_dir = shared_data / "travelled"
    out = tmp_path / "real.json"
    compare_folders(travelled_dir / "python_frames", travelled_dir / "videos" / "python.mp4",
                    pack=shared_data / "sanders_pack", json_out=out, audio=shared_data / "audio" / "talk_hb.wav")
    found = json.loads(out.read_text())["findings"]
    assert [f["kind"] for f in found] == ["video_codec", "residual"], found
    assert found[1]["suspect"]["region"] != "mouth" and found[1]["left_pct"] < 10, found[1]
    codec = found[0]
    assert codec["reencode_b"]["crf"] == 20 and codec["codec_b"]["pix_fmt"] == "yuvj420p"
    assert codec["codec_b"]["matrix"] == "bt601" and codec["codec_b"]["range"] == "full"
    assert codec["colour_reading"]["mismatch"] is None and codec["explains_db"] > 6


def test_the_real_videos_timing_and_sound(shared_data):
    """Both real videos: 25 fps, 250 pictures from 0 s, their sound talk_hb.wav at no offset."""
    from harness.diagnosis.evidence.av_sync import _input, _track, cross_offset
    from harness.diagnosis.evidence.timing import clock
    truth = _input(shared_data / "audio" / "talk_hb.wav")
    for name in ("python", "swift_fixed"):
        info = read.probe(shared_data / "travelled" / "videos" / f"{name}.mp4")
        c = clock(info)
        assert (c["fps_nominal"], c["frames_decoded"], c["start_s"], c["vfr"]) == (25, 250, 0, False)
        assert info.timeline().dropped == [] and len(info.timeline().shown) == 250
        lag, corr = cross_offset(_track(info), truth)
        assert abs(lag) * 1000 < 2 and corr > 0.9, (name, lag, corr)


def test_a_frames_backend_reads_a_video_and_its_run_gets_the_video_findings(tmp_path, synthetic_pack, tiny_models_dir,
                                                                            monkeypatch):
    """`video = "out.mp4"` in place of dir: frame 3 dropped by the app (a gap in its timestamps) is a
    missing frame of the run, named by frame_timing; the codec is named. (The model-based diagnosis,
    tested elsewhere, is left out for time.)"""
    import harness.runs.parity
    monkeypatch.setattr(harness.runs.parity, "diagnose", lambda *args, **kwargs: {})
    from harness.cli import main
    from harness.verdicts.results import read_results
    from reference.data import open_source
    from reference.infer import infer
    from reference.models import ModelFiles, Models
    frames_dir = tmp_path / "ref"
    infer(open_source(synthetic_pack), synthetic_pack / "audio.wav", Models(ModelFiles.from_dir(tiny_models_dir), threads=1),
          frames_dir, 6, progress=False)
    frames = _frames(frames_dir)
    keep = [0, 1, 3, 4, 5]
    write.encode(tmp_path / "app.mp4", [frames[i] for i in keep], times=[i / 25 for i in keep])
    config = tmp_path / "parity.toml"
    config.write_text(f'[data]\npack = "{synthetic_pack}"\nmodels = "{tiny_models_dir}"\naudio = ["{synthetic_pack}/audio.wav"]\n'
                      f'frames = 6\n[run]\noutput = "{tmp_path / "out"}"\n'
                      '[backends.app]\nkind = "frames"\nvideo = "app.mp4"\n')
    assert main(["run", "--config", str(config), "--quiet"]) == 1
    run = read_results(tmp_path / "out" / "results.json")["runs"][0]
    assert run["missing_frames"] == [3]
    kinds = {f["kind"]: f for f in run["findings"]}
    assert kinds["frame_timing"]["dropped"] == [3] and "video_codec" in kinds, run["findings"]
    assert "missing_frames" not in kinds  # the drop is named once, by frame_timing


def test_frames_backend_video_option_is_checked():
    from harness.backends.frames_dir import parse_options
    assert parse_options({"video": "out.mp4"})["video"] == "out.mp4"
    with pytest.raises(ValueError, match="give one of them"):
        parse_options({"video": "out.mp4", "dir": "frames"})
    with pytest.raises(ValueError, match="video: a video file"):
        parse_options({"video": "out.txt"})
