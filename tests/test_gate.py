"""The gate on hand-made results: each kind of regression and improvement named with before and after,
like with like (or exit 2 saying why not), the pull-request text and the markdown table, a branch's
latest run from the store as the baseline."""
from __future__ import annotations

import math
import re
from pathlib import Path

import history_docs as docs
import pytest

from harness.cli import main
from harness.history.gate import GateSettings, compare
from harness.history.snapshot import snapshots

REPEATING = GateSettings(noise=0.0)  # a machine whose runs repeat: one run a side is gated past the minimum effect


def _gate(before: list[dict], after: list[dict], settings: GateSettings = REPEATING, **kwargs):
    return compare(snapshots(docs.results(before)), snapshots(docs.results(after, created="2025-01-02T00:00:00+00:00",
                                                                             **kwargs)), settings)


def _repeats(medians: list[float], seed: int, day: int) -> list[dict]:
    """Snapshots of one backend's runs, one per median (ms), started one after the other on `day`."""
    return [s for k, m in enumerate(medians) for s in snapshots(docs.results(
        [docs.run(frame_ms=docs.latencies(m, seed=seed + k))], created=f"2025-01-{day:02d}T00:00:{k:02d}+00:00"))]


def test_the_same_run_again_is_no_change():
    result = _gate([docs.run(), docs.run("fp16")], [docs.run(), docs.run("fp16")])
    assert result.exit_code == 0 and result.changes == [] and result.pairs == 2
    # per run: verdict, worst PSNR, identical %, two stages, the bill, speed
    assert result.comparisons == 2 * 7 and result.text("base.json").endswith("\n14 comparisons, no change")


def test_a_ten_percent_slowdown_is_a_regression_with_its_interval():
    result = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1))], [docs.run(frame_ms=docs.latencies(77.0, seed=2))])
    assert result.exit_code == 1
    (found,) = result.regressions
    assert found.check == "speed" and re.fullmatch(r"7\d\.\d ms", found.before) and found.after.endswith(" ms")
    assert "median frame latency +" in found.detail and "99 % CI +" in found.detail
    line = result.text("base.json").splitlines()[1]
    assert line.startswith("REGRESSION: ort_cpu / talk.wav: speed: ") and "ms -> " in line


def test_a_small_or_unsupported_change_of_speed_is_no_regression():
    small = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1))], [docs.run(frame_ms=docs.latencies(71.5, seed=2))])
    assert small.exit_code == 0 and small.changes == []
    noisy = _gate([docs.run(frame_ms=docs.latencies(70.0, n=12, seed=1, sigma=0.4))],
                  [docs.run(frame_ms=docs.latencies(80.0, n=12, seed=2, sigma=0.4))])
    assert noisy.exit_code == 0 and noisy.changes == []  # 14 % slower by the medians, but 8 frames of noise
    faster = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1))], [docs.run(frame_ms=docs.latencies(60.0, seed=2))])
    assert faster.exit_code == 0 and [f.check for f in faster.improvements] == ["speed"]


@pytest.mark.parametrize("before, after, regression", [(50.0, 49.4, True), (50.0, 49.6, None), (math.inf, 60.0, True),
                                                      (48.0, 49.0, False), (math.inf, math.inf, None)])
def test_worst_psnr_counts_past_half_a_db(before, after, regression):
    result = _gate([docs.run(psnr=before, identical=90.0)], [docs.run(psnr=after, identical=90.0)])
    found = [f for f in result.changes if f.check == "worst PSNR"]
    if regression is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].regression is regression
        assert found[0].before.endswith(" dB") and ("inf" in found[0].before) == math.isinf(before)


def test_identical_share_any_fall_and_a_rise():
    fell = _gate([docs.run(psnr=60.0, identical=99.5)], [docs.run(psnr=60.0, identical=99.49)])
    assert fell.exit_code == 1 and fell.regressions[0].check == "identical %"
    assert (fell.regressions[0].before, fell.regressions[0].after) == ("99.5000", "99.4900")
    rose = _gate([docs.run(psnr=60.0, identical=99.4)], [docs.run(psnr=60.0, identical=99.5)])
    assert rose.exit_code == 0 and rose.improvements[0].check == "identical %"
    tolerant = compare(snapshots(docs.results([docs.run(psnr=60.0, identical=99.5)])),
                       snapshots(docs.results([docs.run(psnr=60.0, identical=99.49)], created="x")),
                       GateSettings(identical_drop_pct=0.05))
    assert tolerant.exit_code == 0


def test_a_verdict_that_got_worse_names_what_failed():
    result = _gate([docs.run()], [docs.run(status="failed", psnr=40.0, identical=80.0)])
    verdict = next(f for f in result.regressions if f.check == "verdict")
    assert (verdict.before, verdict.after) == ("passed", "failed") and "PSNR 40.00 dB on frame 2 < 45 dB" in verdict.detail
    crashed = _gate([docs.run()], [{"backend": "ort_cpu", "kind": "onnxruntime", "audio": "talk.wav", "status": "error",
                                    "failures": [], "frames": 0, "reason": "port exited with code 3",
                                    "options": {"provider": "cpu"}}])
    assert crashed.exit_code == 1 and crashed.regressions[0].detail == "port exited with code 3"
    fixed = _gate([docs.run(status="failed", psnr=40.0)], [docs.run()])
    assert fixed.exit_code == 0 and {f.check for f in fixed.improvements} >= {"verdict", "worst PSNR"}


def test_a_stage_drifting_past_its_tolerance():
    result = _gate([docs.run(features={"mel": {"max_abs": 5e-5}, "embeddings": {"max_abs": 0.0}})],
                   [docs.run(features={"mel": {"max_abs": 2e-4}, "embeddings": {"error": "shape (3, 7) differs"}})])
    found = {f.check: f for f in result.regressions}
    assert found["stage mel feature drift"].before == "max abs 5e-05"
    assert found["stage mel feature drift"].after == "max abs 0.0002"
    assert found["stage embeddings feature drift"].after == "shape (3, 7) differs"
    within = _gate([docs.run(features={"mel": {"max_abs": 1e-6}})], [docs.run(features={"mel": {"max_abs": 9e-5}})])
    assert within.changes == []  # grew, but within the tolerance


def test_the_bill_gaining_changing_or_losing_a_deviation():
    gained = _gate([docs.run()], [docs.run(status="failed", psnr=38.0, bill=[("resize_kernel", "bilinear", 7.25)])])
    bill = next(f for f in gained.regressions if f.check == "bill of deviations")
    assert (bill.before, bill.after) == ("canonical", "resize_kernel=bilinear")
    assert bill.detail == "gained resize_kernel=bilinear (weight 7.25 dB)"
    two = [("output", "jpeg95", 3.0), ("stft_framing", "none", 1.0)]
    changed = _gate([docs.run(status="failed", psnr=38.0, bill=two)],
                    [docs.run(status="failed", psnr=38.0, bill=[("output", "jpeg90", 3.5), two[1]])])
    assert [f.detail for f in changed.regressions] == ["gained output=jpeg90 (weight 3.50 dB)"]
    lost = _gate([docs.run(status="failed", psnr=38.0, bill=two)], [docs.run(status="failed", psnr=38.0, bill=two[1:])])
    assert lost.exit_code == 0 and lost.improvements[0].detail == "lost output=jpeg95"
    unknown = _gate([docs.run(status="failed", psnr=38.0, bill=two)], [docs.run(status="failed", psnr=38.0)])
    assert unknown.exit_code == 0 and any("bill of deviations not compared" in n for n in unknown.note_lines())


def test_regressions_come_first_then_improvements_then_the_rest():
    result = _gate([docs.run("ort_cpu", psnr=50.0, identical=95.0), docs.run("fp16", psnr=50.0, identical=95.0)],
                   [docs.run("ort_cpu", psnr=52.0, identical=95.0), docs.run("fp16", psnr=48.0, identical=94.0)])
    lines = result.text("base.json").splitlines()
    assert lines[0] == "gate against base.json: 2 regression(s), 1 improvement(s) in 2 run(s)"
    assert [line.split(":")[0] for line in lines[1:4]] == ["REGRESSION", "REGRESSION", "improvement"]
    assert lines[4] == f"{result.comparisons - 3} comparisons, no change"
    markdown = result.markdown("base.json")
    assert "| regression | fp16 | talk.wav | worst PSNR | 50.00 dB | 48.00 dB |" in markdown
    assert "| improvement | ort_cpu | talk.wav | worst PSNR | 50.00 dB | 52.00 dB |" in markdown


def test_unlike_runs_are_not_compared_and_say_why():
    other = dict(docs.MACHINE, libraries={"numpy": "2.0.0", "onnxruntime": "1.21.0"})
    machine = _gate([docs.run()], [docs.run()], machine=other)
    assert machine.exit_code == 2 and machine.pairs == 0
    assert "other machine" in machine.not_compared[0] and "onnxruntime 1.20.0 -> 1.21.0" in machine.not_compared[0]
    audio = _gate([docs.run()], [docs.run(audio="silence_3s.wav")])
    assert audio.exit_code == 2 and audio.not_compared == ["ort_cpu / silence_3s.wav: no baseline run of it"]
    assert audio.note_lines() == ["ort_cpu / talk.wav: in the baseline only"]
    options = _gate([docs.run()], [docs.run(options={"provider": "cpu", "intra_op_threads": 1})])
    assert options.exit_code == 2 and "backend options differ" in options.not_compared[0]
    inputs = _gate([docs.run()], [docs.run()], inputs=dict(docs.INPUTS, frames=80))
    assert inputs.exit_code == 2 and "other inputs" in inputs.not_compared[0]
    some = _gate([docs.run(), docs.run("fp16")], [docs.run(), docs.run("openvino")])
    assert some.exit_code == 0 and some.pairs == 1 and "openvino / talk.wav: no baseline run of it" in some.not_compared


def test_a_baseline_without_per_frame_latencies_is_compared_on_parity_only():
    old = docs.run()
    del old["timings"]["frame_ms"]
    result = _gate([old], [docs.run()])
    assert result.exit_code == 0 and result.pairs == 1
    assert any("speed not compared: the baseline has under" in note for note in result.note_lines())


def test_bench_records_are_gated_on_their_measured_frames():
    def bench(median: float, seed: int) -> dict:
        doc = docs.results([{"backend": "ort_cpu", "kind": "onnxruntime", "audio": "talk.wav", "status": "passed",
                             "failures": [], "frames": 30, "options": {},
                             "bench": {"x_bare": 0.9, "frame_latency_ms": [docs.latencies(median, 30, seed)[4:]] * 2},
                             "timings": {"fps": 14.0, "steady_fps": 14.0}}], created=f"2025-01-0{seed}")
        doc["bench"] = {"points": []}
        return doc
    snap = snapshots(bench(70.0, 1))[0]
    assert snap.mode == "bench" and len(snap.speed["frame_ms"]) == 52 and snap.speed["x_bare"] == 0.9
    assert compare(snapshots(bench(70.0, 1)), snapshots(bench(80.0, 2)), REPEATING).regressions[0].check == "speed"
    parity = compare(snapshots(docs.results([docs.run()])), snapshots(bench(70.0, 2)))
    assert parity.exit_code == 2  # a bench run is not compared with a parity run


def test_the_command_against_a_file_and_against_a_branch_of_the_store(tmp_path, capsys):
    store = str(tmp_path / "history.sqlite")
    old = docs.write(tmp_path / "old.json", [docs.run(frame_ms=docs.latencies(90.0, seed=1))],
                     created="2025-01-01T00:00:00+00:00")
    base = docs.write(tmp_path / "base.json", [docs.run(frame_ms=docs.latencies(70.0, seed=1))],
                      created="2025-01-02T00:00:00+00:00")
    other = docs.write(tmp_path / "other.json", [docs.run(frame_ms=docs.latencies(50.0, seed=1))],
                       created="2025-01-03T00:00:00+00:00")
    for path, commit, branch in ((old, "a" * 40, "main"), (base, "b" * 40, "main"), (other, "c" * 40, "feature")):
        assert main(["history", "add", str(path), "--store", store, "--commit", commit, "--branch", branch]) == 0
    new = docs.write(tmp_path / "new.json", [docs.run(frame_ms=docs.latencies(77.0, seed=2))],
                     created="2025-01-04T00:00:00+00:00")
    capsys.readouterr()
    markdown = tmp_path / "summary.md"
    assert main(["gate", str(new), "--against", "branch:main", "--store", store, "--markdown", str(markdown),
                 "--noise", "0"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"gate against branch main (bbbbbbbbbbbb) in {store}: 1 regression(s)")  # the latest on main
    assert re.search(r"REGRESSION: ort_cpu / talk.wav: speed: 70\.\d ms -> 77\.\d ms \(median frame latency \+", out)
    assert re.search(r"\| regression \| ort_cpu \| talk.wav \| speed \| 70\.\d ms \| 77\.\d ms \|", markdown.read_text())
    assert main(["gate", str(new), "--against", str(base), "--min-effect", "0.2"]) == 0
    assert main(["gate", str(new), "--against", str(old), "--noise", "0"]) == 0  # 90 -> 77 ms: an improvement
    assert "improvement: ort_cpu / talk.wav: speed" in capsys.readouterr().out
    elsewhere = docs.write(tmp_path / "elsewhere.json", [docs.run()], created="2025-01-05",
                           machine=dict(docs.MACHINE, cpu="Other CPU"))
    assert main(["gate", str(elsewhere), "--against", "branch:main", "--store", store]) == 2
    out = capsys.readouterr().out
    assert "nothing to compare" in out and "no parity run on branch main with this machine's fingerprint" in out
    assert main(["gate", str(new), "--against", str(tmp_path / "missing.json")]) == 2
    assert "baseline not found" in capsys.readouterr().err
    assert main(["gate", str(new), "--against", "branch:", "--store", store]) == 2


def test_speed_is_not_compared_while_the_machine_was_busy_with_other_work():
    slow = docs.latencies(90.0, seed=2)
    busy = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1))], [docs.run(frame_ms=slow, background=0.55)])
    assert busy.exit_code == 0 and busy.changes == []
    assert busy.note_lines() == ["ort_cpu / talk.wav: speed not compared: the machine was busy with other work (other "
                          "processes used 2 % during the baseline, 55 % during this run; speed is compared up to 10 %, "
                          "--max-background)"]
    quiet = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1))], [docs.run(frame_ms=slow, background=0.08)])
    assert quiet.exit_code == 1 and not any("busy" in note for note in quiet.note_lines())
    unknown = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1), background=None)], [docs.run(frame_ms=slow)])
    assert unknown.exit_code == 1 and "how busy the machine was during the baseline is unknown" in unknown.note_lines()[0]
    assert unknown.regressions[0].caveat == "how busy the machine was during the baseline is unknown"
    half = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1), background=None)],
                 [docs.run(frame_ms=slow, background=0.4)])  # one run known busy: not compared, whatever the other
    assert half.exit_code == 0 and "used 40 % during this run; speed is compared up to 10 %" in half.note_lines()[0]
    assert unknown.regressions[0].text().endswith("frames); how busy the machine was during the baseline is unknown)")
    allowed = compare(snapshots(docs.results([docs.run(frame_ms=docs.latencies(70.0, seed=1))])),
                      snapshots(docs.results([docs.run(frame_ms=slow, background=0.55)], created="x")),
                      GateSettings(max_background=0.6, noise=0.0))
    assert allowed.exit_code == 1


def test_the_history_page_of_the_docs_states_the_gates_defaults():
    from harness.history.stats import MIN_FRAMES
    from harness.history.store import BUSY_TIMEOUT_S
    text = " ".join((Path(__file__).resolve().parents[1] / "docs" / "history.md").read_text().split())
    d = GateSettings()
    for phrase in (f"`--psnr-drop` (default {d.psnr_drop_db:g} dB", f"`--identical-drop` points (default {d.identical_drop_pct:g}",
                   f"`--alpha` (default {d.alpha:g})", f"`--min-effect` (default {d.min_effect:g}",
                   f"`--max-background` (default {d.max_background:.2f})", f"Fewer than {MIN_FRAMES} steady frames",
                   f"busy timeout of {BUSY_TIMEOUT_S:g} s"):
        assert phrase in text, phrase


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="not on this platform: /proc/stat is Linux's")
def test_the_background_probe_counts_other_processes_and_not_the_runs_own():
    """A process that is not ours (not waited for) burning a core shows as background; a child we wait for
    is the run's own (a port), and its CPU time is taken off."""
    import subprocess
    import sys
    import time

    from harness.system.procfs import BackgroundProbe, _own_seconds
    probe = BackgroundProbe()
    other = subprocess.Popen([sys.executable, "-c", BURN.format(s=1.5)])
    time.sleep(1.5)
    share = probe.share()
    other.wait()
    assert share is not None and share >= 0.3  # one busy core of two: 0.5, more when the machine is loaded
    own = _own_seconds()
    probe = BackgroundProbe()
    subprocess.run([sys.executable, "-c", BURN.format(s=1.0)], check=True)
    assert _own_seconds() - own >= 0.9 and probe.share() is not None


def test_a_change_within_the_run_to_run_noise_does_not_count():
    from harness.history.gate import pair_key
    from harness.history.stats import run_noise
    assert run_noise([70.0, 77.0]) is None and run_noise([70.0, 77.0, 73.5]) == pytest.approx(0.1)
    assert run_noise([100.0] + [70.0, 71.0, 72.0] * 4) == pytest.approx(72 / 70 - 1)  # the 10 latest only
    before = snapshots(docs.results([docs.run(frame_ms=docs.latencies(70.0, seed=1))]))
    after = snapshots(docs.results([docs.run(frame_ms=docs.latencies(77.0, seed=2))], created="x"))
    unknown = compare(before, after)
    assert unknown.exit_code == 0 and unknown.changes == []  # one run a side: +10 % is a note, not a regression
    assert any("run-to-run noise is unknown" in note for note in unknown.note_lines())
    assert any(note.startswith("ort_cpu / talk.wav: speed not gated: median frame latency +") for note in unknown.note_lines())
    noisy = compare(before, after, noise={pair_key(after[0]): (0.15, 6)})
    assert noisy.exit_code == 0 and noisy.changes == [] and noisy.note_lines() == []
    quiet = compare(before, after, noise={pair_key(after[0]): (0.06, 6)})
    assert quiet.exit_code == 1 and quiet.regressions[0].detail.endswith("; past the run-to-run noise of 6.0 % over 6 "
                                                                         "runs of the baseline's branch")
    given = compare(before, after, GateSettings(noise=0.2))
    assert given.exit_code == 0 and given.note_lines() == []


def test_the_noise_comes_from_the_branchs_quiet_runs(tmp_path, capsys):
    store = str(tmp_path / "history.sqlite")
    runs = [(70.0, 0.02), (80.0, 0.02), (140.0, 0.6), (74.0, 0.02), (71.0, 0.02)]  # the third on a busy machine
    for k, (median, background) in enumerate(runs):
        path = docs.write(tmp_path / f"main{k}.json", [docs.run(frame_ms=docs.latencies(median, seed=k),
                                                                background=background)],
                          created=f"2025-01-0{k + 1}T00:00:00+00:00")
        assert main(["history", "add", str(path), "--store", store, "--commit", f"{k}" * 40, "--branch", "main"]) == 0
    capsys.readouterr()
    within = docs.write(tmp_path / "within.json", [docs.run(frame_ms=docs.latencies(79.0, seed=7))], created="2025-02")
    assert main(["gate", str(within), "--against", "branch:main", "--store", store]) == 0  # 71 -> 79 ms: +11 %
    out = capsys.readouterr().out
    assert "0 regression(s)" in out and "noise is unknown" not in out
    assert main(["gate", str(within), "--against", str(tmp_path / "main4.json")]) == 0  # one run: noise unknown
    assert "run-to-run noise is unknown" in capsys.readouterr().out
    assert main(["gate", str(within), "--against", str(tmp_path / "main4.json"), "--noise", "0"]) == 1
    past = docs.write(tmp_path / "past.json", [docs.run(frame_ms=docs.latencies(90.0, seed=8))], created="2025-02")
    assert main(["gate", str(past), "--against", "branch:main", "--store", store]) == 1
    # the busy run is left out of the noise: 4 runs, about 80 / 70 - 1 apart
    assert re.search(r"; past the run-to-run noise of 1[3-7]\.\d % over 4 runs of the baseline's branch\)",
                     capsys.readouterr().out)


def test_repeated_runs_are_judged_on_their_medians():
    """Five runs a side: the run-to-run noise is in the samples (each run's median latency), so runs that
    move by 8 % from one to the next are no change, and a 10 % slowdown of every run is."""
    aa = compare(_repeats([70, 76, 71, 74, 69], 0, 1), _repeats([75, 70, 73, 69, 76], 10, 2))
    assert aa.exit_code == 0 and aa.changes == [] and not any("noise is unknown" in n for n in aa.note_lines())
    slower = compare(_repeats([70, 72, 71, 73, 69], 0, 1), _repeats([78, 79, 77, 80, 78.5], 10, 2))
    assert slower.exit_code == 1
    (found,) = slower.regressions
    assert found.check == "speed" and re.fullmatch(r"7[12]\.\d ms", found.before) and found.after.startswith("78.")
    assert re.search(r"median frame latency \+\d+\.\d % \(99 % CI \+\d+\.\d % \.\. \+1\d\.\d %, p = 0\.0079; "
                     r"7[12]\.\d -> 78\.\d ms, 5 and 5 runs \(their median latencies\)\)", found.detail), found.detail
    # parity on the latest run of each side; a busy run is left out and four quiet runs are too few
    busy = _repeats([70, 72, 71, 73], 0, 1) + snapshots(docs.results(
        [docs.run(frame_ms=docs.latencies(71, seed=9), background=0.5)], created="2025-01-01T00:01:00+00:00"))
    four = compare(busy, _repeats([78, 79, 77, 80, 78.5], 10, 2))
    assert four.exit_code == 0 and any("fewer than 5 quiet runs a side (4 and 5)" in n for n in four.note_lines())


def test_repeats_of_unlike_runs_are_not_compared():
    other = snapshots(docs.results([docs.run(frame_ms=docs.latencies(70, seed=3))], created="2025-01-01T00:09:00",
                                   machine=dict(docs.MACHINE, cpu="Other CPU")))
    result = compare(_repeats([70, 72, 71, 73, 69], 0, 1) + other, _repeats([78, 79, 77, 80, 78.5], 10, 2))
    assert result.exit_code == 2 and result.not_compared[0].startswith("ort_cpu / talk.wav: other machine")


def test_notes_are_typed_changes_their_lines_as_before():
    """A note is a Change of kind "note" with its reason, so no caller reads the gate's words; its line is
    the one the message prints."""
    slow = docs.latencies(90.0, seed=2)
    busy = _gate([docs.run(frame_ms=docs.latencies(70.0, seed=1))], [docs.run(frame_ms=slow, background=0.55)])
    (note,) = busy.notes
    assert (note.kind, note.reason, note.backend, note.audio, note.check) == ("note", "busy", "ort_cpu", "talk.wav",
                                                                              "speed")
    assert not note.regression and f"note: {note.text()}" in busy.text("base.json").splitlines()
    ungated = compare(snapshots(docs.results([docs.run(frame_ms=docs.latencies(70.0, seed=1))])),
                      snapshots(docs.results([docs.run(frame_ms=slow)], created="x")))
    assert [(n.reason, n.backend) for n in ungated.notes] == [("noise unknown", ""), ("not gated", "ort_cpu")]
    assert ungated.notes[1].before.startswith("7") and ungated.notes[1].after.startswith("9")
    assert ungated.note_lines()[0].startswith("speed: the run-to-run noise is unknown")
