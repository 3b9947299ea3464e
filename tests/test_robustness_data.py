"""Broken template data on a copy of the synthetic pack: missing frames, corrupt or truncated JPEGs, bad
landmarks and rects, count mismatches, a pack and a raw dataset mixed up -> an InputError (exit 2 from
the CLI) that names the file and the problem (issue 8)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from expect import expect_error

from harness.cli import main
from harness.runs.config import ConfigError, load_config
from reference.data import Dataset, open_source

N = 12  # frames of the session's synthetic pack


@pytest.fixture
def pack(synthetic_pack, tmp_path) -> Path:
    """A private copy of the 12-frame synthetic pack."""
    return Path(shutil.copytree(synthetic_pack, tmp_path / "pack"))


@pytest.fixture
def dataset(synthetic_pack, tmp_path) -> Path:
    """A raw dataset (full_body_img/ + landmarks/) cut from the synthetic pack."""
    root = tmp_path / "dataset"
    for name in ("full_body_img", "landmarks"):
        shutil.copytree(synthetic_pack / name, root / name)
    return root


def rects_file(root: Path) -> Path:
    return root / "cache" / "crop_rectangles.json"


def edit_rects(root: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(rects_file(root).read_text())
    change(data)
    rects_file(root).write_text(json.dumps(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def lms_lines(path: Path, keep: int | None = None, first: str | None = None) -> None:
    lines = path.read_text().splitlines()
    if first is not None:
        lines[2] = first
    path.write_text("\n".join(lines[:keep]) + "\n")


# --------------------------------------------------------------------------- pre-cut pack

# (what to break, file named, expected fragments, call: "open" or the dataset index read with frame())
PACK_CASES = {
    "missing_frame": (lambda r: (r / "full_body_img" / "5.jpg").unlink(), "full_body_img/5.jpg",
                      ("missing: full-frame image must be numbered 1..11 without gaps",), "open"),
    "missing_last_frame": (lambda r: (r / "full_body_img" / "12.jpg").unlink(), "cache/crop_rectangles.json",
                           ("holds 12 rects but full_body_img holds 11 images",), "open"),
    "missing_last_crop": (lambda r: (r / "crops_328" / "12.jpg").unlink(), "",
                          ("pack parts disagree on the frame count", "full_body_img: 12", "crops_328: 11"), "open"),
    "missing_crop": (lambda r: (r / "crops_328" / "3.jpg").unlink(), "crops_328/3.jpg", ("missing",), "open"),
    "frames_numbered_from_0": (lambda r: (r / "rois_320" / "1.jpg").rename(r / "rois_320" / "0.jpg"), "rois_320",
                               ("numbered from 0, expected from 1", "images are 1-based"), "open"),
    "not_a_jpeg": (lambda r: (r / "crops_328" / "2.jpg").write_bytes(b"not a jpeg" * 50), "crops_328/2.jpg",
                   ("not a JPEG file (no start-of-image marker)",), 1),
    "corrupt_jpeg": (lambda r: (r / "rois_320" / "2.jpg").write_bytes(
        b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xda" + bytes(40) + b"\xff\xd9"), "rois_320/2.jpg",
        ("cannot decode image",), 1),
    "truncated_jpeg": (lambda r: truncate(r / "full_body_img" / "3.jpg"), "full_body_img/3.jpg",
                       ("truncated or corrupt JPEG",), 2),
    "wrong_crop_size": (lambda r: cv2.imwrite(str(r / "crops_328" / "2.jpg"), np.zeros((320, 320, 3), np.uint8)),
                        "crops_328/2.jpg", ("image has shape (320, 320, 3), expected (328, 328, 3)",), 1),
    "landmark_count_mismatch": (lambda r: (r / "landmarks" / "11.lms").unlink(), "",
                                ("pack parts disagree on the frame count", "landmarks: 11"), "open"),
    "rect_outside_frame": (lambda r: edit_rects(r, lambda d: d["4"].update(rect=[1200, 600, 1400, 800])),
                           "cache/crop_rectangles.json",
                           ("rect for index 4 (5.jpg)", "lies outside the 1280x720 frame"), 4),
    "rect_empty": (lambda r: edit_rects(r, lambda d: d["4"].update(rect=[300, 300, 200, 400])),
                   "cache/crop_rectangles.json", ('key "4": invalid rect [300, 300, 200, 400]',), "open"),
    "rect_not_ints": (lambda r: edit_rects(r, lambda d: d["0"].update(rect=[1.5, 2, 3, 4])),
                      "cache/crop_rectangles.json", ('key "0": "rect" must be four integers',), "open"),
    "rect_key_missing": (lambda r: edit_rects(r, lambda d: d.update({"12": d.pop("7")})),
                         "cache/crop_rectangles.json", ('missing key "7" (keys must be 0..11)',), "open"),
    "rect_count_mismatch": (lambda r: edit_rects(r, lambda d: d.pop("11")), "cache/crop_rectangles.json",
                            ("holds 11 rects but full_body_img holds 12 images",), "open"),
    "rect_json_garbage": (lambda r: rects_file(r).write_text("{not json"), "cache/crop_rectangles.json",
                          ("cannot parse JSON",), "open"),
    "rect_json_list": (lambda r: rects_file(r).write_text("[1, 2]"), "cache/crop_rectangles.json",
                       ('expected an object {"0": {"rect": [x1, y1, x2, y2]}, ...}',), "open"),
    "rect_file_missing": (lambda r: rects_file(r).unlink(), "",
                          ("looks like a pre-cut pack but cache/crop_rectangles.json is missing",), "open"),
}


@pytest.mark.parametrize("case", list(PACK_CASES))
def test_broken_pack_is_named(pack, case):
    breaks, named, fragments, read = PACK_CASES[case]
    breaks(pack)
    path = pack / named if named else pack
    if read == "open":
        expect_error(lambda: open_source(pack), path, *fragments)
    else:
        source = open_source(pack)
        source.frame(0)  # an intact frame still reads
        expect_error(lambda: source.frame(read), path, *fragments)


# --------------------------------------------------------------------------- raw dataset

DATASET_CASES = {
    "landmarks_109_points": (lambda r: lms_lines(r / "landmarks" / "3.lms", keep=109), "landmarks/3.lms",
                             ("expected 110 landmarks, got 109",)),
    "landmark_not_a_number": (lambda r: lms_lines(r / "landmarks" / "3.lms", first="531.9 abc"), "landmarks/3.lms",
                              ("line 3: cannot parse '531.9 abc' as two numbers",)),
    "landmark_three_columns": (lambda r: lms_lines(r / "landmarks" / "3.lms", first="1 2 3"), "landmarks/3.lms",
                               ("line 3: expected 2 columns 'x y', got 3",)),
    "landmarks_empty": (lambda r: (r / "landmarks" / "3.lms").write_text(""), "landmarks/3.lms",
                        ("landmark file is empty",)),
    "landmarks_outside_frame": (lambda r: (r / "landmarks" / "3.lms").write_text("5000 5000\n" * 110),
                                "landmarks/3.lms", ("rect for index 3 (4.jpg)", "is empty")),
    "landmarks_not_utf8": (lambda r: (r / "landmarks" / "3.lms").write_bytes(b"\xff\xfe\x00" * 30),
                           "landmarks/3.lms", ("cannot read landmark file",)),
}


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_broken_dataset_is_named(dataset, case):
    breaks, named, fragments = DATASET_CASES[case]
    breaks(dataset)
    source = Dataset(dataset)
    source.frame(0)
    expect_error(lambda: source.frame(3), dataset / named, *fragments)


def test_dataset_image_landmark_count_mismatch(dataset):
    (dataset / "landmarks" / "11.lms").unlink()
    expect_error(lambda: open_source(dataset), dataset, "full_body_img holds 12 images but landmarks holds 11 files",
                 "image K.jpg pairs with landmarks/(K-1).lms")


def test_folder_that_is_neither(tmp_path):
    (tmp_path / "full_body_img").mkdir()
    expect_error(lambda: open_source(tmp_path), tmp_path, "neither a pre-cut pack nor a raw dataset",
                 "missing landmarks/")


# --------------------------------------------------------------------------- pack and dataset mixed up

def test_dataset_option_given_a_pack_without_landmarks(pack):
    shutil.rmtree(pack / "landmarks")
    expect_error(lambda: Dataset(pack), pack, "a pre-cut pack without landmarks/, not a raw dataset", "--pack")


def infer(source_option: str, source: Path, models: Path, audio: Path, out: Path) -> int:
    return main(["infer", source_option, str(source), "--audio", str(audio), "--models", str(models),
                 "--output", str(out), "--frames", "2", "--quiet"])


@pytest.mark.parametrize("option, fix", [("--pack", "use --dataset instead"), ("--sanders", "use --dataset instead")])
def test_cli_pack_option_given_a_raw_dataset(dataset, synthetic_pack, tiny_models_dir, tmp_path, capsys, option, fix):
    assert infer(option, dataset, tiny_models_dir, synthetic_pack / "audio.wav", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert f"{dataset}: this is a raw dataset, not a pre-cut pack ({fix})" in err


def test_cli_dataset_option_given_a_pack_without_landmarks(pack, tiny_models_dir, tmp_path, capsys):
    shutil.rmtree(pack / "landmarks")
    assert infer("--dataset", pack, tiny_models_dir, pack / "audio.wav", tmp_path / "o") == 2
    assert f"{pack}: a pre-cut pack without landmarks/" in capsys.readouterr().err


def test_cli_names_a_truncated_template_and_exits_2(pack, tiny_models_dir, tmp_path, capsys):
    truncate(pack / "full_body_img" / "2.jpg")  # frame 1 uses dataset index 1 = image 2.jpg
    assert infer("--pack", pack, tiny_models_dir, pack / "audio.wav", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert f"{pack / 'full_body_img' / '2.jpg'}: truncated or corrupt JPEG" in err and "Traceback" not in err


CONFIG = """[data]
{kind} = "{source}"
models = "{models}"
audio = ["{audio}"]
frames = 2
[backends.a]
kind = "fp16"
"""


@pytest.mark.parametrize("kind, fragment", [
    ("pack", "[data].pack = '{source}' is a raw dataset, not a pre-cut pack; write dataset = ... instead"),
    ("dataset", "[data].dataset: {source}: a pre-cut pack without landmarks/"),
])
def test_config_with_pack_and_dataset_mixed_up(dataset, pack, tiny_models_dir, tmp_path, capsys, kind, fragment):
    source = dataset if kind == "pack" else pack
    if kind == "dataset":
        shutil.rmtree(pack / "landmarks")
    path = tmp_path / "parity.toml"
    path.write_text(CONFIG.format(kind=kind, source=source, models=tiny_models_dir, audio=pack / "audio.wav"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and fragment.format(source=source) in str(info.value)
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    assert fragment.format(source=source) in capsys.readouterr().err
