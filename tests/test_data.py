"""Template sources (reference/data.py) on the real Sanders pack and raw dataset, plus crafted bad input.

One pass over all 523 frames (module fixture) gathers every statistic the real-data tests check.
"""
from __future__ import annotations

import re

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from reference.data import (
    Dataset,
    Pack,
    TemplateFrame,
    open_source,
    read_image,
    read_landmarks,
    rect_from_landmarks,
    template_index,
)
from reference.errors import InputError
from reference.image import MASK_RECT_TWO_POINT, crop_face, mask_roi, roi_of

N_FRAMES = 523


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=255))


@pytest.fixture(scope="module")
def pack(shared_data: Path) -> Pack:
    source = open_source(shared_data / "sanders_pack")
    assert isinstance(source, Pack)
    return source


@pytest.fixture(scope="module")
def dataset(shared_data: Path) -> Dataset:
    source = open_source(shared_data / "sanders_dataset")
    assert isinstance(source, Dataset)
    return source


@dataclass
class Stats:
    crop_right: np.ndarray  # PSNR crop_face(full K, rect K-1) vs crops_328/K.jpg
    roi_right: np.ndarray  # PSNR roi_of(...) vs rois_320/K.jpg
    crop_prev: np.ndarray  # rect K-2 (t-1), frames t >= 1
    crop_next: np.ndarray  # rect K (t+1), frames t <= n-2
    mi_core_mean: np.ndarray  # model_inputs inside the box, 3 px in from every edge
    mi_top_left_ring: np.ndarray  # mean |model_inputs - roi| in the 3-px ring above/left of the box
    mi_below_ring: np.ndarray  # ... in rows 311..313 / cols 316..318, just outside MASK_RECT
    mi_strip_vs_roi: np.ndarray  # ... in rows 307..309 / cols 312..314: zeroed by MASK_RECT, not by the pack
    mi_strip_mean: np.ndarray  # model_inputs mean value in that strip
    mi_mae_canonical: np.ndarray  # mean |model_inputs - mask_roi(rois_320)| (MASK_RECT)
    mi_mae_two_point: np.ndarray  # mean |model_inputs - mask_roi(rois_320, MASK_RECT_TWO_POINT)|


def _ring_diff(masked: np.ndarray, roi: np.ndarray, regions) -> float:
    diffs = [np.abs(masked[r].astype(np.int16) - roi[r].astype(np.int16)).ravel() for r in regions]
    return float(np.concatenate(diffs).mean())


@pytest.fixture(scope="module")
def stats(pack: Pack) -> Stats:
    n = pack.n_images
    out = {name: [] for name in Stats.__dataclass_fields__}
    for t in range(n):
        f = pack.frame(t, masked_source="pack")  # full K = t+1, pack crops, rect "t", model_inputs
        crop = crop_face(f.full, f.rect)
        out["crop_right"].append(psnr(crop, f.crop_328))
        out["roi_right"].append(psnr(roi_of(crop), f.roi_320))
        if t >= 1:
            out["crop_prev"].append(psnr(crop_face(f.full, pack.rect(t - 1)), f.crop_328))
        if t <= n - 2:
            out["crop_next"].append(psnr(crop_face(f.full, pack.rect(t + 1)), f.crop_328))
        m, r = f.masked_320, f.roi_320
        out["mi_core_mean"].append(float(m[8:303, 8:308].mean()))
        out["mi_top_left_ring"].append(_ring_diff(m, r, [np.s_[1:4, 8:308], np.s_[8:303, 1:4]]))
        out["mi_below_ring"].append(_ring_diff(m, r, [np.s_[311:314, 8:312], np.s_[8:306, 316:319]]))
        out["mi_strip_vs_roi"].append(_ring_diff(m, r, [np.s_[307:310, 8:308], np.s_[8:303, 312:315]]))
        out["mi_strip_mean"].append(float(np.concatenate([m[307:310, 8:308].ravel(), m[8:303, 312:315].ravel()]).mean()))
        out["mi_mae_canonical"].append(_ring_diff(m, mask_roi(r), [np.s_[:, :]]))
        out["mi_mae_two_point"].append(_ring_diff(m, mask_roi(r, MASK_RECT_TWO_POINT), [np.s_[:, :]]))
    return Stats(**{k: np.array(v) for k, v in out.items()})


# --------------------------------------------------------------------------- real data


def test_sources_open_with_all_frames(pack, dataset):
    assert (pack.kind, pack.n_images) == ("pack", N_FRAMES)
    assert (dataset.kind, dataset.n_images) == ("dataset", N_FRAMES)


def test_right_pairing_crops(stats):
    assert len(stats.crop_right) == N_FRAMES
    assert stats.crop_right.min() >= 30.0, f"worst frame t={stats.crop_right.argmin()}: {stats.crop_right.min():.2f} dB"


def test_right_pairing_rois(stats):
    assert len(stats.roi_right) == N_FRAMES
    assert stats.roi_right.min() >= 30.0, f"worst frame t={stats.roi_right.argmin()}: {stats.roi_right.min():.2f} dB"


def test_wrong_pairing_is_clearly_worse(stats):
    right = float(np.median(stats.crop_right))
    for name, values in (("rect K-2", stats.crop_prev), ("rect K", stats.crop_next)):
        assert len(values) == N_FRAMES - 1
        median = float(np.median(values))
        assert median < 28.0, f"{name}: median {median:.2f} dB"
        assert right - median > 4.0, f"{name}: median {median:.2f} dB vs right pairing {right:.2f} dB"


def test_dataset_rects_equal_pack_rects(pack, dataset):
    mismatches = [(t, dataset.rect(t), pack.rect(t)) for t in range(N_FRAMES) if dataset.rect(t) != pack.rect(t)]
    assert not mismatches, f"{len(mismatches)} rects differ, first: {mismatches[:3]}"


def test_dataset_frame_equals_pack_computed_frame(pack, dataset):
    for t in (0, 261, 522):
        a = dataset.frame(t)
        b = pack.frame(t, crop_source="computed")
        assert isinstance(a, TemplateFrame) and a.t == t and a.masked_320 is None
        assert a.rect == b.rect
        for name in ("full", "crop_328", "roi_320"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (t, name)
        assert np.array_equal(a.crop_328, crop_face(a.full, a.rect))
        assert np.array_equal(a.roi_320, a.crop_328[4:324, 4:324])


def test_pack_frame_reads_image_k_plus_one(pack, shared_data):
    root = shared_data / "sanders_pack"
    f = pack.frame(10, masked_source="pack")
    assert np.array_equal(f.full, cv2.imread(str(root / "full_body_img" / "11.jpg")))
    assert np.array_equal(f.crop_328, cv2.imread(str(root / "crops_328" / "11.jpg")))
    assert np.array_equal(f.roi_320, cv2.imread(str(root / "rois_320" / "11.jpg")))
    assert np.array_equal(f.masked_320, cv2.imread(str(root / "model_inputs" / "11.jpg")))
    rects = json.loads((root / "cache" / "crop_rectangles.json").read_text())
    assert list(f.rect) == rects["10"]["rect"]
    assert pack.frame(10).masked_320 is None  # canonical: the pipeline masks the ROI itself


def test_paths_list_the_files_read(pack, dataset):
    paths = pack.paths(4, masked_source="pack")
    names = sorted(p.relative_to(pack.root).as_posix() for p in paths)
    assert names == sorted(
        ["full_body_img/5.jpg", "cache/crop_rectangles.json", "crops_328/5.jpg", "rois_320/5.jpg", "model_inputs/5.jpg"]
    )
    computed = sorted(p.relative_to(pack.root).as_posix() for p in pack.paths(4, crop_source="computed"))
    assert computed == ["cache/crop_rectangles.json", "full_body_img/5.jpg"]
    assert [p.relative_to(dataset.root).as_posix() for p in dataset.paths(4)] == ["full_body_img/5.jpg", "landmarks/4.lms"]
    assert all(p.is_file() for p in paths + dataset.paths(4))


def test_bad_source_options(pack, dataset):
    with pytest.raises(ValueError):
        pack.frame(0, crop_source="bogus")
    with pytest.raises(ValueError):
        dataset.frame(0, crop_source="pack")
    with pytest.raises(ValueError):
        dataset.frame(0, masked_source="pack")
    with pytest.raises(IndexError):
        pack.rect(N_FRAMES)
    with pytest.raises(IndexError):
        dataset.frame(-1)


def test_model_inputs_box_zeroed(stats):
    # Inside the box only JPEG ringing remains.
    assert stats.mi_core_mean.max() < 10.0


def test_model_inputs_ring_matches_roi(stats):
    # Around the box the masked image is the ROI (up to JPEG noise): top/left edge at (5, 5) as in
    # MASK_RECT, and just below/right of MASK_RECT's far edges.
    assert stats.mi_top_left_ring.max() < 15.0
    assert stats.mi_below_ring.max() < 15.0


def test_model_inputs_box_is_the_two_point_rectangle(stats):
    # The pack's zeroed box ends at x 310, y 305 (cv2.rectangle(img, (5,5), (310,305))), 4 px short of
    # MASK_RECT's x 314 / y 309: the strip MASK_RECT zeroes still holds the ROI in model_inputs.
    assert stats.mi_strip_mean.min() > 25.0
    assert stats.mi_strip_vs_roi.max() < 15.0
    assert np.all(stats.mi_mae_two_point < stats.mi_mae_canonical)
    assert stats.mi_mae_two_point.max() < 6.0


# --------------------------------------------------------------------------- template order


def _simulate(n_images: int, frames: int) -> list[int]:
    """inference_328.py's loop, literally."""
    len_img = n_images - 1
    step_stride = 0
    img_idx = 0
    out = []
    for _ in range(frames):
        if img_idx > len_img - 1:
            step_stride = -1
        if img_idx < 1:
            step_stride = 1
        img_idx += step_stride
        out.append(img_idx)
    return out


@pytest.mark.parametrize("n_images", [2, 3, 4, 5, 10, 97, 250, 523])
def test_template_index_matches_the_loop(n_images):
    expected = _simulate(n_images, 5000)
    assert [template_index(i, n_images) for i in range(5000)] == expected
    assert all(0 <= t < n_images for t in expected)


def test_template_index_start_and_turn():
    assert [template_index(i, 5) for i in range(12)] == [1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4]
    assert template_index(0, N_FRAMES) == 1
    assert template_index(N_FRAMES - 2, N_FRAMES) == N_FRAMES - 1
    assert template_index(N_FRAMES - 1, N_FRAMES) == N_FRAMES - 2


def test_template_index_linear_and_edge_cases():
    assert [template_index(i, 4, order="linear") for i in range(9)] == [0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert template_index(7, 1) == 0  # SyncTalk's loop would index past a single image
    with pytest.raises(ValueError, match="n_images must be >= 1, got 0"):
        template_index(0, 0)
    with pytest.raises(ValueError, match="frame index must be >= 0, got -1"):
        template_index(-1, 5)
    with pytest.raises(ValueError, match="unknown template order 'random'"):
        template_index(0, 5, order="random")


# --------------------------------------------------------------------------- landmarks


def _lms_text(n: int = 110, first: str = "531.9 210.2") -> str:
    lines = [first] + [f"{500 + i} {200 + i}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def test_read_landmarks_truncates_floats(tmp_path):
    path = tmp_path / "0.lms"
    path.write_text(_lms_text(first="531.9 210.2").replace("501 201", "-3.7 12.99"))
    lms = read_landmarks(path)
    assert lms.shape == (110, 2) and lms.dtype == np.int32
    assert lms[0].tolist() == [531, 210]
    assert lms[1].tolist() == [-3, 12]  # toward zero, as numpy's float32 -> int32 cast
    assert lms[2].tolist() == [502, 202]


def test_read_landmarks_real_file_and_rect(shared_data):
    lms = read_landmarks(shared_data / "sanders_dataset" / "landmarks" / "0.lms")
    assert lms.shape == (110, 2)
    assert rect_from_landmarks(lms) == (532, 210, 714, 392)


def test_rect_from_landmarks_formula():
    lms = np.zeros((110, 2), np.int32)
    lms[1] = (100, 999)
    lms[31] = (250, 999)
    lms[52] = (999, 40)
    assert rect_from_landmarks(lms) == (100, 40, 250, 190)
    with pytest.raises(ValueError, match=re.escape("landmarks must be (N >= 53, 2), got shape (40, 2)")):
        rect_from_landmarks(np.zeros((40, 2), np.int32))


@pytest.mark.parametrize(
    "text, message",
    [
        (_lms_text(109), "expected 110 landmarks, got 109"),
        (_lms_text(111), "expected 110 landmarks, got 111"),
        ("", "empty"),
        ("\n\n", "empty"),
        (_lms_text(first="531.9 abc"), "line 1"),
        (_lms_text(first="531 210 7"), "expected 2 columns"),
        (_lms_text(first="531"), "expected 2 columns"),
        (_lms_text(first="nan 3"), "line 1"),
    ],
)
def test_read_landmarks_rejects_bad_files(tmp_path, text, message):
    path = tmp_path / "7.lms"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_landmarks(path)
    assert info.value.path == path and "7.lms" in str(info.value)


def test_read_landmarks_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_landmarks(tmp_path / "nope.lms")


# --------------------------------------------------------------------------- bad folders


def test_open_source_rejects_other_folders(tmp_path):
    (tmp_path / "full_body_img").mkdir()
    (tmp_path / "something_else").mkdir()
    with pytest.raises(InputError, match="neither a pre-cut pack nor a raw dataset: missing landmarks/") as info:
        open_source(tmp_path)
    assert info.value.path == tmp_path
    with pytest.raises(InputError, match="not found"):
        open_source(tmp_path / "absent")
    (tmp_path / "crops_328").mkdir()
    with pytest.raises(InputError, match="cache/crop_rectangles.json is missing"):
        open_source(tmp_path)


def _mini_pack(src: Path, dst: Path, n: int = 3) -> Path:
    for folder in ("full_body_img", "crops_328", "rois_320", "model_inputs"):
        (dst / folder).mkdir(parents=True)
        for k in range(1, n + 1):
            shutil.copyfile(src / folder / f"{k}.jpg", dst / folder / f"{k}.jpg")
    (dst / "landmarks").mkdir()
    for t in range(n):
        shutil.copyfile(src / "landmarks" / f"{t}.lms", dst / "landmarks" / f"{t}.lms")
    rects = json.loads((src / "cache" / "crop_rectangles.json").read_text())
    (dst / "cache").mkdir()
    (dst / "cache" / "crop_rectangles.json").write_text(json.dumps({str(t): rects[str(t)] for t in range(n)}))
    return dst


@pytest.fixture
def mini_pack(shared_data, tmp_path) -> Path:
    return _mini_pack(shared_data / "sanders_pack", tmp_path / "pack")


def test_mini_pack_opens(mini_pack):
    source = open_source(mini_pack)
    assert isinstance(source, Pack) and source.n_images == 3
    assert source.frame(2, masked_source="pack").crop_328.shape == (328, 328, 3)


def test_corrupt_jpeg_is_named(mini_pack):
    bad = mini_pack / "crops_328" / "2.jpg"
    bad.write_bytes(b"this is not a jpeg" * 100)
    source = open_source(mini_pack)
    assert source.frame(0).crop_328.shape == (328, 328, 3)
    with pytest.raises(InputError) as info:
        source.frame(1)
    assert info.value.path == bad and "crops_328/2.jpg" in str(info.value)
    # The computed crop does not read the broken file.
    assert source.frame(1, crop_source="computed").crop_328.shape == (328, 328, 3)


def test_garbage_after_a_jpeg_header_is_named(mini_pack):
    bad = mini_pack / "rois_320" / "1.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20 + b"\xff\xda" + b"\x00" * 50 + b"\xff\xd9")
    assert cv2.imread(str(bad)) is None
    with pytest.raises(InputError, match="cannot decode") as info:
        open_source(mini_pack).frame(0)
    assert info.value.path == bad


def test_truncated_jpeg_is_named(mini_pack):
    bad = mini_pack / "full_body_img" / "3.jpg"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    # OpenCV alone decodes half a JPEG into a grey-filled image without an error:
    assert cv2.imread(str(bad)) is not None
    with pytest.raises(InputError, match="truncated") as info:
        open_source(mini_pack).frame(2)
    assert info.value.path == bad


def test_wrong_crop_shape_is_named(mini_pack):
    bad = mini_pack / "crops_328" / "1.jpg"
    cv2.imwrite(str(bad), np.zeros((320, 320, 3), np.uint8))
    with pytest.raises(InputError, match=r"\(328, 328, 3\)") as info:
        open_source(mini_pack).frame(0)
    assert info.value.path == bad


def test_missing_image_is_named(mini_pack):
    (mini_pack / "rois_320" / "2.jpg").unlink()
    with pytest.raises(InputError, match="missing") as info:
        open_source(mini_pack)
    assert info.value.path == mini_pack / "rois_320" / "2.jpg"


def test_count_mismatch_is_reported(mini_pack):
    (mini_pack / "model_inputs" / "3.jpg").unlink()
    with pytest.raises(InputError, match="disagree on the frame count") as info:
        open_source(mini_pack)
    assert "model_inputs: 2" in str(info.value)


def test_rect_outside_frame_is_named(mini_pack):
    path = mini_pack / "cache" / "crop_rectangles.json"
    rects = json.loads(path.read_text())
    rects["1"]["rect"] = [1200, 600, 1400, 800]
    path.write_text(json.dumps(rects))
    with pytest.raises(InputError, match="outside") as info:
        open_source(mini_pack).frame(1)
    assert info.value.path == path


def test_bad_rect_json_is_named(mini_pack):
    path = mini_pack / "cache" / "crop_rectangles.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="JSON") as info:
        open_source(mini_pack)
    assert info.value.path == path
    path.write_text(json.dumps({"0": {"rect": [1, 2, 3, 4]}, "1": {"rect": [1, 2, 3, 4]}, "5": {"rect": [1, 2, 3, 4]}}))
    with pytest.raises(InputError, match='missing key "2"'):
        open_source(mini_pack)


def test_dataset_count_mismatch_and_missing_landmarks(shared_data, tmp_path):
    src = shared_data / "sanders_dataset"
    root = tmp_path / "ds"
    (root / "full_body_img").mkdir(parents=True)
    (root / "landmarks").mkdir()
    for t in range(3):
        shutil.copyfile(src / "full_body_img" / f"{t + 1}.jpg", root / "full_body_img" / f"{t + 1}.jpg")
        shutil.copyfile(src / "landmarks" / f"{t}.lms", root / "landmarks" / f"{t}.lms")
    source = open_source(root)
    assert isinstance(source, Dataset) and source.n_images == 3
    assert source.rect(2) == rect_from_landmarks(read_landmarks(src / "landmarks" / "2.lms"))
    (root / "landmarks" / "1.lms").write_text("1 2\n")
    with pytest.raises(InputError, match="expected 110 landmarks, got 1") as info:
        Dataset(root).frame(1)
    assert info.value.path == root / "landmarks" / "1.lms"
    (root / "landmarks" / "2.lms").unlink()
    with pytest.raises(InputError, match="3 images but landmarks holds 2"):
        open_source(root)


def test_read_image_names_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found") as info:
        read_image(tmp_path / "5.jpg")
    assert info.value.path == tmp_path / "5.jpg"
