"""The reference cache: a second identical run reuses it, a changed input misses, a corrupt or partial
entry is recomputed, --no-cache and [run] cache = false bypass it, and the oldest entries go past the cap."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from fixtures.external import with_external_data
from harness.cli import main
from harness.history.snapshot import snapshots
from harness.runs import parity, refcache
from harness.runs.config import load_config
from harness.verdicts.results import read_results
from reference.conventions import Conventions
from reference.provenance import model_sha256

pytestmark = pytest.mark.long

CONFIG = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav"]
frames = {frames}
[run]
output = "{out}"
{run}
[backends.ort]
kind = "onnxruntime"
"""


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private reference cache folder."""
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / refcache.FOLDER


@pytest.fixture
def calls(monkeypatch) -> list:
    """One entry per run of the reference pipeline."""
    seen: list = []
    real = parity.run_reference
    monkeypatch.setattr(parity, "run_reference", lambda *a, **k: seen.append(1) or real(*a, **k))
    return seen


def config(tmp_path: Path, pack: Path, models: Path, frames: int = 4, run: str = "") -> Path:
    path = tmp_path / f"parity-{frames}.toml"
    path.write_text(CONFIG.format(pack=pack, models=models, frames=frames, out=tmp_path / "out", run=run))
    return path


def run(path: Path) -> dict:
    results, _ = parity.run_parity(load_config(path), progress=False)
    return results


def entries(folder: Path) -> list[str]:
    """The cache's entries (lock files and temporary folders are dot names)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def summaries(results: dict) -> list:
    return [(r["status"], r["summary"]) for r in results["runs"]]


def test_a_second_identical_run_reuses_the_reference(tmp_path, synthetic_pack, tiny_models_dir, cache, calls):
    path = config(tmp_path, synthetic_pack, tiny_models_dir)
    first = run(path)
    assert calls == [1] and first["reference"][0]["cached"] is False and first["reference"][0]["stored"]
    second = run(path)
    assert calls == [1], "the reference pipeline ran again"
    assert second["reference"][0]["cached"] is True and second["reference"][0]["key"] == first["reference"][0]["key"]
    assert summaries(second) == summaries(first) and second["runs"][0]["features"] == first["runs"][0]["features"]


def test_changed_frames_miss(tmp_path, synthetic_pack, tiny_models_dir, cache, calls):
    run(config(tmp_path, synthetic_pack, tiny_models_dir, frames=4))
    run(config(tmp_path, synthetic_pack, tiny_models_dir, frames=5))
    assert calls == [1, 1] and len(entries(cache)) == 2


def test_changed_weights_in_an_external_data_file_miss(tmp_path, synthetic_pack, tiny_models_dir, cache, calls):
    """Issue 30's measured bug: the weights live in generator.onnx.data, scaled by 1.05 between two runs.
    The second run computes a new reference (it used to read the stale one, and judged ONNX Runtime
    FAILED against the old weights); results.json and the history name another generator."""
    models = with_external_data(tiny_models_dir, tmp_path / "models")
    path = config(tmp_path, synthetic_pack, models)
    first = run(path)
    data = models / "generator.onnx.data"
    (np.fromfile(data, np.float32) * np.float32(1.05)).tofile(data)
    second = run(path)
    assert calls == [1, 1] and len(entries(cache)) == 2
    assert second["reference"][0]["key"] != first["reference"][0]["key"] and not second["reference"][0]["cached"]
    assert [r["status"] for r in second["runs"]] == ["passed"] * len(second["runs"])
    was, now = first["inputs"]["models"], read_results(tmp_path / "out" / "results.json")["inputs"]["models"]
    assert was["audio_encoder"] == now["audio_encoder"] and was["generator"] != now["generator"]
    assert now["generator"] == model_sha256(models / "generator.onnx")
    assert was["files"]["generator"]["generator.onnx"] == now["files"]["generator"]["generator.onnx"]
    assert was["files"]["generator"]["generator.onnx.data"] != now["files"]["generator"]["generator.onnx.data"]
    assert snapshots(first)[0].inputs_sha256 != snapshots(second)[0].inputs_sha256


def test_the_key_changes_with_every_input():
    inputs = {"models": {"audio_encoder": "e", "generator": "g"}, "source": {"kind": "pack", "sha256": "p"}}
    base = refcache.key_of(inputs, "a", 4, {"onnxruntime": "1"})
    other_source = {**inputs, "source": {"kind": "pack", "sha256": "q"}}
    other_models = {**inputs, "models": {"audio_encoder": "e", "generator": "h"}}
    variants = [refcache.key_of(inputs, "b", 4, {"onnxruntime": "1"}), refcache.key_of(inputs, "a", 5, {"onnxruntime": "1"}),
                refcache.key_of(inputs, "a", 4, {"onnxruntime": "2"}), refcache.key_of(other_source, "a", 4, {"onnxruntime": "1"}),
                refcache.key_of(other_models, "a", 4, {"onnxruntime": "1"}),
                refcache.key_of(inputs, "a", 4, {"onnxruntime": "1"}, Conventions.parse("channel_order=rgb"))]
    assert base == refcache.key_of(inputs, "a", 4, {"onnxruntime": "1"}, Conventions())
    assert len({base, *variants}) == 1 + len(variants)


@pytest.mark.parametrize("damage", ["flip a byte", "remove the manifest", "truncate the arrays"])
def test_a_corrupt_or_partial_entry_is_recomputed(tmp_path, synthetic_pack, tiny_models_dir, cache, calls, damage):
    path = config(tmp_path, synthetic_pack, tiny_models_dir)
    first = run(path)
    entry = cache / first["reference"][0]["key"]
    arrays = entry / refcache.ARRAYS
    if damage == "flip a byte":
        data = bytearray(arrays.read_bytes())
        data[len(data) // 2] ^= 0xFF
        arrays.write_bytes(bytes(data))
    elif damage == "remove the manifest":
        (entry / refcache.MANIFEST).unlink()
    else:
        arrays.write_bytes(arrays.read_bytes()[:100])
    second = run(path)
    assert calls == [1, 1] and second["reference"][0]["cached"] is False
    assert summaries(second) == summaries(first)
    assert run(path)["reference"][0]["cached"] is True  # stored afresh


def test_no_cache_and_run_cache_false_bypass_it(tmp_path, synthetic_pack, tiny_models_dir, cache, calls):
    path = config(tmp_path, synthetic_pack, tiny_models_dir)
    assert main(["run", "--config", str(path), "--no-cache", "--quiet", "--no-explain"]) in (0, 1)
    assert calls == [1] and not cache.exists()
    off = config(tmp_path, synthetic_pack, tiny_models_dir, frames=4, run="cache = false")
    results = run(off)
    assert calls == [1, 1] and not cache.exists()
    assert results["reference"][0] == {**results["reference"][0], "cached": False, "stored": False, "key": None}


def fields(n: int, size: int) -> dict:
    return {"templates": list(range(n)), "rects": [(0, 0, size, size)] * n,
            "patches": [np.full((size, size, 3), k, np.uint8) for k in range(n)],
            "mouths": np.zeros((n, 32, 32), np.uint8), "stages": {"mel": np.ones((3, 80), np.float32)},
            "timings": {"total": 1.5, "frame_latency": [0.1] * n}}


def test_round_trip_and_eviction_of_the_least_recently_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNCTALK_PARITY_CACHE", str(tmp_path))
    monkeypatch.setenv(refcache.CAP_ENV, "1")  # 1 MB: room for two entries of ~0.4 MB
    assert refcache.store("a", fields(4, 180)) and refcache.store("b", fields(4, 180))
    got = refcache.load("a")  # "a" is now the most recently used
    assert got["rects"] == [(0, 0, 180, 180)] * 4 and got["templates"] == [0, 1, 2, 3]
    assert all(np.array_equal(p, np.full((180, 180, 3), k, np.uint8)) for k, p in enumerate(got["patches"]))
    assert np.array_equal(got["stages"]["mel"], np.ones((3, 80), np.float32)) and got["timings"]["total"] == 1.5
    os.utime(refcache.root() / "b" / refcache.MANIFEST, (1, 1))  # "b": used long ago
    assert refcache.store("c", fields(4, 180))
    assert entries(refcache.root()) == ["a", "c"]
    assert not (refcache.root() / refcache.LOCKS / "b").exists()
    assert not refcache.store("huge", fields(4, 400)) and not (refcache.root() / "huge").exists()  # over the cap alone


def test_runs_wanting_the_same_reference_compute_it_once(tmp_path, synthetic_pack, tiny_models_dir, cache, calls):
    """Two runs at once (as pytest-xdist workers are): the second waits on the key's lock and reads what
    the first stored."""
    import threading
    cfg = load_config(config(tmp_path, synthetic_pack, tiny_models_dir))
    models = parity.models_folder(cfg)
    audio = Path(cfg.audio[0])
    results = parity.start_results(cfg, models, [audio])
    key = refcache.key_of(results["inputs"], results["inputs"]["audio"][0]["sha256"], cfg.frames,
                          results["machine"]["libraries"])
    got: list = []

    def one(k: int) -> None:
        inputs = parity.RunInputs(cfg.source, cfg.source_kind, audio, models, cfg.frames, tmp_path / f"w{k}")
        got.append(parity.cached_reference(inputs, key, progress=False))

    with refcache.lock(key):  # held while both start: neither can compute before the other has looked
        workers = [threading.Thread(target=one, args=(k,)) for k in range(2)]
        for w in workers:
            w.start()
    for w in workers:
        w.join()
    assert calls == [1], "the reference ran twice"
    assert sorted(how["cached"] for _, how in got) == [False, True]
    assert all(np.array_equal(a, b) for a, b in zip(got[0][0].patches, got[1][0].patches))


def golden_config(tmp_path: Path, pack: Path, models: Path, golden: Path, frames: int = 4) -> Path:
    path = tmp_path / "golden.toml"
    path.write_text(CONFIG.format(pack=pack, models=models, frames=frames, out=tmp_path / "out", run="")
                    .replace('audio = ["', f'golden = "{golden}"\naudio = ["silence", "'))
    return path


@pytest.fixture
def golden(tmp_path, synthetic_pack, tiny_models_dir) -> Path:
    """A 5-frame golden of the pack's audio."""
    out = tmp_path / "golden"
    assert main(["golden", "--pack", str(synthetic_pack), "--audio", str(synthetic_pack / "audio.wav"),
                 "--models", str(tiny_models_dir), "--frames", "5", "--out", str(out)]) == 0
    return out


def test_a_golden_stands_for_its_audios_reference(tmp_path, synthetic_pack, tiny_models_dir, cache, calls, golden):
    with_golden = run(golden_config(tmp_path, synthetic_pack, tiny_models_dir, golden))
    assert calls == [1], "only the audio without a golden (silence) is computed"
    silence, speech = with_golden["reference"]
    assert speech["golden"] == str(golden) and speech["key"] is None and not speech["cached"]
    assert speech["libraries_changed"] == []
    assert "golden" not in silence and silence["key"]
    computed = run(config(tmp_path, synthetic_pack, tiny_models_dir, run="cache = false"))
    assert calls == [1, 1]
    got = [r for r in with_golden["runs"] if r["audio"] == "audio.wav"][0]
    assert (got["status"], got["summary"]) == summaries(computed)[0]
    assert got["summary"]["full"]["identical_pct"]["min"] == 100.0  # the candidate matches the golden exactly
    assert got["features"].keys() == {"mel", "embeddings", "padded_features"}  # the stages a golden holds
    assert all(f["max_abs"] == 0.0 for f in got["features"].values())


@pytest.mark.parametrize("change, message", [
    ("frames", "it holds 5 frames and the run needs 6"),
    ("models", "it was recorded with other models"),
    ("png", "missing or changed since the golden was recorded"),
])
def test_a_golden_that_cannot_stand_for_the_reference_is_named(tmp_path, synthetic_pack, tiny_models_dir, golden,
                                                                 capsys, change, message):
    frames, models = 4, tiny_models_dir
    if change == "frames":
        frames = 6
    elif change == "models":
        from fixtures.models import build_models
        build_models(tmp_path / "other-models", "tiny", seed=1)
        models = tmp_path / "other-models"
    else:
        (golden / "frames" / "frame_00002.png").write_bytes(b"not a png")
    path = golden_config(tmp_path, synthetic_pack, models, golden, frames)
    assert main(["run", "--config", str(path), "--quiet", "--no-explain"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(golden) in err


def test_a_golden_recorded_with_other_libraries_is_named_in_the_results_and_the_console(
        tmp_path, synthetic_pack, tiny_models_dir, cache, golden, capsys):
    manifest_path = golden / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    installed = manifest["libraries"]["numpy"]
    manifest["libraries"]["numpy"] = "1.0.0"
    manifest_path.write_text(json.dumps(manifest))
    path = golden_config(tmp_path, synthetic_pack, tiny_models_dir, golden)
    assert main(["run", "--config", str(path), "--quiet", "--no-explain"]) in (0, 1)
    speech = read_results(tmp_path / "out" / "results.json")["reference"][1]
    assert speech["libraries_changed"] == [f"numpy 1.0.0 -> {installed}"]
    out = capsys.readouterr().out
    assert (f"note: the golden {golden} stood for the reference of audio.wav and was recorded with other libraries "
            f"(numpy 1.0.0 -> {installed}); `synctalk-parity check-golden {golden}`") in out
