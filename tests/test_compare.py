"""`compare DIR_A DIR_B` gives a verdict (issue 13): profiles, thresholds, missing/extra frames, pack rects."""
from __future__ import annotations

import json
import shutil

import cv2
import pytest

from harness.cli import main
from reference.data import open_source, template_index


@pytest.fixture(scope="module")
def frames20(tmp_path_factory, synthetic_pack, tiny_models_dir):
    out = tmp_path_factory.mktemp("compare")
    assert main(["infer", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
                 "--models", str(tiny_models_dir), "--frames", "20", "--output", str(out / "a"),
                 "--no-progress"]) == 0
    return out / "a"


def test_a_bgr_rgb_swap_of_20_frames_fails_the_default_profile(frames20, tmp_path, capsys):
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for path in sorted(frames20.glob("frame_*.png")):
        cv2.imwrite(str(swapped / path.name), cv2.imread(str(path))[:, :, ::-1])
    assert len(list(swapped.iterdir())) == 20
    assert main(["compare", str(frames20), str(swapped)]) == 1
    out = capsys.readouterr().out
    assert "verdict: FAILED (profile desktop: psnr_min=45)" in out and "violated: PSNR" in out
    assert main(["compare", str(frames20), str(swapped), "--psnr-min", "0"]) == 0
    assert "verdict: PASSED" in capsys.readouterr().out
    assert main(["compare", str(frames20), str(frames20), "--profile", "exact"]) == 0
    assert main(["compare", str(frames20), str(tmp_path / "nowhere")]) == 2


def test_pack_rects_follow_the_frame_numbers_and_gaps_are_listed(frames20, synthetic_pack, tmp_path, capsys):
    cand = tmp_path / "cand"
    shutil.copytree(frames20, cand)
    (cand / "frame_00003.png").unlink()
    shutil.copy(cand / "frame_00020.png", cand / "frame_00021.png")
    report = tmp_path / "c.json"
    assert main(["compare", str(frames20), str(cand), "--pack", str(synthetic_pack), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert f"missing in {cand}: frame_00003.png" in out and f"extra in {cand}: frame_00021.png" in out
    assert "1 frame(s) missing from the candidate: frame_00003.png" in out
    doc = json.loads(report.read_text())
    source = open_source(synthetic_pack)
    for row in doc["pairs"]:
        number = int(row["file"][6:11])
        assert row["rect"] == list(source.rect(template_index(number - 1, source.n_images))), row["file"]
    assert all(row["outside_face"]["identical_pct"] == 100.0 for row in doc["pairs"])
    assert doc["only_a"] == ["frame_00003.png"] and doc["only_b"] == ["frame_00021.png"] and not doc["passed"]


def test_one_extra_frame_and_none_missing_fails(frames20, tmp_path, capsys):
    cand = tmp_path / "cand"
    shutil.copytree(frames20, cand)
    shutil.copy(cand / "frame_00020.png", cand / "frame_00021.png")
    report = tmp_path / "c.json"
    assert main(["compare", str(frames20), str(cand), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "missing in" not in out and "violated: 1 extra frame(s) in the candidate: frame_00021.png" in out
    doc = json.loads(report.read_text())
    assert doc["only_a"] == [] and doc["only_b"] == ["frame_00021.png"] and doc["failures"] == [
        "1 extra frame(s) in the candidate: frame_00021.png"] and not doc["passed"]
