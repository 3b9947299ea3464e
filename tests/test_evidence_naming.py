"""The evidence's naming threshold (`findings.MIN_DB`): a colour change that explains a few dB of the
residual is named, one that explains under MIN_DB is not. The candidates are the reference's own frames
with a tint and noise added inside the face rect (`compare` with the pack: no model runs)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.cli import main
from harness.runs.compare import compare_folders
from reference.data import open_source, template_index

FRAMES = 12
TINT = 4.0  # grey levels added to the blue channel inside the face rect
NAMED_NOISE = 3.0  # the tint explains about 1.8 dB of the residual
UNNAMED_NOISE = 8.0  # about 0.3 dB, under MIN_DB (0.5)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_pack, tiny_models_dir) -> Path:
    out = tmp_path_factory.mktemp("naming") / "reference"
    assert main(["infer", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
                 "--models", str(tiny_models_dir), "--frames", str(FRAMES), "--output", str(out),
                 "--no-progress"]) == 0
    return out


def tinted(reference: Path, pack: Path, out: Path, noise: float) -> Path:
    """The reference's frames with TINT on blue and Gaussian noise of `noise` levels inside each face rect:
    the tint is the colour finding's share of the residual, the noise the rest."""
    source = open_source(pack)
    rng = np.random.default_rng(0)
    out.mkdir()
    for i in range(FRAMES):
        name = f"frame_{i + 1:05d}.png"
        frame = cv2.imread(str(reference / name)).astype(np.float64)
        x1, y1, x2, y2 = source.rect(template_index(i, source.n_images))
        face = frame[y1:y2, x1:x2]
        face[..., 0] += TINT
        face += rng.normal(0.0, noise, face.shape)
        cv2.imwrite(str(out / name), np.clip(np.rint(frame), 0, 255).astype(np.uint8))
    return out


def colour_finding(reference: Path, cand: Path, pack: Path, tmp_path: Path) -> dict | None:
    report = tmp_path / "compare.json"
    compare_folders(reference, cand, pack=pack, json_out=report)
    found = json.loads(report.read_text())["findings"]
    return next((f for f in found if f["kind"] == "colour"), None)


def test_a_tint_that_explains_a_few_db_is_named(reference, synthetic_pack, tmp_path):
    found = colour_finding(reference, tinted(reference, synthetic_pack, tmp_path / "cand", NAMED_NOISE), synthetic_pack,
                           tmp_path)
    assert found is not None and found["model"] == "tint", found
    assert 1.0 <= found["explains_db"] <= 3.0, found
    assert found["offset"][0] == pytest.approx(TINT, abs=1.0)


def test_a_tint_lost_in_noise_under_min_db_is_not_named(reference, synthetic_pack, tmp_path):
    assert colour_finding(reference, tinted(reference, synthetic_pack, tmp_path / "cand", UNNAMED_NOISE), synthetic_pack,
                          tmp_path) is None
