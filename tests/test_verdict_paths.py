"""Verdict paths pinned at their bounds: the results.json version, and the audio-dependence threshold."""
from __future__ import annotations

import json

import numpy as np
import pytest

from harness.diagnosis.audio import (
    IGNORES_BELOW,
    MIN_REFERENCE_CHANGE,
    audio_dependence,
)
from harness.verdicts import results
from harness.verdicts.results import new_results, read_results, write_results
from reference.errors import InputError


def test_results_json_carries_the_schemas_current_version(tmp_path):
    assert results.VERSION == 2  # bumped with the schema: 2 added findings and missing_frames
    doc = new_results({"name": "m", "os": "o", "cpu": "c", "python": "3", "libraries": {}},
                      {"source": {"path": "p", "kind": "pack", "sha256": "0"},
                       "models": {"audio_encoder": "0", "generator": "0"}, "audio": [{"name": "a", "sha256": "0"}]},
                      "desktop", {})
    path = write_results(doc, tmp_path / "results.json")
    assert json.loads(path.read_text())["version"] == 2
    assert read_results(path)["version"] == 2


@pytest.mark.parametrize("version", [1, 3, "2", None])
def test_any_other_version_is_refused_by_name(tmp_path, version):
    doc = new_results({"name": "m", "os": "o", "cpu": "c", "python": "3", "libraries": {}},
                      {"source": {"path": "p", "kind": "pack", "sha256": "0"},
                       "models": {"audio_encoder": "0", "generator": "0"}, "audio": [{"name": "a", "sha256": "0"}]},
                      "desktop", {})
    path = write_results(doc, tmp_path / "results.json")
    edited = json.loads(path.read_text()) | {"version": version}
    path.write_text(json.dumps(edited))
    with pytest.raises(InputError, match=rf"is results.json version {version!r}; this synctalk-parity reads version 2"):
        read_results(path)


def _mouths(level: float, frames: int = 10) -> np.ndarray:
    return np.full((frames, 32, 32), level, np.float32)


@pytest.mark.parametrize("ratio, ignores", [(IGNORES_BELOW * 0.99, True), (IGNORES_BELOW * 1.01, False)])
def test_audio_dependence_at_its_threshold(ratio, ignores):
    """The reference's mouth changes by 10 grey levels between the audios; the candidate's by just under or
    just over a tenth of that."""
    reference = {"speech": _mouths(100.0), "silence": _mouths(110.0)}
    candidate = {"speech": _mouths(100.0), "silence": _mouths(100.0 + 10.0 * ratio)}
    found = audio_dependence(candidate, reference)
    assert found["pairs"][0]["ratio"] == pytest.approx(ratio, rel=1e-4)  # float32 thumbnails
    assert found["ignores_input_audio"] is ignores
    assert ("text" in found) is ignores


def test_audio_dependence_needs_a_reference_that_moves():
    still = MIN_REFERENCE_CHANGE * 0.99
    found = audio_dependence({"speech": _mouths(100.0), "silence": _mouths(100.0)},
                             {"speech": _mouths(100.0), "silence": _mouths(100.0 + still)})
    assert found["ignores_input_audio"] is False
