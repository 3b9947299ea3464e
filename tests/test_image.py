"""Image stages (reference/image.py) on synthetic arrays: each against the literal OpenCV/numpy
expression SyncTalk_2D's inference_328.py uses."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from reference.image import (
    CROP_SIZE,
    MASK_RECT,
    MASK_RECT_TWO_POINT,
    ROI_SIZE,
    crop_face,
    generator_input,
    mask_roi,
    paste,
    quantize,
    rect_mouth_box,
    roi_of,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def full(rng) -> np.ndarray:
    return rng.integers(0, 256, size=(720, 1280, 3), dtype=np.uint8)


def _roi(rng) -> np.ndarray:
    # Non-zero everywhere so that a zeroed pixel can only come from the mask.
    return rng.integers(1, 256, size=(ROI_SIZE, ROI_SIZE, 3), dtype=np.uint8)


def test_constants():
    assert (CROP_SIZE, ROI_SIZE, MASK_RECT) == (328, 320, (5, 5, 310, 305))


def test_mask_roi_equals_cv2_rectangle(rng):
    roi = _roi(rng)
    before = roi.copy()
    expected = cv2.rectangle(roi.copy(), (5, 5, 310, 305), (0, 0, 0), -1)
    got = mask_roi(roi)
    assert np.array_equal(got, expected)
    assert np.array_equal(roi, before), "mask_roi modified its input"
    # The box is x 5..314, y 5..309 inclusive and nothing else.
    zero = np.all(got == 0, axis=2)
    ys, xs = np.nonzero(zero)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (5, 314, 5, 309)
    assert zero.sum() == 310 * 305


def test_mask_roi_two_point_box_equals_cv2_points_form(rng):
    roi = _roi(rng)
    expected = cv2.rectangle(roi.copy(), (5, 5), (310, 305), (0, 0, 0), -1)
    assert np.array_equal(mask_roi(roi, MASK_RECT_TWO_POINT), expected)
    assert not np.array_equal(mask_roi(roi, MASK_RECT_TWO_POINT), mask_roi(roi))


def test_mask_roi_rejects_wrong_shape(rng):
    with pytest.raises(ValueError, match="320"):
        mask_roi(rng.integers(0, 256, size=(328, 328, 3), dtype=np.uint8))


def test_roi_of_is_a_copy_of_the_centre(rng):
    crop = rng.integers(0, 256, size=(328, 328, 3), dtype=np.uint8)
    roi = roi_of(crop)
    assert roi.shape == (320, 320, 3)
    assert np.array_equal(roi, crop[4:324, 4:324])
    roi[:] = 0
    assert crop[4:324, 4:324].any(), "roi_of returned a view"


def test_crop_face_matches_cv2_resize(full):
    rect = (532, 210, 714, 392)
    got = crop_face(full, rect)
    assert got.shape == (328, 328, 3) and got.dtype == np.uint8
    expected = cv2.resize(full[210:392, 532:714], (328, 328), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(got, expected)
    nearest = crop_face(full, rect, interpolation=cv2.INTER_NEAREST)
    assert not np.array_equal(nearest, got)


@pytest.mark.parametrize(
    "rect",
    [(-1, 10, 100, 110), (10, -5, 110, 95), (1200, 10, 1281, 91), (10, 700, 40, 721), (100, 100, 100, 200), (200, 100, 100, 200)],
)
def test_crop_face_rejects_rect_outside_or_empty(full, rect):
    with pytest.raises(ValueError, match=r"x1=-?\d+"):
        crop_face(full, rect)


def test_crop_face_accepts_rect_touching_the_edges(full):
    assert crop_face(full, (0, 0, 1280, 720)).shape == (328, 328, 3)


def test_generator_input_layout_and_values(rng):
    roi = _roi(rng)
    masked = mask_roi(roi)
    x = generator_input(roi, masked)
    assert x.shape == (1, 6, 320, 320) and x.dtype == np.float32 and x.flags.c_contiguous
    # SyncTalk: img.transpose(2,0,1).astype(np.float32) then / 255.0, concat(real, masked).
    real = roi.transpose(2, 0, 1).astype(np.float32) / 255.0
    mask = masked.transpose(2, 0, 1).astype(np.float32) / 255.0
    expected = np.concatenate([real, mask], axis=0)[None]
    assert expected.dtype == np.float32
    assert np.array_equal(x, expected)
    # BGR stays BGR: channel 0 is the first (blue) plane of the roi.
    assert np.array_equal(x[0, 0], roi[:, :, 0].astype(np.float32) / np.float32(255))
    assert np.array_equal(x[0, 5], masked[:, :, 2].astype(np.float32) / np.float32(255))
    assert x[0, 3:, 5:310, 5:315].max() == 0 and x[0, :3, 5:310, 5:315].min() > 0


def test_quantize_truncates():
    out = np.zeros((3, 320, 320), np.float32)
    out[0, 0, 0] = 0.999  # 254.745 -> 254
    out[0, 0, 1] = 1.0
    out[0, 0, 2] = 0.5  # 127.5 -> 127
    out[1, 0, 0] = -0.3
    out[1, 0, 1] = 1.7
    out[1, 0, 2] = np.nan
    out[2, 0, 0], out[2, 0, 1] = np.inf, -np.inf
    q = quantize(out)
    assert q.shape == (320, 320, 3) and q.dtype == np.uint8
    assert (q[0, 0, 0], q[0, 1, 0], q[0, 2, 0]) == (254, 255, 127)
    assert (q[0, 0, 1], q[0, 1, 1], q[0, 2, 1]) == (0, 255, 0), "out-of-range values must saturate, NaN -> 0"
    assert (q[0, 0, 2], q[0, 1, 2]) == (255, 0), "infinities must saturate"
    assert q[5, 5].tolist() == [0, 0, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_equals_numpy_cast_on_random_data(rng, dtype):
    out = rng.random((1, 3, 320, 320)).astype(dtype)
    out[0, 0, :2, :2] = [[0.0, 1.0], [1 / 255, 254.5 / 255]]
    expected = np.array(out[0].transpose(1, 2, 0) * 255, dtype=np.uint8)
    got = quantize(out)
    assert np.array_equal(got, expected)
    rounded = np.round(out[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    assert not np.array_equal(got, rounded)


def test_quantize_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        quantize(np.zeros((320, 320, 3), np.float32))
    with pytest.raises(ValueError, match="batch"):
        quantize(np.zeros((2, 3, 320, 320), np.float32))


def test_paste_only_touches_the_rect(full, rng):
    rect = (532, 210, 714, 392)
    x1, y1, x2, y2 = rect
    crop = crop_face(full, rect)
    patch = _roi(rng)
    before_full, before_crop, before_patch = full.copy(), crop.copy(), patch.copy()
    out = paste(full, crop, patch, rect)
    assert out.shape == full.shape and out.dtype == np.uint8
    outside = np.ones(full.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(out[outside], full[outside])
    assert not np.array_equal(out[y1:y2, x1:x2], full[y1:y2, x1:x2])
    assert np.array_equal(full, before_full) and np.array_equal(crop, before_crop) and np.array_equal(patch, before_patch)
    # Inside: the 328 crop with the patch in its centre, resized (bicubic) to the rect's size.
    work = crop.copy()
    work[4:324, 4:324] = patch
    expected = cv2.resize(work, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[y1:y2, x1:x2], expected)


def test_paste_of_the_unchanged_roi_writes_the_resized_crop(full):
    rect = (100, 50, 283, 233)
    crop = crop_face(full, rect)
    out = paste(full, crop, roi_of(crop), rect)
    expected = full.copy()
    expected[50:233, 100:283] = cv2.resize(crop, (183, 183), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out, expected)


def test_paste_rejects_rect_outside(full, rng):
    crop = rng.integers(0, 256, size=(328, 328, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="outside"):
        paste(full, crop, roi_of(crop), (1200, 600, 1400, 800))


def test_rect_mouth_box_identity_scale():
    # A 328-px rect: crop pixels 9..318 x 9..313 are frame pixels x1+9 .. x1+318 (exclusive end +319).
    assert rect_mouth_box((100, 200, 428, 528)) == (109, 209, 419, 514)


def test_rect_mouth_box_inside_rect(rng):
    for _ in range(500):
        w = int(rng.integers(20, 700))
        h = int(rng.integers(20, 700))
        x1 = int(rng.integers(0, 500))
        y1 = int(rng.integers(0, 500))
        rect = (x1, y1, x1 + w, y1 + h)
        bx1, by1, bx2, by2 = rect_mouth_box(rect)
        assert x1 <= bx1 < bx2 <= x1 + w and y1 <= by1 < by2 <= y1 + h, (rect, (bx1, by1, bx2, by2))
        # Rounded outward: covers the exact scaled box.
        assert bx1 <= x1 + 9 * w / 328 and bx2 >= x1 + 319 * w / 328
        assert by1 <= y1 + 9 * h / 328 and by2 >= y1 + 314 * h / 328
        # ... and by less than one pixel.
        assert bx1 > x1 + 9 * w / 328 - 1 and bx2 < x1 + 319 * w / 328 + 1


def test_rect_mouth_box_covers_the_pasted_change(full, rng):
    # A patch that differs from the template only inside the mask box changes the frame
    # mostly inside the mouth box (bicubic leaks at most 2 px beyond it).
    rect = (532, 210, 714, 392)
    crop = crop_face(full, rect)
    roi = roi_of(crop)
    patch = roi.copy()
    patch[5:310, 5:315] = 255 - patch[5:310, 5:315]
    changed = np.any(paste(full, crop, patch, rect) != paste(full, crop, roi, rect), axis=2)
    bx1, by1, bx2, by2 = rect_mouth_box(rect)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= bx1 - 2 and xs.max() < bx2 + 2 and ys.min() >= by1 - 2 and ys.max() < by2 + 2
    assert changed[by1 + 2 : by2 - 2, bx1 + 2 : bx2 - 2].mean() > 0.9
