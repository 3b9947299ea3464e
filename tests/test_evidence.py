"""Image evidence without models: folders of frames "made elsewhere" with planted defects (tests/travelled.py),
each named by its finding, with nothing else above 1 dB; no model file is reachable while the evidence runs."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import travelled

from harness.diagnosis.evidence import codec
from harness.diagnosis.evidence.basis import ORDER
from harness.diagnosis.evidence.findings import MAKERS, findings, maker
from harness.diagnosis.evidence.paste import Placement, paste_position
from harness.diagnosis.evidence.record import Finding
from harness.diagnosis.evidence.templates import template_sequence
from harness.runs.compare import compare_folders
from reference.conventions import Conventions
from reference.data import read_image

pytestmark = pytest.mark.long

N = 50
OTHERS_BELOW_DB = 1.0
RANDOM = np.random.default_rng(7).standard_normal((512, 512)).astype(np.float32) / np.sqrt(512)

CASES = {  # name -> (make_folder arguments, or None: made from the reference's frames; expected kind and fields)
    "missing": (None, "missing_frames", {"missing": 28, "extra": 0}),
    "template_offset": ({"conv": Conventions(template_order="linear")}, "template_sequence", {"offset": -1}),
    "y_flipped": ({"paste": travelled.y_flipped}, "paste_position", {"pattern": "y_flipped"}),
    "shift": ({"paste": travelled.shifted(6, -4)}, "paste_position", {"pattern": "shift"}),
    "crop_border": ({"paste": travelled.crop_border(0)}, "paste_position", {"pattern": "crop_border",
                                                                          "crop_offset": [0, 0]}),
    "channel_swap": ({"conv": Conventions(output_channels="rgb")}, "colour", {"model": "channel_swap"}),
    "nearest": ({"conv": Conventions(resize_kernel="nearest")}, "resize_kernel", {"kernel": "nearest"}),
    "jpeg75": (None, "jpeg", {"quality_a": "lossless", "quality_b": 75}),
    "weak": ({"features": lambda f: f * 0.01}, "audio_drive", {"reading": "weak drive"}),
    "random": ({"features": lambda f: f @ RANDOM}, "audio_drive", {"reading": "unrelated"}),
    "lag2": ({"conv": Conventions(audio_offset=2)}, "audio_drive", {"reading": "lag", "lag": 2}),
    "partly": ({"features": lambda f: 0.7 * f + 0.7 * (f @ RANDOM)}, "audio_drive", {"reading": "partly wrong"}),
    "fp16": ({"conv": Conventions(precision="fp16")}, "precision_noise", {}),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """The pack, the reference's frames and every travelled folder; the models they were made with are
    deleted before any evidence is gathered."""
    from fixtures.models import build_models
    from fixtures.pack import build_pack
    root = tmp_path_factory.mktemp("travelled")
    pack = build_pack(root / "pack", frames=60, seed=0)
    models = root / "models"
    build_models(models, "tiny", seed=0)
    audio = pack / "audio.wav"
    same = travelled.SameInputs(models)  # one generator run for the folders that differ after it
    reference = travelled.make_folder(pack, audio, same, root / "reference" / "frames", N, dumps=True)
    for name, (kwargs, _, _) in CASES.items():
        if kwargs is not None:
            travelled.make_folder(pack, audio, same if travelled.after_generator(**kwargs) else models,
                                  root / name / "frames", N, dumps=True, **kwargs)
    (root / "missing" / "frames").mkdir(parents=True)
    for path in sorted(reference.glob("frame_*.png"))[:22]:  # 22 of 50 frames came out
        shutil.copy(path, root / "missing" / "frames")
    travelled.reencode(reference, root / "jpeg75" / "frames", 75)
    travelled.make_folder(pack, audio, same, root / "three" / "frames", N, Conventions(output_channels="rgb"),
                          fmt="jpg", quality=80, keep=lambda i: i < 40)
    travelled.reencode(reference, root / "reference95" / "frames", 95)
    shutil.rmtree(models)
    return root


def evidence(made: Path, name: str, tmp_path: Path, stages: bool = False) -> list[dict]:
    out = tmp_path / f"{name}.json"
    args = {"stages_a": made / "reference", "stages_b": made / name} if stages else {}
    compare_folders(made / "reference" / "frames", made / name / "frames", pack=made / "pack", json_out=out, **args)
    return json.loads(out.read_text())["findings"]


def others_above(found: list[dict], kinds: set[str]) -> list[dict]:
    def db(f):
        value = f["explains_db"]
        return math.inf if value == "inf" else (value or 0.0)
    return [f for f in found if f["kind"] not in kinds and db(f) > OTHERS_BELOW_DB]


@pytest.mark.parametrize("name", list(CASES))
def test_each_planted_defect_gives_its_finding_and_nothing_else(made, name, tmp_path, no_models, capsys):
    _, kind, fields = CASES[name]
    found = evidence(made, name, tmp_path)
    with capsys.disabled():
        print(f"\n{name}: " + " | ".join(f"{f['kind']} {f['explains_db']} dB: {f['summary']}" for f in found))
    mine = [f for f in found if f["kind"] == kind]
    assert mine, f"no {kind} finding: {found}"
    for key, value in fields.items():
        assert mine[0][key] == value, (key, mine[0])
    assert mine[0]["frames"] and mine[0]["summary"]
    if kind == "paste_position":
        assert mine[0]["runner_up"] and "the runner-up" in mine[0]["summary"] and mine[0]["clear"], mine[0]
    assert not others_above(found, {kind}), others_above(found, {kind})


def test_three_defects_at_once(made, tmp_path, no_models):
    found = evidence(made, "three", tmp_path)
    kinds = {f["kind"] for f in found}
    assert {"missing_frames", "colour", "jpeg"} <= kinds, found
    assert next(f for f in found if f["kind"] == "colour")["model"] == "channel_swap"
    assert next(f for f in found if f["kind"] == "jpeg")["quality_b"] == 80
    assert next(f for f in found if f["kind"] == "missing_frames")["missing"] == 10
    assert found[0]["kind"] == "missing_frames"  # ranked like the bill: missing frames first
    assert not others_above(found, {"missing_frames", "colour", "jpeg"})


def test_the_reference_against_itself_re_encoded_gives_only_a_jpeg_finding(made, tmp_path, no_models):
    found = evidence(made, "reference95", tmp_path)
    assert [f["kind"] for f in found] == ["jpeg", "residual"], found
    assert found[1]["suspect"]["region"] == "outside_face" or found[1]["character"]["kind"] == "noise-like", found[1]
    assert found[0]["quality_b"] == 95 and found[0]["subsampling_b"] == "4:2:0"


def test_the_reference_against_itself_gives_nothing(made, tmp_path, no_models):
    assert evidence(made, "reference", tmp_path) == []


@pytest.mark.parametrize("name, reading", [("weak", "scaled"), ("random", "unrelated")])
def test_stage_dumps_of_both_sides_are_compared(made, name, reading, tmp_path, no_models):
    everything = evidence(made, name, tmp_path, stages=True)
    found = [f for f in everything if f["kind"] == "stage"]
    assert [f["stage"] for f in found] == ["audio_windows"] and found[0]["reading"] == reading, found
    suspect = everything[-1]["suspect"]  # the residual's account links the first differing stage to the mouth
    assert (everything[-1]["kind"], suspect["stage"], suspect["region"]) == ("residual", "audio_windows", "mouth")
    if reading == "scaled":
        assert found[0]["scale_ratio"] == pytest.approx(0.01, rel=1e-3) and found[0]["correlation"] > 0.99
    else:
        assert abs(found[0]["correlation"]) < 0.2


def test_jpeg_settings_are_read_from_the_tables(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for quality, sub, encoder in ((95, "420", "cv2"), (75, "444", "cv2"), (60, "420", "pil"), (90, "444", "pil")):
        path = tmp_path / f"{quality}{sub}{encoder}.jpg"
        travelled.write(path, img, "jpg", quality, encoder, sub)
        found = codec.settings(path)
        assert (found.quality, found.ijg) == (quality, True)
        assert found.subsampling == {"420": "4:2:0", "444": "4:4:4"}[sub]
    from PIL import Image
    Image.fromarray(img).save(tmp_path / "custom.jpg", qtables=[[3] * 64, [5] * 64])
    custom = codec.settings(tmp_path / "custom.jpg")
    assert custom.ijg is False and custom.quality is None and custom.describe().startswith("JPEG non-IJG")
    Image.fromarray(img).save(tmp_path / "frame.png")
    assert codec.settings(tmp_path / "frame.png").format == "png"


def _placements(boxes_b, rects_a=None, rects_b=None):
    rects_a = rects_a or [(100 + i, 100, 284 + i, 284) for i in range(len(boxes_b))]
    rects_b = rects_b or rects_a
    return [Placement(i, rects_a[i], rects_a[i], box, rects_b[i]) for i, box in enumerate(boxes_b)]


def test_paste_patterns_from_boxes():
    rects = [(100 + 3 * i, 100 + 2 * i, 284 + 3 * i, 284 + 2 * i) for i in range(10)]
    shape = (720, 1280)
    flipped = [(x1, 720 - y2, x2, 720 - y1) for x1, y1, x2, y2 in rects]
    assert paste_position(_placements(flipped, rects), shape, rects, {})["pattern"] == "y_flipped"
    mirrored = [(1280 - x2, y1, 1280 - x1, y2) for x1, y1, x2, y2 in rects]
    assert paste_position(_placements(mirrored, rects), shape, rects, {})["pattern"] == "x_flipped"
    moved = [(x1 + 5, y1 - 3, x2 + 5, y2 - 3) for x1, y1, x2, y2 in rects]
    found = paste_position(_placements(moved, rects), shape, rects, {})
    assert (found["pattern"], found["dx"], found["dy"]) == ("shift", 5, -3)
    pack_rects = [(100 + 7 * t, 100 + 5 * (t % 3), 284 + 7 * t, 284 + 5 * (t % 3)) for t in range(12)]
    neighbour = _placements([pack_rects[i + 1] for i in range(10)], pack_rects[:10])
    found = paste_position(neighbour, shape, pack_rects, {i: i for i in range(10)})
    assert (found["pattern"], found["neighbour"]) == ("neighbour_rect", 1)
    assert paste_position(_placements(rects, rects), shape, rects, {}) is None


def test_template_sequence_offset_loop_repeats_and_drops():
    from reference.data import template_index
    n = 8
    canonical = {i: template_index(i, n) for i in range(20)}
    wrapped = {i: template_index(i, n, "linear") for i in range(20)}
    found = template_sequence(canonical, wrapped, n)
    assert (found["loop_a"]["order"], found["loop_b"]["order"]) == ("ping-pong", "wrap")
    assert found["offset"] == -1
    repeat = dict(canonical) | {5: canonical[4]}
    found = template_sequence(canonical, repeat, n)
    assert found["repeats"] == [5] and found["drops"] == [] and found["differ"] == [5]
    drop = dict(canonical) | {3: canonical[4], 4: canonical[5]}
    assert template_sequence(canonical, drop, n)["drops"] == [3]
    assert template_sequence(canonical, dict(canonical), n) is None


def test_missing_and_extra_frames_are_counted():
    found = findings(None, [21, 22], [50], 50)
    assert [f.to_dict() for f in found] == [{"kind": "missing_frames", "summary": found[0].summary,
                                             "frames": [22, 23, 51], "explains_db": None, "missing": 2, "extra": 1}]
    assert "2 of 50 frames missing from the candidate (22-23)" in found[0].summary
    assert Finding.from_dict(found[0].to_dict()) == found[0]


def test_finding_kinds_are_registered_once_and_each_has_its_place_in_the_order():
    assert sorted(MAKERS) == sorted(ORDER) and len(set(ORDER)) == len(ORDER)
    assert ORDER[0] == "missing_frames" and ORDER[-2:] == ("stage", "residual")
    assert ORDER.index("audio_drive") < ORDER.index("av_offset")  # av_offset reads the mouth's lag
    with pytest.raises(ValueError, match="finding kind 'colour' is registered twice"):
        maker("colour")(lambda basis, before: [])
    assert "colour" in MAKERS and MAKERS["colour"].__name__ == "_colour"


def test_reading_a_frame_of_the_wrong_size_is_an_input_error(made, tmp_path):
    from reference.errors import InputError
    folder = tmp_path / "small"
    folder.mkdir()
    for path in sorted((made / "reference" / "frames").glob("*.png"))[:3]:
        travelled.write(folder / path.name, read_image(path)[:100, :100], "png")
    with pytest.raises(InputError, match="is 100x100"):
        compare_folders(made / "reference" / "frames", folder, pack=made / "pack")
