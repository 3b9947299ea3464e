"""Bounded memory: `explain` over many failing backends keeps its peak RSS under LIMIT_MB (it grew
without bound over 9 ports x 2 audios when every diagnosis's model sessions were kept alive by their
precision variants and every variant's frames were kept), and a diagnosis's sessions are freed.

Measured on 2 frames, one thread per session, started through the ports' launcher (a child's peak
RSS starts at its parent's, a worker's of several GB): 697-785 MB; 1459 MB when the diagnoses'
shared generator outputs still held their sessions' ONNX Runtime memory alive (a regression this
limit catches)."""
from __future__ import annotations

import json
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from harness.backends import port_launcher
from harness.diagnosis.explain import diagnosis_models
from harness.system.memory import release_memory
from reference.precision import with_precision

pytestmark = pytest.mark.long

LIMIT_MB = 1200
VARIANTS = ["channel_order=rgb", "paste=direct", "masked_input=none", "template_order=linear",
            "audio_window=tile", "resize_kernel=nearest_floor", "output=jpeg90", "quantisation=round"]


def test_explain_of_many_failing_backends_keeps_its_memory_bounded(shared_data, tiny_models_dir, tmp_path):
    backends = "".join(f'[backends."reference[{v}]"]\nthreads = 1\n' for v in VARIANTS)
    config = tmp_path / "many.toml"
    config.write_text(f'[data]\npack = "{shared_data / "sanders_pack"}"\nmodels = "{tiny_models_dir}"\n'
                      f'audio = ["{shared_data / "audio" / "talk_hb.wav"}", "silence"]\nframes = 2\n'
                      f'[run]\noutput = "{tmp_path / "out"}"\n' + backends)
    cli = Path(sys.executable).parent / "synctalk-parity"
    out, err, report = tmp_path / "stdout.txt", tmp_path / "stderr.txt", tmp_path / "usage.json"
    with out.open("w") as stdout, err.open("w") as stderr:  # through the ports' launcher: explain's own
        # peak, not this worker's (a child's ru_maxrss starts at the RSS of the process it was forked from)
        done = subprocess.run([sys.executable, "-I", "-S", port_launcher.__file__, str(report), str(cli), "explain",
                               str(config), "--quiet"], stdout=stdout, stderr=stderr, timeout=600)
    peak_mb = json.loads(report.read_text())["ru_maxrss"] / 1024
    print(f"\npeak RSS of explain over {len(VARIANTS)} backends x 2 audios: {peak_mb:.0f} MB")
    assert done.returncode == 1, err.read_text()[-2000:]
    assert out.read_text().count("FAILED (diagnosed in") >= len(VARIANTS), out.read_text()[-3000:]
    assert peak_mb <= LIMIT_MB


def test_a_diagnosiss_sessions_and_their_precision_variants_are_freed(tiny_models_dir):
    models = diagnosis_models(Path(tiny_models_dir))
    assert with_precision(models, "fp16") is with_precision(models, "fp16")  # built once per models object
    with_precision(models, "bf16")
    gone = weakref.ref(models)
    del models
    release_memory()
    assert gone() is None, "the variants keep the model sessions alive"
