"""The bench runner: structure of its results (never wall-clock speed), [bench] settings, skips and errors."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import harness.runs.config
from harness.bench.baseline import bare_generator, ways_for
from harness.bench.cli import bench_main
from harness.bench.settings import bench_settings, parse_int_list
from harness.bench.sweep import run_bench
from harness.bench.table import bench_table
from harness.runs.config import ConfigError, load_config
from harness.verdicts.results import read_results

FAKE_PORTS = Path(__file__).parent / "fake_ports"
LINUX = sys.platform.startswith("linux")

BASE = """
[data]
pack = "{pack}"
models = "{models}"
audio = ["{pack}/audio.wav", "silence"]
frames = 4
[run]
output = "{out}"
"""
BACKENDS = f"""
[backends.ort_cpu]
kind = "onnxruntime"
provider = "cpu"
[backends.coreml]
kind = "onnxruntime"
provider = "coreml"
[backends.port]
kind = "subprocess"
command = ["{sys.executable}", "{FAKE_PORTS / 'copy_port.py'}", "--sanders", "{{pack}}", "--audio", "{{audio}}", "--output", "{{output}}", "--frames", "{{frames}}"]
[backends.elsewhere]
kind = "frames"
dir = "made-elsewhere/{{audio}}"
"""


def write_config(tmp_path: Path, pack: Path, models: Path, backends: str, extra: str = "") -> Path:
    path = tmp_path / "parity.toml"
    path.write_text(BASE.format(pack=pack, models=models, out=tmp_path / "out") + extra + backends)
    return path


@pytest.fixture
def bench_section(monkeypatch):
    """Until harness/runs/config.py lists [bench] in its sections, let load_config accept it."""
    monkeypatch.setattr(harness.runs.config, "SECTIONS", set(harness.runs.config.SECTIONS) | {"bench"})


@pytest.fixture(scope="module")
def bench(tmp_path_factory, synthetic_pack, tiny_models_dir):
    tmp = tmp_path_factory.mktemp("bench")
    cfg = load_config(write_config(tmp, synthetic_pack, tiny_models_dir, BACKENDS))
    results = run_bench(cfg, warmup=2, repeats=1, threads=[1, 2], frames_sweep=[3, 5], progress=False,
                        results_path=tmp / "out" / "bench.json")
    return results, tmp / "out" / "bench.json"


def _records(results: dict, backend: str) -> list[dict]:
    return [r for r in results["runs"] if r["backend"] == backend]


def test_bench_measures_every_backend_at_every_sweep_point(bench):
    results, path = bench
    points = results["bench"]["points"]
    assert [(p["threads"], p["frames"]) for p in points] == [(1, 3), (1, 5), (2, 3), (2, 5)]
    assert results["bench"]["warmup"] == 2 and results["bench"]["audio"] == "audio.wav"
    assert not results["partial"]
    # the config lists no reference: a canonical one is added and is the ratio's denominator; frames made
    # elsewhere are not timed
    assert {r["backend"] for r in results["runs"]} == {"reference", "ort_cpu", "coreml", "port"}
    assert results["bench"]["not_timed"] == ["elsewhere"]
    assert len(results["runs"]) == 16
    for point in points:
        t, n = point["threads"], point["frames"]
        assert point["reference"] == "reference" and point["reference_added"]
        bare = point["bare"][str(t)]
        assert bare["threads"] == t and bare["frames"] == n and bare["fps"] > 0
        assert 0 < bare["p50_ms"] <= bare["p99_ms"] <= bare["max_ms"]
        assert [w["way"] for w in bare["ways"]] == [w[0] for w in ways_for(t)]  # every way, the fastest named
        assert all(w["frames"] == n and w["fps"] > 0 and w["error"] is None for w in bare["ways"])
        assert bare["fps"] == max(w["fps"] for w in bare["ways"]) and bare["way"] in [w["way"] for w in bare["ways"]]
        here = [r for r in results["runs"] if r["bench"]["point"] == {"threads": t, "frames": n}]
        assert [r["backend"] for r in here] == ["reference", "ort_cpu", "coreml", "port"]
        for record in here:
            if record["backend"] == "coreml":
                continue
            b = record["bench"]
            assert record["status"] == "passed", record.get("reason")
            assert record["frames"] == n and b["frames"] == n and b["warmup"] == 2
            assert b["fps"] > 0 and b["x_bare"] > 0 and b["x_reference"] > 0
            if record["kind"] == "subprocess":  # a port: the sequential baseline of the sweep point
                assert b["bare_fps"] == bare["fps"] and "bare_interleaved_fps" not in b
                assert b["bare_way"] == bare["way"]
            else:  # in-process: bare-generator blocks alternate with the backend's frames
                assert b["bare_fps"] == b["bare_interleaved_fps"] > 0
                ways = b["bare_interleaved_ways"]
                assert [w["way"] for w in ways] == [w[0] for w in ways_for(t)]
                assert b["bare_fps"] == max(w["fps"] for w in ways) and b["bare_way"] == b["bare_interleaved_way"]
                assert b["x_bare"] == pytest.approx(b["fps"] / b["bare_fps"])
            assert b["reference_fps"] == point["reference_fps"]
            assert record["timings"]["fps"] == b["fps"]
            if LINUX:
                assert b["peak_rss_mb"] > 0
            assert b["cpu_util"] is None or b["cpu_util"] >= 0
        ref, ort = here[0]["bench"], here[1]["bench"]
        assert ref["canonical_reference"] and ref["added"] and ref["x_reference"] == pytest.approx(1.0)
        for b, record in ((ref, here[0]), (ort, here[1])):  # in-process: warm-up excluded, threads applied
            assert b["threads"] == t and b["bare_threads"] == t
            assert len(b["frame_latency_ms"]) == 1 and len(b["frame_latency_ms"][0]) == n
            assert len(b["warmup_latency_ms"]) == 2
            assert 0 < b["latency"]["p50_ms"] <= b["latency"]["p90_ms"] <= b["latency"]["p99_ms"] <= b["latency"]["max_ms"]
            assert b["measured_s"][0] > 0 and b["load_s"][0] > 0 and b["warmup_s"][0] > 0
            assert b["stages_s"], "the in-process backends report stage times"
            if LINUX:
                assert b["os_threads"] >= 1 and b["peak_rss_reset"]
        assert here[1]["options"]["intra_op_threads"] == t
        assert here[0]["options"]["threads"] == t
        port = here[3]["bench"]
        assert port["threads"] is None and port["bare_threads"] == t  # a port keeps its own threading
        assert port["fps_basis"] == "the port's frame lines"  # {"stage": "frame"} lines: 50 + i ms
        assert port["frame_latency_ms"] == [[pytest.approx(50.0 + 2 + k) for k in range(n)]]
        assert port["fps"] == pytest.approx(n / sum(0.05 + (2 + k) / 1000 for k in range(n)))
        assert port["stages_s"]["audio_encoder"] == pytest.approx(0.0125)
        skipped = here[2]
        assert skipped["status"] == "skipped" and "CoreMLExecutionProvider is not available" in skipped["reason"]
    assert read_results(path)["bench"]["points"][0]["bare"]["1"]["fps"] > 0  # written and schema-valid


def test_bench_table_names_every_backend_and_point(bench):
    results, _ = bench
    table = bench_table(results)
    for name in ("reference", "ort_cpu", "coreml", "port"):
        assert name in table
    assert "SKIPPED" in table and "CoreMLExecutionProvider is not available" in table
    assert table.count("bare generator") == 4
    for header in ("FPS", "x bare", "x ref", "p50 ms", "p99 ms", "peak RSS MB", "CPU %", "OS threads", "generator"):
        assert header in table
    assert "frame_decode" in table and "encode_write" in table  # the stage table; absent stages show "-"


def test_bench_settings_from_config_and_cli_entry(tmp_path, synthetic_pack, tiny_models_dir, bench_section, capsys):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.ort_cpu]\nkind = "onnxruntime"\n',
                        extra="[bench]\nwarmup = 1\nframes = [2]\n")
    assert bench_settings(path) == {"warmup": 1, "repeats": 1, "threads": None, "frames": [2]}
    assert bench_main(path, progress=False) == 0
    out = capsys.readouterr().out
    assert "ort_cpu" in out and "reference" in out and "bench ->" in out
    results = read_results(tmp_path / "out" / "bench.json")
    assert results["bench"]["warmup"] == 1 and results["bench"]["frames"] == [2]
    for record in results["runs"]:
        assert record["status"] == "passed"
        assert len(record["bench"]["frame_latency_ms"][0]) == 2 and len(record["bench"]["warmup_latency_ms"]) == 1
        assert record["bench"]["threads"] == 0  # as configured: the engine's default
    # arguments win over [bench]; --output moves bench.json
    assert bench_main(path, backends=["ort_cpu"], frames=[3], warmup=0, output=tmp_path / "o2", progress=False) == 0
    results = read_results(tmp_path / "o2" / "bench.json")
    assert [r["bench"]["frames"] for r in results["runs"]] == [3, 3]
    assert all(r["bench"]["warmup_latency_ms"] == [] for r in results["runs"])


@pytest.mark.parametrize("section, message", [
    ("warmpu = 3", r"unknown key \[bench\].warmpu"),
    ("warmup = \"five\"", r"\[bench\].warmup must be int"),
    ("repeats = 0", r"\[bench\].repeats must be at least 1"),
    ("threads = 2", r"\[bench\].threads must be list"),
    ("frames = [0, 10]", r"\[bench\].frames must be a non-empty list of integers >= 1"),
    ("threads = [true]", r"\[bench\].threads must be a non-empty list of integers >= 0"),
])
def test_bench_settings_errors_name_the_key(tmp_path, synthetic_pack, tiny_models_dir, bench_section, section, message):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.a]\nkind = "onnxruntime"\n',
                        extra=f"[bench]\n{section}\n")
    with pytest.raises(ConfigError, match=message):
        bench_settings(path)
    with pytest.raises(ConfigError, match=message):
        bench_main(path, progress=False)


def test_bench_settings_defaults(tmp_path, synthetic_pack, tiny_models_dir):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.a]\nkind = "onnxruntime"\n')
    assert bench_settings(path) == {"warmup": 5, "repeats": 1, "threads": None, "frames": None}


def test_too_many_frames_is_an_error_not_a_crash(tmp_path, synthetic_pack, tiny_models_dir):
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.ort_cpu]\nkind = "onnxruntime"\n')
    assert bench_main(path, frames=[500], warmup=1, progress=False) == 3
    results = read_results(tmp_path / "out" / "bench.json")
    assert {r["status"] for r in results["runs"]} == {"error"}
    assert all("asked for 501 frames" in r["reason"] for r in results["runs"])
    assert results["bench"]["points"][0]["bare"] == {}


def test_bare_generator_and_int_lists(tiny_models_dir):
    bare = bare_generator(tiny_models_dir, threads=1, frames=3, warmup=1)
    assert bare["frames"] == 3 and bare["threads"] == 1 and len(bare["warmup_ms"]) == 1
    assert bare["fps"] > 0 and bare["p50_ms"] <= bare["p99_ms"] <= bare["max_ms"]
    assert parse_int_list("1,2, 4") == [1, 2, 4]
    for bad in ("", "1,x", "-1"):
        with pytest.raises(ValueError):
            parse_int_list(bad)


def test_a_backend_that_rejects_the_sweeps_threads_is_an_error_in_bench_json(tmp_path, synthetic_pack,
                                                                            tiny_models_dir, monkeypatch):
    """A backend rebuilt at a sweep's thread count that refuses it is an ERROR row of bench.json (exit 3),
    not left out of the results."""
    import harness.bench.sweep as sweep
    real = sweep.with_threads

    def refuse_ort(backend, threads):
        if backend.name == "ort_cpu":
            raise ValueError("intra_op_threads: refused for this test")
        return real(backend, threads)

    monkeypatch.setattr(sweep, "with_threads", refuse_ort)
    path = write_config(tmp_path, synthetic_pack, tiny_models_dir, '[backends.ort_cpu]\nkind = "onnxruntime"\n')
    assert bench_main(path, threads=[1], frames=[2], warmup=0, progress=False, overhead=False) == 3
    runs = {r["backend"]: r for r in read_results(tmp_path / "out" / "bench.json")["runs"]}
    assert runs["ort_cpu"]["status"] == "error" and "refused for this test" in runs["ort_cpu"]["reason"]
    assert runs["reference"]["status"] == "passed"
