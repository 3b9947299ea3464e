"""harness.verdicts.metrics against crafted answers, plain numpy and scikit-image on real Sanders frames."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harness.verdicts import metrics, ssim_kernel
from reference.image import rect_mouth_box

RECT = (532, 210, 714, 392)  # a Sanders-like face rect (x1, y1, x2, y2)
SSIM_DEFINITION_TOL = 1e-6  # region SSIMs vs float64 recomputations: tight enough to see a pixel row moved
STAT_KEYS = {"identical_pct", "within_1_pct", "within_2_pct", "within_8_pct", "mae", "max_abs"}


def sk_ssim(ref: np.ndarray, cand: np.ndarray, **kwargs) -> float:
    axis = -1 if ref.ndim == 3 else None
    return float(structural_similarity(ref, cand, data_range=255, channel_axis=axis, **kwargs))


def numpy_stats(ref: np.ndarray, cand: np.ndarray) -> dict:
    diff = np.abs(ref.astype(np.int64) - cand.astype(np.int64)).ravel()
    out = {"identical_pct": 100 * np.mean(diff == 0), "mae": diff.mean(), "max_abs": int(diff.max())}
    out.update({f"within_{k}_pct": 100 * np.mean(diff <= k) for k in (1, 2, 8)})
    return out


def assert_stats(got: dict, want: dict) -> None:
    assert set(want) <= set(got)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


@pytest.fixture(scope="module")
def frames(shared_data) -> dict:
    """Real frames: 1, 2 and 300, and frame 1 blurred, JPEG re-encoded at q=70 and with noise added; a
    uniformly random frame, and it with noise added."""
    folder = shared_data / "sanders_pack" / "full_body_img"
    first, second, far = (cv2.imread(str(folder / f"{k}.jpg")) for k in (1, 2, 300))
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 6, first.shape)
    random = rng.integers(0, 256, first.shape, dtype=np.uint8)
    return {
        "1": first,
        "2": second,
        "300": far,
        "blur": cv2.GaussianBlur(first, (5, 5), 1.2),
        "jpeg70": cv2.imdecode(cv2.imencode(".jpg", first, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_COLOR),
        "noise": np.clip(first + noise, 0, 255).astype(np.uint8),
        "random": random,
        "random_noise": np.clip(random + rng.normal(0, 3, first.shape), 0, 255).astype(np.uint8),
    }


PAIRS = [("1", "2"), ("1", "blur"), ("1", "jpeg70"), ("1", "noise"), ("1", "300")]


# pixel_stats

def test_pixel_stats_one_value_off_by_three():
    ref = np.zeros((10, 10, 3), np.uint8)
    cand = ref.copy()
    cand[4, 7, 1] = 3
    got = metrics.pixel_stats(ref, cand)
    assert set(got) == STAT_KEYS
    assert got["identical_pct"] == pytest.approx(100 * 299 / 300)
    assert got["within_1_pct"] == pytest.approx(100 * 299 / 300)
    assert got["within_2_pct"] == pytest.approx(100 * 299 / 300)
    assert got["within_8_pct"] == 100.0
    assert got["max_abs"] == 3
    assert got["mae"] == pytest.approx(3 / 300)


def test_pixel_stats_known_distribution_both_directions():
    ref = np.full(100, 100, np.uint8)
    cand = ref.copy()
    cand[:10] = 101  # 10 off by 1
    cand[10:15] = 98  # 5 off by 2 (cand below ref)
    cand[15:18] = 108  # 3 off by 8
    cand[18:20] = 91  # 2 off by 9
    cand[20] = 0  # 1 off by 100
    got = metrics.pixel_stats(ref, cand)
    assert got["identical_pct"] == pytest.approx(79.0)
    assert got["within_1_pct"] == pytest.approx(89.0)
    assert got["within_2_pct"] == pytest.approx(94.0)
    assert got["within_8_pct"] == pytest.approx(97.0)
    assert got["max_abs"] == 100
    assert got["mae"] == pytest.approx((10 + 10 + 24 + 18 + 100) / 100)


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 48), (1000,), (5, 6, 7, 2)])
def test_pixel_stats_matches_numpy_on_random_data(shape):
    rng = np.random.default_rng(sum(shape))
    ref = rng.integers(0, 256, shape, dtype=np.uint8)
    cand = np.clip(ref.astype(int) + rng.integers(-12, 13, shape), 0, 255).astype(np.uint8)
    assert_stats(metrics.pixel_stats(ref, cand), numpy_stats(ref, cand))


def test_pixel_stats_on_crops_of_real_frames(frames):
    ref, cand = frames["1"][100:300, 200:555], frames["jpeg70"][100:300, 200:555]  # non-contiguous views
    assert_stats(metrics.pixel_stats(ref, cand), numpy_stats(ref, cand))


def test_pixel_stats_beyond_float32_histogram_counts():
    # 2**24 + 4096 values: float32 counts (cv2.calcHist's) would round; the histograms must count exactly.
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (4097, 4096), dtype=np.uint8)
    cand = ref.copy()
    cand[::7, ::3] += 1
    cand[5, 9] = ref[5, 9] ^ 0x80
    assert_stats(metrics.pixel_stats(ref, cand), numpy_stats(ref, cand))


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_histograms_match_bincount(channels):
    rng = np.random.default_rng(channels)
    values = rng.integers(0, 256, (37, 53 * channels), dtype=np.uint8)  # 53 pixels: not a multiple of 4
    values[:, ::5] = 7  # runs of one value
    for view in (values, values[3:30, channels:-2 * channels]):  # contiguous, and a crop (strided rows)
        want = np.stack([np.bincount(view[:, c::channels].ravel(), minlength=256) for c in range(channels)])
        assert np.array_equal(ssim_kernel.channel_histograms(view, channels), want)


@pytest.mark.parametrize("ref, cand", [
    (np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8)),
    (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.int16)),
    (np.zeros((0, 3), np.uint8), np.zeros((0, 3), np.uint8)),
])
def test_pixel_stats_rejects_bad_input(ref, cand):
    with pytest.raises(ValueError, match="shape|uint8|nothing"):
        metrics.pixel_stats(ref, cand)


# psnr

def test_psnr_identical_is_inf(frames):
    assert metrics.psnr(frames["1"], frames["1"].copy()) == math.inf


def test_psnr_known_mse():
    ref = np.zeros((4, 4, 3), np.uint8)
    cand = np.full_like(ref, 5)  # MSE 25
    assert metrics.psnr(ref, cand) == pytest.approx(10 * math.log10(255 ** 2 / 25), rel=1e-12)
    assert metrics.psnr(ref, cand, data_range=1.0) == pytest.approx(10 * math.log10(1 / 25), rel=1e-12)


@pytest.mark.parametrize("pair", PAIRS[:4])
def test_psnr_matches_skimage(frames, pair):
    ref, cand = frames[pair[0]], frames[pair[1]]
    want = peak_signal_noise_ratio(ref, cand, data_range=255)
    assert metrics.psnr(ref, cand) == pytest.approx(want, rel=1e-12)
    assert metrics.psnr(ref.astype(np.float32) / 255, cand.astype(np.float32) / 255, data_range=1.0) == \
        pytest.approx(want, rel=1e-5)


# ssim

@pytest.mark.parametrize("pair", PAIRS)
def test_ssim_matches_skimage_on_real_frames(frames, pair):
    ref, cand = frames[pair[0]], frames[pair[1]]
    assert abs(metrics.ssim(ref, cand) - sk_ssim(ref, cand)) < 1e-4


@pytest.mark.parametrize("box", [RECT, rect_mouth_box(RECT), (0, 0, 9, 700), (1000, 600, 1280, 720)])
def test_ssim_matches_skimage_on_crops(frames, box):
    x1, y1, x2, y2 = box
    ref, cand = frames["1"][y1:y2, x1:x2], frames["jpeg70"][y1:y2, x1:x2]
    assert abs(metrics.ssim(ref, cand) - sk_ssim(ref, cand)) < 1e-4


@pytest.mark.parametrize("pair", [("1", "2"), ("1", "noise")])
def test_ssim_matches_skimage_on_grayscale(frames, pair):
    ref, cand = (cv2.cvtColor(frames[k], cv2.COLOR_BGR2GRAY) for k in pair)
    assert abs(metrics.ssim(ref, cand) - sk_ssim(ref, cand)) < 1e-4


@pytest.mark.parametrize("channels", [2, 4, 5])  # the kernel's general prefix sums (3 channels have their own)
def test_ssim_matches_skimage_on_any_channel_count(frames, channels):
    grey = [cv2.cvtColor(frames[k][:120, :160], cv2.COLOR_BGR2GRAY) for k in ("1", "blur")]
    ref, cand = (np.stack([np.roll(g, 7 * c, axis=1) for c in range(channels)], axis=2) for g in grey)
    assert abs(metrics.ssim(ref, cand) - sk_ssim(ref, cand)) < 1e-6
    assert abs(metrics.ssim(ref[..., :3], cand[..., :3]) - sk_ssim(ref[..., :3], cand[..., :3])) < 1e-6


@pytest.mark.parametrize("win_size", [3, 13])  # 13: larger window sums
def test_ssim_other_window_sizes(frames, win_size):
    ref, cand = frames["1"][:200, :300], frames["2"][:200, :300]
    assert abs(metrics.ssim(ref, cand, win_size=win_size) - sk_ssim(ref, cand, win_size=win_size)) < 1e-4


def test_ssim_channel_axis_and_data_range(frames):
    ref, cand = frames["1"][:150, :200], frames["blur"][:150, :200]
    planar_ref, planar_cand = np.moveaxis(ref, -1, 0), np.moveaxis(cand, -1, 0)
    want = structural_similarity(planar_ref, planar_cand, data_range=100, channel_axis=0)
    assert abs(metrics.ssim(planar_ref, planar_cand, data_range=100, channel_axis=0) - want) < 1e-4


@pytest.mark.parametrize("block_rows", [1, 7, 10 ** 6])  # one row per work item, a few rows, one item
def test_ssim_blocks_stitch_exactly(frames, monkeypatch, block_rows):
    ref, cand = frames["1"][300:400, 500:650], frames["noise"][300:400, 500:650]
    want = metrics.ssim_map(ref, cand)
    monkeypatch.setattr(metrics, "_BLOCK_ROWS", block_rows)
    assert np.array_equal(metrics.ssim_map(ref, cand), want, equal_nan=True)
    assert abs(metrics.ssim(ref, cand) - sk_ssim(ref, cand)) < 1e-4


def test_ssim_identical_is_one(frames):
    assert metrics.ssim(frames["1"], frames["1"].copy()) == 1.0


def test_ssim_map_float32_error_against_float64():
    """The map's only float32 step is the final ratio; a naive float32 E[x^2] - E[x]^2 fails this pair.

    Bright, nearly flat images (values ~250, variances ~0.25) are where float32 cancellation is
    worst: E[x^2] ~ 62500 has a float32 spacing of 0.004, so a naive variance is off by percents.
    """
    rng = np.random.default_rng(3)
    ref = (250 + rng.integers(0, 2, (120, 160, 3))).astype(np.uint8)
    cand = ref.copy()
    cand[rng.random(ref.shape) < 0.2] += 1
    _, want = structural_similarity(ref, cand, data_range=255, channel_axis=-1, full=True)  # float64
    got = metrics.ssim_map(ref, cand)
    assert np.abs(got[3:-3, 3:-3] - want.mean(axis=2)[3:-3, 3:-3]).max() < 1e-5


def test_ssim_map_matches_skimage_map(frames):
    ref, cand = frames["1"], frames["jpeg70"]
    _, want = structural_similarity(ref, cand, data_range=255, channel_axis=-1, full=True)
    got = metrics.ssim_map(ref, cand)
    assert got.shape == ref.shape[:2] and got.dtype == np.float32
    border = np.ones(got.shape, bool)
    border[3:-3, 3:-3] = False
    assert np.isnan(got[border]).all() and not np.isnan(got[~border]).any()
    assert np.abs(got[3:-3, 3:-3] - want.mean(axis=2)[3:-3, 3:-3]).max() < 1e-5
    assert float(np.nanmean(got, dtype=np.float64)) == pytest.approx(metrics.ssim(ref, cand), abs=1e-6)


@pytest.mark.parametrize("ref, cand, kwargs, match", [
    (np.zeros((20, 20, 3), np.uint8), np.zeros((20, 21, 3), np.uint8), {}, "shape"),
    (np.zeros((20, 20), np.float32), np.zeros((20, 20), np.float32), {}, "uint8"),
    (np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), {"win_size": 8}, "odd"),
    (np.zeros((6, 20), np.uint8), np.zeros((6, 20), np.uint8), {}, "exceeds"),
    (np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), {"data_range": 0}, "data_range"),
    (np.zeros((2, 20, 20, 3), np.uint8), np.zeros((2, 20, 20, 3), np.uint8), {}, "2-D"),
])
def test_ssim_rejects_bad_input(ref, cand, kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics.ssim(ref, cand, **kwargs)


# feature_drift

def test_feature_drift_known_answers():
    a = np.array([[1.0, -2.0], [3.0, 4.0]])
    same = metrics.feature_drift(a, a.copy())
    assert same == {"max_abs": 0.0, "mean_abs": 0.0, "rel_l2": 0.0, "cosine": 1.0}
    neg = metrics.feature_drift(a, -a)
    assert neg["cosine"] == pytest.approx(-1.0)
    assert neg["rel_l2"] == pytest.approx(2.0)
    assert neg["max_abs"] == 8.0 and neg["mean_abs"] == 5.0
    eps = np.array([[0.0, 0.0], [0.0, 1e-3]])
    near = metrics.feature_drift(a, a + eps)
    assert near["max_abs"] == pytest.approx(1e-3) and near["mean_abs"] == pytest.approx(2.5e-4)
    assert near["rel_l2"] == pytest.approx(1e-3 / math.sqrt(30))
    want_cos = np.dot(a.ravel(), (a + eps).ravel()) / (np.linalg.norm(a) * np.linalg.norm(a + eps))
    assert near["cosine"] == pytest.approx(want_cos, abs=1e-15) and near["cosine"] < 1.0


def test_feature_drift_zero_arrays():
    zero = np.zeros(5, np.float32)
    assert metrics.feature_drift(zero, zero) == {"max_abs": 0.0, "mean_abs": 0.0, "rel_l2": 0.0, "cosine": 1.0}
    one = np.ones(5, np.float32)
    from_zero = metrics.feature_drift(zero, one)
    assert from_zero["rel_l2"] == math.inf and from_zero["cosine"] == 0.0
    to_zero = metrics.feature_drift(one, zero)
    assert to_zero["rel_l2"] == 1.0 and to_zero["cosine"] == 0.0


def test_feature_drift_matches_numpy_on_random_data():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 7, 11)).astype(np.float32)
    b = a + rng.normal(0, 1e-3, a.shape).astype(np.float32)
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    got = metrics.feature_drift(a, b)
    assert got["max_abs"] == np.abs(b64 - a64).max()
    assert got["mean_abs"] == pytest.approx(np.abs(b64 - a64).mean(), rel=1e-12)
    assert got["rel_l2"] == pytest.approx(np.sqrt(((b64 - a64) ** 2).sum() / (a64 ** 2).sum()), rel=1e-12)
    assert got["cosine"] == pytest.approx(a64 @ b64 / np.sqrt((a64 @ a64) * (b64 @ b64)), rel=1e-12)


def test_feature_drift_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        metrics.feature_drift(np.zeros((2, 3)), np.zeros((3, 2)))


# regions and frame_metrics

def test_region_masks():
    mouth = rect_mouth_box(RECT)
    regions = metrics.region_masks((720, 1280, 3), RECT, mouth)
    assert set(regions) == set(metrics.REGIONS)
    frame = np.arange(720 * 1280).reshape(720, 1280)
    assert frame[regions["full"]].shape == (720, 1280)
    assert (frame[regions["face"]] == frame[210:392, 532:714]).all()
    assert (frame[regions["mouth"]] == frame[mouth[1]:mouth[3], mouth[0]:mouth[2]]).all()
    outside = regions["outside_face"]
    assert outside.shape == (720, 1280) and outside.dtype == bool
    assert outside.sum() == 720 * 1280 - 182 * 182
    assert not outside[210:392, 532:714].any() and outside[209, 532] and outside[210, 714]
    with pytest.raises(ValueError, match="outside"):
        metrics.region_masks((720, 1280), (1200, 600, 1300, 700), mouth)


def test_frame_metrics_identical_pair(frames):
    got = metrics.frame_metrics(frames["1"], frames["1"].copy(), RECT)
    assert set(got) == set(metrics.REGIONS)
    for region, entry in got.items():
        assert set(entry) == STAT_KEYS | {"psnr", "ssim", "channels"}
        assert set(entry["channels"]) == {"B", "G", "R"}
        for values in (entry, *entry["channels"].values()):
            assert values["identical_pct"] == 100.0 and values["within_8_pct"] == 100.0, region
            assert values["psnr"] == math.inf and values["ssim"] == 1.0, region
            assert values["mae"] == 0.0 and values["max_abs"] == 0, region


def test_frame_metrics_change_inside_the_mouth_only(frames):
    ref = frames["1"]
    cand = ref.copy()
    x1, y1, x2, y2 = rect_mouth_box(RECT)
    cand[y1:y2, x1:x2] = frames["2"][y1:y2, x1:x2]
    got = metrics.frame_metrics(ref, cand, RECT)
    outside = got["outside_face"]
    assert outside["identical_pct"] == 100.0 and outside["psnr"] == math.inf
    assert outside["ssim"] == pytest.approx(1.0, abs=1e-12)  # no outside pixel's window reaches the mouth box
    for region in ("full", "face", "mouth"):
        assert got[region]["identical_pct"] < 100.0 and got[region]["psnr"] < 60 and got[region]["ssim"] < 1.0
    # the mouth holds every changed value: its counts scaled to the face's are the face's
    mouth_n, face_n = (x2 - x1) * (y2 - y1), 182 * 182
    changed = (100 - got["mouth"]["identical_pct"]) * mouth_n
    assert (100 - got["face"]["identical_pct"]) * face_n == pytest.approx(changed)


def expected_region(ref: np.ndarray, cand: np.ndarray, ssim_value: float, channel_ssims: list) -> dict:
    """A frame_metrics region from pixel_stats/psnr of the region's values and the given SSIMs."""
    out = {**numpy_stats(ref, cand), "psnr": peak_signal_noise_ratio(ref, cand, data_range=255), "ssim": ssim_value}
    out["channels"] = {
        name: {**numpy_stats(ref[..., c], cand[..., c]),
               "psnr": peak_signal_noise_ratio(ref[..., c], cand[..., c], data_range=255), "ssim": channel_ssims[c]}
        for c, name in enumerate("BGR")
    }
    return out


def assert_region(got: dict, want: dict) -> None:
    for values, expected in [(got, want)] + [(got["channels"][c], want["channels"][c]) for c in "BGR"]:
        assert_stats(values, {k: v for k, v in expected.items() if k in STAT_KEYS})
        assert values["psnr"] == pytest.approx(expected["psnr"], rel=1e-9)
        assert abs(values["ssim"] - expected["ssim"]) < SSIM_DEFINITION_TOL


@pytest.mark.parametrize("pair", [("1", "2"), ("1", "jpeg70"), ("random", "random_noise")])
def test_frame_metrics_regions_match_independent_computations(frames, pair):
    ref, cand = frames[pair[0]], frames[pair[1]]
    got = metrics.frame_metrics(ref, cand, RECT)
    x1, y1, x2, y2 = RECT
    _, smap = structural_similarity(ref, cand, data_range=255, channel_axis=-1, full=True)
    interior = np.zeros(ref.shape[:2], bool)
    interior[3:-3, 3:-3] = True
    inner = (slice(3, -3), slice(3, -3))
    assert_region(got["full"], expected_region(ref, cand, sk_ssim(ref, cand),
                                               [smap[inner][..., c].mean() for c in range(3)]))
    for region, (bx1, by1, bx2, by2) in (("face", RECT), ("mouth", rect_mouth_box(RECT))):
        r, c = ref[by1:by2, bx1:bx2], cand[by1:by2, bx1:bx2]
        assert_region(got[region], expected_region(r, c, sk_ssim(r, c),
                                                    [sk_ssim(r[..., k], c[..., k]) for k in range(3)]))
    outside = metrics.region_masks(ref.shape, RECT, rect_mouth_box(RECT))["outside_face"]
    on_map = outside & interior
    assert on_map.sum() == 714 * 1274 - 182 * 182
    assert_region(got["outside_face"], expected_region(ref[outside], cand[outside], smap[on_map].mean(),
                                                       [smap[on_map][:, c].mean() for c in range(3)]))


def test_frame_metrics_rect_at_the_frame_edge(frames):
    rect = (0, 0, 200, 260)  # overlaps the 3 pixel border the SSIM mean ignores
    ref, cand = frames["1"], frames["noise"]
    got = metrics.frame_metrics(ref, cand, rect)
    _, smap = structural_similarity(ref, cand, data_range=255, channel_axis=-1, full=True)
    on_map = np.zeros(ref.shape[:2], bool)
    on_map[3:-3, 3:-3] = True
    on_map[:260, :200] = False
    assert abs(got["outside_face"]["ssim"] - smap[on_map].mean()) < SSIM_DEFINITION_TOL
    assert abs(got["face"]["ssim"] - sk_ssim(ref[:260, :200], cand[:260, :200])) < SSIM_DEFINITION_TOL


@pytest.mark.parametrize("ref, cand, rect, match", [
    (np.zeros((100, 120, 3), np.uint8), np.zeros((100, 121, 3), np.uint8), (10, 10, 60, 60), "shape"),
    (np.zeros((100, 120), np.uint8), np.zeros((100, 120), np.uint8), (10, 10, 60, 60), "H x W x 3"),
    (np.zeros((100, 120, 3), np.float32), np.zeros((100, 120, 3), np.float32), (10, 10, 60, 60), "uint8"),
    (np.zeros((100, 120, 3), np.uint8), np.zeros((100, 120, 3), np.uint8), (10, 10, 60, 160), "outside"),
    (np.zeros((100, 120, 3), np.uint8), np.zeros((100, 120, 3), np.uint8), (10, 10, 16, 60), "smaller"),
    (np.zeros((100, 120, 3), np.uint8), np.zeros((100, 120, 3), np.uint8), (0, 0, 120, 100), "covers"),
    (np.zeros((100, 120, 3), np.uint8), np.zeros((100, 120, 3), np.uint8), (2, 1, 118, 99), "covers"),
])
def test_frame_metrics_rejects_bad_input(ref, cand, rect, match):
    with pytest.raises(ValueError, match=match):
        metrics.frame_metrics(ref, cand, rect)


def test_ssim_skips_equal_windows_bit_exactly(shared_data):
    """Only windows touching differing pixels are computed: same map as computing them all."""
    from harness.verdicts.metrics import _ssim_dense, _ssim_interior
    ref = cv2.imread(str(shared_data / "sanders_pack" / "full_body_img" / "10.jpg"))
    cand = ref.copy()
    cand[300:340, 600:650] = cv2.GaussianBlur(cand[300:340, 600:650], (5, 5), 0)
    cand[719, 0] ^= 7  # a differing pixel in a corner
    fast = _ssim_interior(ref, cand, 255.0, 7)
    dense, dense_sums = _ssim_dense(ref, cand, 255.0, 7)
    same = _ssim_interior(ref, ref.copy(), 255.0, 7)
    assert fast.block.shape[0] * fast.block.shape[1] < dense.shape[0] * dense.shape[1]
    assert np.array_equal(fast.dense(), dense)
    assert np.allclose(fast.sums(), dense_sums, rtol=0, atol=1e-6)
    box = (slice(290, 350), slice(580, 700))
    assert np.allclose(fast.box_sums(*box)[0], dense[box].sum(axis=(0, 1), dtype=np.float64), rtol=0, atol=1e-6)
    assert (same.dense() == 1).all() and same.block.size == 0

    assert abs(metrics.ssim(ref, cand) - structural_similarity(ref, cand, channel_axis=2, data_range=255)) < 1e-4


def test_pearson_is_numpys_correlation_and_zero_for_a_constant():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(7, 11))
    b = 0.4 * a + rng.normal(size=(7, 11))
    assert metrics.pearson(a, b) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], abs=1e-12)
    assert metrics.pearson(a, -3 * a + 2) == pytest.approx(-1.0)
    assert metrics.pearson(a, np.full_like(a, 5.0)) == 0.0


def test_stage_drift_compares_the_common_rows_and_refuses_other_shapes():
    rng = np.random.default_rng(4)
    ref, cand = rng.normal(size=(9, 4)), rng.normal(size=(6, 4))
    drift = metrics.stage_drift(ref, cand)
    assert drift["rows"] == 6
    assert drift == {**metrics.feature_drift(ref[:6], cand), "rows": 6}
    for bad in (rng.normal(size=(6, 5)), np.zeros((0, 4))):
        with pytest.raises(ValueError, match="rows of shape"):
            metrics.stage_drift(ref, bad)
