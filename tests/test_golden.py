"""The committed golden (tiny models, synthetic pack, 12 frames) is reproduced by the reference."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reference.conventions import Conventions
from reference.data import Pack
from reference.errors import InputError
from reference.golden import check_golden, read_manifest, write_golden
from reference.models import ModelFiles, Models

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "tiny-synthetic"


@pytest.fixture(scope="module")
def inputs(tiny_models_dir, synthetic_pack):
    return Pack(synthetic_pack), synthetic_pack / "audio.wav", Models(ModelFiles.from_dir(tiny_models_dir), threads=1)


def test_committed_golden_is_reproduced(inputs):
    check = check_golden(GOLDEN, *inputs)
    assert check.input_mismatches == [], "the model/pack builders no longer give the golden's inputs"
    assert check.frame_mismatches == []
    assert max(check.feature_max_abs.values()) <= 1e-5
    assert check.ok()


def test_golden_check_catches_a_changed_frame_and_feature(inputs, tmp_path):
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN, copy)
    emb = np.load(copy / "features" / "embeddings.npy")
    emb[3, 7] += 1e-3
    np.save(copy / "features" / "embeddings.npy", emb)
    import cv2
    frame = cv2.imread(str(copy / "frames" / "frame_00005.png"))
    frame[10, 10, 0] ^= 1
    cv2.imwrite(str(copy / "frames" / "frame_00005.png"), frame)
    check = check_golden(copy, *inputs)
    assert check.frame_mismatches == [4]
    assert check.feature_max_abs["embeddings"] == pytest.approx(1e-3, rel=1e-2)
    assert not check.ok()


def test_golden_with_a_variant_is_not_the_canonical_golden(inputs, tmp_path):
    source, wav, models = inputs
    out = write_golden(tmp_path / "g", source, wav, models, 4, Conventions.parse("audio_window=tile"))
    assert read_manifest(out)["conventions"] == "audio_window=tile"
    check = check_golden(out, *inputs)
    assert check.ok()
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    assert manifest["frame_records"][:4] != read_manifest(out)["frame_records"][:4]


def test_golden_is_written_atomically_and_never_overwritten_without_force(inputs, tmp_path):
    source, wav, models = inputs
    out = write_golden(tmp_path / "g", source, wav, models, 3)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(InputError, match="--force"):
        write_golden(out, source, wav, models, 2)
    assert (out / "manifest.json").read_bytes() == before
    write_golden(out, source, wav, models, 2, force=True)
    assert read_manifest(out)["frames"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temporary folder left behind


def test_bad_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{\"schema\": \"other\"}")
    with pytest.raises(InputError, match="not a version-1 golden"):
        read_manifest(tmp_path)


def test_a_golden_is_replaced_atomically(inputs, tmp_path, monkeypatch):
    """--force swaps the new golden in: after every rename or removal a golden is at `out`, and no
    fixed `.old` name is used (a folder of that name is left alone)."""
    import reference.golden as golden
    source, audio, models = inputs
    out = tmp_path / "golden"
    write_golden(out, source, audio, models, 3)
    bystander = tmp_path / ".golden.old"
    bystander.mkdir()
    (bystander / "keep.txt").write_text("not the harness's")
    seen = []

    def watched(function):
        def call(*args, **kwargs):
            result = function(*args, **kwargs)
            seen.append((out / "manifest.json").is_file())
            return result
        return call
    monkeypatch.setattr(Path, "rename", watched(Path.rename))
    monkeypatch.setattr(golden.shutil, "rmtree", watched(shutil.rmtree))
    if hasattr(golden, "swap_paths"):
        monkeypatch.setattr(golden, "swap_paths", watched(golden.swap_paths))
    write_golden(out, source, audio, models, 4, force=True)
    assert seen and all(seen), seen
    assert read_manifest(out)["frames"] == 4
    assert (bystander / "keep.txt").read_text() == "not the harness's"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".golden.old", "golden"]
