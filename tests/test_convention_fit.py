"""The composed convention fit: candidates made with several knobs at once (every new knob value among
them) are reproduced and every knob is named; the prefits find the codec and the audio knobs without
the generator; the renderer's caches stay bounded."""
from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import replace
from io import BytesIO
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from harness.diagnosis import render as render_mod
from harness.diagnosis.conventions import (
    bill_deviations,
    bill_lines,
    fit_conventions,
    spread,
)
from harness.diagnosis.fit import fit_audio, fit_background
from harness.diagnosis.render import Renderer
from harness.system.lru import LRU
from reference import image
from reference.conventions import Conventions
from reference.data import open_source
from reference.models import ModelFiles, Models
from reference.output import jpeg_bytes, jpeg_roundtrip
from reference.pipeline import ReferencePipeline, audio_features

pytestmark = pytest.mark.long

FRAMES = 6


@pytest.fixture(scope="module")
def renderer(pack, models) -> Renderer:
    """One renderer for every fit below (its caches are bounded, so sharing it is safe)."""
    return Renderer(pack, pack.root / "audio.wav", models, FRAMES)


def heaviest_first(bill: dict) -> bool:
    """Whether the bill lists its deviations, and its minor ones, in non-increasing weight."""
    return all(a["weight_db"] >= b["weight_db"] for key in ("deviations", "minor") for a, b in pairwise(bill[key]))


def made_with(pack, models, conv: Conventions, n: int = FRAMES):
    """A candidate: the reference's first `n` frames under `conv`, and its generator audio inputs."""
    feats = audio_features(pack.root / "audio.wav", models, conv, n)
    results = list(ReferencePipeline(pack, models, conv).frames(feats, n))
    return {r.index: r.frame for r in results}, np.concatenate([r.audio for r in results])


# Each combines four or more knobs; together they hold every knob value added for real ports. The
# third one's port dumps its generator audio inputs, as a port whose audio front end differs should.
COMBINATIONS = [
    ("input_channels=rgb,masked_input=two_point,paste=direct,resize_kernel=bilinear_align,output=jpeg90_444", False),
    ("output_channels=rgb,masked_input=none,template_order=linear,resize_kernel=nearest_floor,output=jpeg80", False),
    ("mel_scale=htk,audio_window=tile,feature_padding=none,masked_input=pack,resize_kernel=bilinear_scaled,"
     "paste=direct", True),
    ("input_channels=rgb,output_channels=rgb,quantisation=round,audio_offset=-1,output=pil_jpeg85", False),
]


@pytest.mark.parametrize("variant,dumps", COMBINATIONS)
def test_fit_names_every_knob_of_a_combination(pack, models, renderer, variant, dumps):
    injected = Conventions.parse(variant)
    candidate, windows = made_with(pack, models, injected)
    started = time.perf_counter()
    bill = fit_conventions(pack, pack.root / "audio.wav", models, candidate, FRAMES,
                           {"audio_windows": windows} if dumps else None, render=renderer)
    print(f"\ninjected {variant} [{time.perf_counter() - started:.1f} s]\n  " + "\n  ".join(bill_lines(bill)))
    fitted = Conventions.parse(bill["conventions"])
    # every injected knob is named, with its value or one that renders the same frames here (OpenCV's
    # and Pillow's JPEG encoders are both libjpeg: the same bytes)
    assert set(fitted.variants()) == set(injected.variants()), bill["text"]
    for i in candidate:
        assert np.array_equal(renderer.frame(fitted, i), candidate[i]), (i, bill["text"])
    assert bill["explained"] and bill["match"]["identical_pct"] == 100.0
    assert all(d["weight_db"] >= 0.5 for d in bill["deviations"]), bill["deviations"]
    assert heaviest_first(bill), bill_lines(bill)
    assert bill["residual"]["max_abs"] == 0 and bill["residual"]["text"].startswith("none")
    assert bill["variants_rendered"] > 0 and bill["seconds"] > 0


def test_fit_of_the_canonical_pipeline_names_nothing(pack, models, renderer):
    candidate, _ = made_with(pack, models, Conventions())
    bill = fit_conventions(pack, pack.root / "audio.wav", models, candidate, FRAMES, render=renderer)
    assert bill["deviations"] == [] and bill["conventions"] == "canonical"
    assert bill["text"].startswith("no convention variant comes closer than the canonical pipeline")


def test_dumped_audio_windows_fit_the_audio_knobs_without_the_generator(pack, models):
    injected = Conventions.parse("stft_framing=none,stft_window=symmetric,mel_scale=htk,audio_window=tile,"
                                 "feature_padding=none")
    _, windows = made_with(pack, models, injected, 5)
    found = fit_audio(pack.root / "audio.wav", models, windows)
    assert found["max_abs"] == 0.0
    assert replace(Conventions(), **found["knobs"]) == injected
    # the same windows shifted by one frame are found as an offset
    _, later = made_with(pack, models, Conventions(audio_offset=2), 5)
    assert fit_audio(pack.root / "audio.wav", models, later)["knobs"]["audio_offset"] == 2
    assert fit_audio(pack.root / "audio.wav", models, windows + 0.5) is None  # nothing matches: no claim


def test_dumped_windows_of_another_precision_still_narrow_the_audio_alignment(pack, models):
    """Windows that match nothing (an encoder at another precision: bf16-rounded here) are near one
    group of windowings, clearly apart: the offset they were made at is in it, and no other offset;
    windows unrelated to the clip narrow nothing."""
    from harness.diagnosis.fit import nearest_audio
    from reference.precision import round_bf16
    _, later = made_with(pack, models, Conventions(audio_offset=2), 5)
    drifted = round_bf16(later * 1.01)
    assert fit_audio(pack.root / "audio.wav", models, drifted) is None
    near = nearest_audio(pack.root / "audio.wav", models, drifted)["near"]
    assert near and {knobs["audio_offset"] for knobs in near} == {2}
    noise = np.random.default_rng(2).normal(0, 1, later.shape).astype(np.float32)
    assert nearest_audio(pack.root / "audio.wav", models, noise)["near"] is None


def test_dumps_name_a_knob_too_small_to_see_in_pixels(pack, models, renderer):
    injected = Conventions.parse("stft_window=symmetric,template_order=linear,paste=direct,masked_input=none")
    candidate, windows = made_with(pack, models, injected)
    bill = fit_conventions(pack, pack.root / "audio.wav", models, candidate, FRAMES, {"audio_windows": windows},
                           render=renderer)
    named = {d["knob"]: d["value"] for d in bill["deviations"] + bill["minor"]}
    assert named == injected.variants() and heaviest_first(bill), bill_lines(bill)
    assert bill["prefit"]["audio"]["knobs"]["stft_window"] == "symmetric"


def test_the_bill_lists_deviations_heaviest_first():
    fitted = Conventions.parse("paste=direct,input_channels=rgb,mel_scale=htk,stft_window=symmetric,output=jpeg90")
    weights = {"paste": (1.5, 40.0), "input_channels": (math.inf, None), "mel_scale": (7.25, 30.0)}
    deviations, minor = bill_deviations(fitted, weights, {"output": 0.05, "stft_window": 0.3},
                                        {"knobs": {"stft_window": "symmetric"}})
    bill = {"deviations": deviations, "minor": minor}
    assert heaviest_first(bill), bill
    assert [(d["knob"], d["value"], d["canonical"]) for d in deviations] == [
        ("input_channels", "rgb", "bgr"), ("mel_scale", "htk", "slaney"), ("paste", "direct", "crop328")]
    assert [(d["knob"], d["evidence"]) for d in minor] == [
        ("stft_window", "stage dumps"), ("output", "JPEG lattice of the background")]


@pytest.mark.parametrize("output", ["lossless", "jpeg95", "jpeg70_444", "jpeg90"])
def test_background_fit_finds_pairing_and_codec(pack, models, output):
    candidate, _ = made_with(pack, models, Conventions(output=output, template_order="linear"), 4)
    found = fit_background(pack, {i: candidate[i] for i in (1, 3)})
    assert found["knobs"] == {"template_order": "linear", "output": output}, found


def test_handwritten_resizes_match_plain_loops():
    rng = np.random.default_rng(3)
    src = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    out_w, out_h = 13, 5
    near = np.array([[src[y * 7 // out_h, x * 9 // out_w] for x in range(out_w)] for y in range(out_h)])
    assert np.array_equal(image.resize(src, (out_w, out_h), "nearest_floor"), near)
    for kernel, den_x, den_y in (("bilinear_align", out_w - 1, out_h - 1), ("bilinear_scaled", out_w, out_h)):
        want = np.zeros((out_h, out_w, 3), np.uint8)
        for y in range(out_h):
            for x in range(out_w):
                sx = np.float32(np.float32(x) * np.float32(8) / np.float32(den_x))
                sy = np.float32(np.float32(y) * np.float32(6) / np.float32(den_y))
                xl, yt = int(sx), int(sy)
                xr, yb = min(xl + 1, 8), min(yt + 1, 6)
                ax, ay = np.float32(sx - np.float32(xl)), np.float32(sy - np.float32(yt))
                for c in range(3):
                    tl, tr = np.float32(src[yt, xl, c]), np.float32(src[yt, xr, c])
                    bl, br = np.float32(src[yb, xl, c]), np.float32(src[yb, xr, c])
                    top = np.float32(tl + np.float32((tr - tl) * ax))
                    bottom = np.float32(bl + np.float32((br - bl) * ax))
                    want[y, x, c] = int(np.float32(top + np.float32((bottom - top) * ay)))
        assert np.array_equal(image.resize(src, (out_w, out_h), kernel), want), kernel
    # corner-aligned: the last output pixel is the last input pixel; the scaled grid never reaches it
    assert np.array_equal(image.resize(src, (out_w, out_h), "bilinear_align")[-1, -1], src[-1, -1])
    assert not np.array_equal(image.resize(src, (out_w, out_h), "bilinear_scaled")[-1, -1], src[-1, -1])


def test_masked_input_and_channel_variants_change_what_they_say(pack, models):
    base = made_with(pack, models, Conventions(), 1)[0][0]
    tpl = ReferencePipeline(pack, models, Conventions()).load_template(0)
    pipe = ReferencePipeline(pack, models, Conventions(masked_input="two_point"))
    feats = audio_features(pack.root / "audio.wav", models, Conventions(), 1)
    x, _ = pipe.generator_inputs(0, feats, tpl)
    masked = (x[0, 3:] * 255).round().astype(np.uint8).transpose(1, 2, 0)
    assert not masked[5:306, 5:311].any() and np.array_equal(masked[306, 5:311], tpl.roi_320[306, 5:311])
    x_none, _ = ReferencePipeline(pack, models, Conventions(masked_input="none")).generator_inputs(0, feats, tpl)
    assert np.array_equal(x_none[0, :3], x_none[0, 3:])
    # output read as RGB: the patch is the canonical patch with its channels reversed
    canon = ReferencePipeline(pack, models, Conventions())
    swapped = ReferencePipeline(pack, models, Conventions(output_channels="rgb"))
    out = canon.models.generate(*canon.generator_inputs(0, feats, tpl))
    assert np.array_equal(swapped.composite(tpl, out)[0], canon.composite(tpl, out)[0][..., ::-1])
    assert np.array_equal(canon.composite(tpl, out)[1], base)


def test_jpeg_codecs_differ_as_named():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for library in ("cv2", "pil"):
        for sub, sampling in (("420", 2), ("444", 0)):
            with Image.open(BytesIO(jpeg_bytes(img, 90, library, sub))) as im:
                assert JpegImagePlugin.get_sampling(im) == sampling, (library, sub)
    assert not np.array_equal(jpeg_roundtrip(img, 90, "cv2", "420"), jpeg_roundtrip(img, 90, "cv2", "444"))


def test_renderer_caches_stay_bounded(pack, models, monkeypatch):
    monkeypatch.setattr(render_mod, "OUTPUT_CACHE", 3)
    monkeypatch.setattr(render_mod, "TEMPLATE_CACHE", 2)
    monkeypatch.setattr(render_mod, "FEATURE_CACHE", 2)
    r = Renderer(pack, pack.root / "audio.wav", models, 4)
    for conv in (Conventions(), Conventions(mel_scale="htk"), Conventions(stft_window="symmetric"),
                 Conventions(template_order="linear"), Conventions(audio_offset=1)):
        for i in range(4):
            r.frame(conv, i)
    assert len(r._outputs) == 3 and len(r._templates) == 2 and len(r._features) == 2
    lru = LRU(2)
    assert [lru.get(k, lambda k=k: k * 10) for k in (1, 2, 1, 3)] == [10, 20, 10, 30]
    assert lru.get(2, lambda: "remade") == "remade"  # 2 was the least recently used: forgotten


def test_spread_picks_evenly():
    assert spread(list(range(40)), 2) == [0, 39] and spread([4, 5], 8) == [4, 5]
    assert spread(list(range(12)), 3) == [0, 6, 11] and spread(list(range(9)), 1) == [4]


def test_the_codec_fits_sample_is_the_middle_of_the_strip_on_the_block_grid():
    from harness.diagnosis.fit import MCU, strip_window
    rows, cols = strip_window((slice(0, 720), slice(752, 1280)))
    assert (rows, cols) == (slice(224, 480), slice(752, 1264))
    assert rows.start % MCU == 0 and cols.start % MCU == 0 and rows.stop - rows.start == 256
    assert strip_window((slice(0, 100), slice(16, 300))) == (slice(0, 100), slice(16, 300))  # small: whole


def test_renderers_share_generator_outputs_by_model_files_and_inputs(tiny_models_dir, synthetic_pack, tmp_path):
    """Two renderers of the same models and clip make each generator output once; a model file changed
    on disk (size or time) is other numbers, and is computed again."""
    models_dir = Path(shutil.copytree(tiny_models_dir, tmp_path / "models"))
    models = Models(ModelFiles.from_dir(models_dir), threads=1)
    calls = []
    real = models.generate
    models.generate = lambda image, audio, worker=0: calls.append(1) or real(image, audio, worker)
    source, audio_path = open_source(synthetic_pack), synthetic_pack / "audio.wav"
    first = Renderer(source, audio_path, models, 2).frame(Conventions(), 1)
    again = Renderer(source, audio_path, models, 2).frame(Conventions(), 1)
    assert len(calls) == 1 and np.array_equal(first, again)
    generator = models_dir / "generator.onnx"
    os.utime(generator, ns=(generator.stat().st_atime_ns, generator.stat().st_mtime_ns + 10**9))
    Renderer(source, audio_path, models, 2).frame(Conventions(), 1)
    assert len(calls) == 2
