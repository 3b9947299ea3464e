"""Video evidence speed: `pytest --benchmark tests/benchmarks/test_video_speed.py -n 0`.

The two real videos of ../shared/data/travelled/videos (the Python and the Swift/Core ML ports, 250
frames each, 1280x720 H.264 High, x264 CRF 20, AAC) compared by `compare` with the Sanders pack:
both decoded by presentation time, every pair measured and observed, the codec round trip and the
sound cross-correlated. The target is at most 25 s on a 2-core machine. The findings must tell the
truth: no timing or sound finding (both are 25 fps from 0 s, their sound at no offset), the codec
named.
"""
from __future__ import annotations

import json
import time

from harness.runs.compare import compare_folders

PAIRS = 250
VIDEO_MAX_S = 25.0


def test_evidence_of_two_250_frame_720p_videos(benchmark, shared_data, tmp_path, capsys):
    videos = shared_data / "travelled" / "videos"
    out = tmp_path / "compare.json"

    def run() -> int:
        return compare_folders(videos / "python.mp4", videos / "swift_fixed.mp4", pack=shared_data / "sanders_pack",
                               json_out=out)

    started = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    took = time.perf_counter() - started
    doc = json.loads(out.read_text())
    kinds = [f["kind"] for f in doc["findings"]]
    benchmark.extra_info.update(pairs=len(doc["pairs"]), seconds=round(took, 2), findings=kinds)
    with capsys.disabled():
        print(f"\ntwo videos of {PAIRS} 1280x720 frames: decoded and explained in {took:.1f} s "
              f"(target <= {VIDEO_MAX_S:g} s); found {', '.join(kinds)}")
    assert len(doc["pairs"]) == PAIRS
    assert "video_codec" in kinds and not {"frame_timing", "av_offset", "missing_frames"} & set(kinds)
    assert took <= VIDEO_MAX_S
