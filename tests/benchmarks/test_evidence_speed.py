"""Image evidence speed: `pytest --benchmark tests/benchmarks/test_evidence_speed.py`.

250 pairs of 1280x720 frames of the real Sanders pack: the reference's (PNG, tiny synthetic models, so
that making them is quick) and a port's (JPEG q90 by Pillow, pasted with nearest-neighbour and with an
audio lag of 2), given to the image evidence (two threads, as `compare` runs it), decoding of the
frames included. The target is at most 15 s for the 250 pairs on a 2-core machine; the time to
decode the frames alone, measured in the same run, is reported beside it.
"""
from __future__ import annotations

import time

import pytest
import travelled

from fixtures.models import build_models
from harness.diagnosis.evidence import codec
from harness.diagnosis.evidence.collect import Evidence, observe_all
from harness.diagnosis.evidence.findings import findings
from reference.conventions import Conventions
from reference.data import open_source, read_image

PAIRS = 250
EVIDENCE_MAX_S = 15.0


@pytest.fixture(scope="module")
def folders(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("evidence-speed")
    pack, audio = shared_data / "sanders_pack", shared_data / "audio" / "talk_hb.wav"
    build_models(root / "models", "tiny", seed=0)
    travelled.make_folder(pack, audio, root / "models", root / "reference", PAIRS)
    travelled.make_folder(pack, audio, root / "models", root / "port", PAIRS,
                          Conventions(resize_kernel="nearest", audio_offset=2), fmt="jpg", quality=90, encoder="pil")
    return pack, root / "reference", root / "port"


def _pairs(ref, port) -> list:
    return [(i, lambda p=path: read_image(p), lambda p=port / (path.stem + ".jpg"): read_image(p))
            for i, path in enumerate(sorted(ref.glob("frame_*.png")))]


def test_evidence_of_250_pairs_of_720p_frames(benchmark, folders, capsys):
    pack, ref, port = folders
    pairs = _pairs(ref, port)
    assert len(pairs) == PAIRS
    source = open_source(pack)
    started = time.perf_counter()
    for _, load_a, load_b in pairs:
        load_a(), load_b()
    decode = time.perf_counter() - started

    def gather() -> list:
        ev = Evidence(source, PAIRS, codec.settings(ref / "frame_00001.png"), codec.settings(port / "frame_00001.jpg"))
        observe_all(ev, pairs)
        return findings(ev, [], [], PAIRS)

    started = time.perf_counter()
    found = benchmark.pedantic(gather, rounds=1, iterations=1)
    evidence = time.perf_counter() - started
    benchmark.extra_info.update(pairs=PAIRS, decode_s=round(decode, 2), evidence_s=round(evidence, 2),
                                over_decode=round(evidence / decode, 2))
    with capsys.disabled():
        print(f"\n{PAIRS} pairs of 1280x720: the evidence (decoding included) {evidence:.1f} s, decoding alone "
              f"{decode:.1f} s ({evidence / decode:.1f}x); target <= {EVIDENCE_MAX_S:g} s; found "
              + ", ".join(f.kind for f in found))
    assert {"resize_kernel", "jpeg", "audio_drive"} <= {f.kind for f in found}
    assert evidence <= EVIDENCE_MAX_S
