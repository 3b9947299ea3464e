"""The standard stage-dump folder ($SYNCTALK_PARITY_DUMP_DIR): stages with no stage_dumps table."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.backends import dump_dir
from harness.backends.base import BackendFailed, RunInputs
from harness.backends.subprocess_port import SubprocessBackend, preset_options
from reference.stages import DESCRIPTIONS, STAGES

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="not on this platform: POSIX process groups")

FAKES = Path(__file__).parent / "fake_ports"
N = 4


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> Path:
    from fixtures.pack import build_pack
    return build_pack(tmp_path_factory.mktemp("dump-pack") / "pack", frames=N, seed=0)


def inputs(pack: Path, workdir: Path) -> RunInputs:
    workdir.mkdir(parents=True, exist_ok=True)
    return RunInputs(source=pack, source_kind="pack", audio=pack / "audio.wav", models=pack / "models",
                     frames=N, workdir=workdir)


def port(*extra: str, script: str = "dump_dir_port.py", **options) -> SubprocessBackend:
    options = preset_options([sys.executable, str(FAKES / script)], **options)
    options["command"] += list(extra)
    return SubprocessBackend("dumper", options)


def run_stages(backend: SubprocessBackend, run_inputs: RunInputs) -> dict:
    run = backend.run(run_inputs)
    assert len(list(run.frames)) == N
    return run.stages()


def test_a_port_writing_the_dump_folder_gets_its_stages_read(pack, tmp_path):
    run = port().run(inputs(pack, tmp_path / "w"))
    list(run.frames)
    stages = run.stages()
    assert sorted(stages) == ["audio_windows", "mel"]  # "notes/" is not a stage
    assert stages["audio_windows"].shape == (N, 32, 16, 16) and stages["audio_windows"].dtype == np.float32
    assert [float(stages["audio_windows"][i, 5, 3, 2]) for i in range(N)] == [0.0, 1.0, 2.0, 3.0]
    np.testing.assert_array_equal(stages["mel"], np.repeat(np.arange(5, dtype=np.float32)[:, None], 80, axis=1))
    assert run.info["dump_dir"] == str((tmp_path / "w").resolve() / "stage_dumps")
    assert run.timings["stages"] == {"generator": pytest.approx(0.0075)}


def test_the_folder_is_made_anew_for_every_run(pack, tmp_path):
    work = tmp_path / "w"
    run_stages(port(), inputs(pack, work))
    assert run_stages(port(script="copy_port.py"), inputs(pack, work)) == {}  # nothing left over
    assert list((work / "stage_dumps").iterdir()) == []


def test_an_explicit_stage_dumps_entry_wins(pack, tmp_path):
    explicit = {"mel": {"pattern": "{workdir}/stage_dumps/audio_windows/%d.f32", "format": "f32le",
                        "shape": [32, 16, 16]}}
    # the folder's mel/0.npy is stale: reading it would fail, so it must not be read at all
    stages = run_stages(port("--stale-mel", stage_dumps=explicit), inputs(pack, tmp_path / "w"))
    assert stages["mel"].shape == (N, 32, 16, 16)


def test_a_stale_row_file_fails_naming_it(pack, tmp_path):
    run = port("--stale-mel").run(inputs(pack, tmp_path / "w"))
    list(run.frames)
    with pytest.raises(BackendFailed, match=r"stage dump mel: .*mel/0\.npy predates this run"):
        run.stages()


@pytest.mark.parametrize("flag, message", [
    ("--twin", r"stage dump audio_windows: row 0 has 2 files: 0\.f32, 0\.npy"),
    ("--no-row0", r"stage dump audio_windows: no row 0 file \(0\.f32 or 0\.npy\) in .*stage_dumps/audio_windows"),
])
def test_malformed_folders_fail_with_the_reason(pack, tmp_path, flag, message):
    run = port(flag).run(inputs(pack, tmp_path / "w"))
    list(run.frames)
    with pytest.raises(BackendFailed, match=message):
        run.stages()


def test_a_wrong_row_size_fails(tmp_path):
    (tmp_path / "audio_windows").mkdir()
    np.zeros(100, "<f4").tofile(tmp_path / "audio_windows" / "0.f32")
    backend = port()
    with pytest.raises(BackendFailed, match=r"0\.f32 has 400 bytes, expected 32768 \(float32 x \[32, 16, 16\]\)"):
        backend._load_dump_dir("audio_windows", tmp_path, N, 0.0)


def test_rows_stop_at_a_gap_and_per_frame_stages_at_n(tmp_path):
    for stage in ("audio_windows", "mel"):
        (tmp_path / stage).mkdir()
        for row in range(10):
            (tmp_path / stage / f"{row:03d}.f32").write_bytes(b"")
    assert [p.name for p, _ in dump_dir.row_files(tmp_path, "audio_windows", 4)] == ["000.f32", "001.f32", "002.f32", "003.f32"]
    assert len(dump_dir.row_files(tmp_path, "mel", 4)) == 10  # mel rows are not frames
    (tmp_path / "mel" / "007.f32").unlink()
    assert [fmt for _, fmt in dump_dir.row_files(tmp_path, "mel", 4)] == ["f32le"] * 7


def _trailing_dims(description: str) -> tuple[int, ...]:
    """(32, 16, 16) from "(frames, 32, 16, 16) ..."."""
    dims = re.search(r"\(([^)]*)\)", description).group(1).split(",")[1:]
    return tuple(int(d) for d in dims)


def test_row_shapes_are_the_stage_shapes_of_the_backends_and_the_reference():
    assert set(dump_dir.ROW_SHAPES) == set(STAGES)
    for stage, shape in dump_dir.ROW_SHAPES.items():
        assert _trailing_dims(STAGES[stage]) == shape, stage
        assert _trailing_dims(DESCRIPTIONS[stage]) == shape, stage


def test_stage_order_is_the_dump_stages_plus_encoder_windows_in_pipeline_order():
    from reference.stages import STAGE_ORDER, in_stage_order
    assert set(STAGE_ORDER) == set(STAGES) | {"encoder_windows"}
    assert [s for s in STAGE_ORDER if s in STAGES] == list(STAGES)  # the same order
    assert in_stage_order({"zz", "generator_outputs", "mel", "aa"}) == ["mel", "generator_outputs", "aa", "zz"]
