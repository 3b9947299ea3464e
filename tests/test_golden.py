"""The committed golden (tiny models, synthetic pack, 12 frames) is reproduced by the reference."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.cli import main
from harness.runs.golden_check import check_golden
from harness.text.args import PROFILE_NAMES
from harness.verdicts.tolerances import PROFILES
from reference.conventions import Conventions
from reference.data import Pack
from reference.errors import InputError
from fixtures.external import flip_byte, with_external_data
from reference.golden import golden_problems, model_hashes, read_manifest, write_golden
from reference.models import ModelFiles, Models
from reference.provenance import cpu_fingerprint, model_sha256, sha256

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "tiny-synthetic"


@pytest.fixture(scope="module")
def inputs(tiny_models_dir, synthetic_pack):
    return Pack(synthetic_pack), synthetic_pack / "audio.wav", Models(ModelFiles.from_dir(tiny_models_dir), threads=1)


@pytest.fixture(scope="module")
def recorded(inputs, tmp_path_factory):
    """A 6-frame golden recorded here, with its models: exact by construction on this machine."""
    return write_golden(tmp_path_factory.mktemp("recorded") / "g", *inputs, 6, store_models=True)


def test_committed_golden_is_reproduced():
    """From the inputs it stores (not rebuilt by the code under test): exact on the machine and
    libraries it was recorded with, within the desktop profile elsewhere."""
    check = check_golden(GOLDEN)
    assert check.ok, "\n".join(check.lines())
    if check.profile == "exact":
        assert max(check.stage_max_abs.values()) == 0.0 and check.worst["identical_pct"][0] == 100.0


def test_cli_profiles_are_the_tolerance_profiles():
    assert PROFILE_NAMES == tuple(PROFILES)


def test_a_golden_is_checked_from_its_stored_inputs(inputs, tmp_path, capsys):
    """The pack and the models it was recorded from are gone: the golden still checks, from its copies."""
    source, wav, models = inputs
    pack, model_dir = tmp_path / "pack", tmp_path / "models"
    shutil.copytree(source.root, pack)
    shutil.copytree(models.files.encoder.parent, model_dir)
    out = write_golden(tmp_path / "g", Pack(pack), pack / "audio.wav", Models(ModelFiles.from_dir(model_dir), threads=1),
                       4, store_models=True)
    shutil.rmtree(pack)
    shutil.rmtree(model_dir)
    assert main(["check-golden", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED under profile exact (same library versions and CPU as the recording)" in printed
    assert read_manifest(out)["cpu"] == cpu_fingerprint()


def test_golden_check_catches_a_changed_frame_and_feature(recorded, tmp_path):
    copy = tmp_path / "golden"
    shutil.copytree(recorded, copy)
    emb = np.load(copy / "features" / "embeddings.npy")
    emb[3, 7] += 1e-3
    np.save(copy / "features" / "embeddings.npy", emb)
    frame = cv2.imread(str(copy / "frames" / "frame_00005.png"))
    frame[10, 10, 0] ^= 1
    cv2.imwrite(str(copy / "frames" / "frame_00005.png"), frame)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["frame_records"][4]["sha256"] = sha256(copy / "frames" / "frame_00005.png")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    check = check_golden(copy)
    assert check.profile == "exact" and not check.ok
    assert check.stage_max_abs["embeddings"] == pytest.approx(1e-3, rel=1e-2)
    assert check.failures[0].startswith("stage embeddings: max abs 0.001 > 0")
    assert check.worst["identical_pct"][1] == 4 and "on frame 5 < 100 %" in check.failures[-1]


def test_golden_with_a_variant_is_not_the_canonical_golden(inputs, tmp_path):
    source, wav, models = inputs
    out = write_golden(tmp_path / "g", source, wav, models, 4, Conventions.parse("audio_window=tile"))
    assert read_manifest(out)["conventions"] == "audio_window=tile"
    assert check_golden(out, models.files).ok
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
    with pytest.raises(InputError, match="not a golden manifest of version 1 or 2"):
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


def _installed_as_if(monkeypatch, manifest: dict, **versions: str) -> None:
    """This machine's libraries seen as the recorded ones, except `versions` (name with _ for -)."""
    import harness.runs.golden_check as golden_check
    installed = {**manifest["libraries"], **{k.replace("_", "-"): v for k, v in versions.items()}}
    monkeypatch.setattr(golden_check, "library_versions", lambda: installed)


def test_a_library_that_resizes_differently_is_named_and_passes_the_tolerant_profile(recorded, monkeypatch):
    """OpenCV "upgraded": its cubic resize now rounds from float32 (+-1 differences). The check names
    the library, gives up `exact` for the profile, passes, and says which stage first differs."""
    manifest = read_manifest(recorded)
    _installed_as_if(monkeypatch, manifest, opencv_python_headless="99.0.0")
    real_resize = cv2.resize

    def float_resize(src, dsize, *args, **kwargs):
        if src.dtype != np.uint8:
            return real_resize(src, dsize, *args, **kwargs)
        return np.clip(np.rint(real_resize(src.astype(np.float32), dsize, *args, **kwargs)), 0, 255).astype(np.uint8)
    monkeypatch.setattr(cv2, "resize", float_resize)
    check = check_golden(recorded, profile="desktop")
    was = manifest["libraries"]["opencv-python-headless"]
    assert check.library_changes == [("opencv-python-headless", was, "99.0.0")]
    assert check.profile == "desktop" and check.ok, "\n".join(check.lines())
    assert check.exact_failures and check.exact_failures[0].startswith("frames: pixel-identical")
    text = "\n".join(check.lines())
    assert f"opencv-python-headless {was} -> 99.0.0" in text
    assert "within tolerance; first to differ from the recording: frames: pixel-identical" in text
    assert check_golden(recorded, profile="exact").ok is False


def test_a_decoder_that_gives_rgb_fails_the_tolerant_profile_at_the_frames(recorded, monkeypatch, capsys):
    manifest = read_manifest(recorded)
    _installed_as_if(monkeypatch, manifest, opencv_python_headless="99.0.0")
    real_imread = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda path, flags=cv2.IMREAD_COLOR: (
        lambda image: image[..., ::-1].copy() if image is not None and image.ndim == 3 and str(path).endswith(".jpg")
        else image)(real_imread(path, flags)))
    check = check_golden(recorded)
    assert not check.ok and check.stage_max_abs == {"mel": 0.0, "embeddings": 0.0, "padded_features": 0.0}
    assert check.failures[0].startswith("frames: PSNR") and "< 45 dB" in check.failures[0]
    assert main(["check-golden", str(recorded)]) == 1
    printed = capsys.readouterr().out
    assert "FAILED under profile desktop (libraries differ from the recording)" in printed
    assert "first out of tolerance: frames: PSNR" in printed


def test_another_cpu_is_named_and_judged_with_the_profile(recorded, monkeypatch):
    import harness.runs.golden_check as golden_check
    other = {**read_manifest(recorded)["cpu"], "model": "Another CPU", "isa": ["sse4_2"]}
    monkeypatch.setattr(golden_check, "cpu_fingerprint", lambda: other)
    check = check_golden(recorded, profile="mobile")
    assert check.profile == "mobile" and check.ok and check.why_profile == "CPU differs from the recording"
    assert check.cpu_changes[0].endswith("-> Another CPU") and check.cpu_changes[1].startswith("instruction sets -")


def test_stored_inputs_are_checked_before_use(recorded, tmp_path, tiny_models_dir):
    copy = tmp_path / "golden"
    shutil.copytree(recorded, copy)
    (copy / "inputs" / "source" / "full_body_img" / "3.jpg").write_bytes(b"\xff\xd8 not the recorded file")
    with pytest.raises(InputError, match=r"3\.jpg: missing, or not the file the golden was recorded from"):
        check_golden(copy)
    shutil.rmtree(copy / "inputs")
    with pytest.raises(InputError, match="does not store the inputs"):
        check_golden(copy)


def test_models_not_stored_must_be_given_and_be_the_recorded_ones(inputs, tmp_path):
    source, wav, models = inputs
    out = write_golden(tmp_path / "g", source, wav, models, 2)
    assert not (out / "inputs" / "models").exists()
    with pytest.raises(InputError, match="does not store its models"):
        check_golden(out)
    assert check_golden(out, models.files).ok
    other = tmp_path / "other"
    from fixtures.models import build_models
    build_models(other, "tiny", seed=1)
    with pytest.raises(InputError, match=r"audio_encoder\.onnx: not the model the golden was recorded from: "
                                         r"audio_encoder\.onnx changed"):
        check_golden(out, ModelFiles.from_dir(other))


def test_a_golden_of_models_with_external_data_names_changed_weights(inputs, tmp_path, tiny_models_dir, capsys):
    """Models exported with their weights in `.onnx.data` files: the golden records and stores every
    file, and a changed byte of the weights is named, stored or given, by check-golden and by a run."""
    source, wav, _ = inputs
    external = with_external_data(tiny_models_dir, tmp_path / "models")
    files = ModelFiles.from_dir(external)
    stored = write_golden(tmp_path / "stored", source, wav, Models(files, threads=1), 2, store_models=True)
    manifest = read_manifest(stored)
    assert set(manifest["model_files"]["generator"]) == {"generator.onnx", "generator.onnx.data"}
    assert manifest["models"]["generator"] == model_sha256(files.generator) != sha256(files.generator)
    assert (stored / "inputs" / "models" / "generator.onnx.data").is_file()
    assert check_golden(stored).ok  # its stored copies load: the data files came along
    flip_byte(stored / "inputs" / "models" / "generator.onnx.data")
    with pytest.raises(InputError, match=r"generator\.onnx: not the model the golden was recorded from: "
                                         r"generator\.onnx\.data changed"):
        check_golden(stored)

    given = write_golden(tmp_path / "given", source, wav, Models(files, threads=1), 2)
    flip_byte(external / "generator.onnx.data")
    assert main(["check-golden", str(given), "--models", str(external)]) == 2
    assert "not the model the golden was recorded from: generator.onnx.data changed" in capsys.readouterr().err
    problems = golden_problems(read_manifest(given), source, model_hashes(files), [sha256(wav)], 2)
    assert problems == ["it was recorded with other models (generator.onnx.data changed)"]
