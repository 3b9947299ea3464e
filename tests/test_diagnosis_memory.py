"""Bounded memory: `explain` over many failing backends keeps its peak RSS under 2 GB (it grew
without bound over 9 ports x 2 audios when every diagnosis's model sessions were kept alive by their
precision variants and every variant's frames were kept), and a diagnosis's sessions are freed."""
from __future__ import annotations

import resource
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from harness.diagnosis.explain import diagnosis_models
from harness.system.memory import release_memory
from reference.precision import with_precision

pytestmark = pytest.mark.long

LIMIT_MB = 2048
VARIANTS = ["channel_order=rgb", "paste=direct", "masked_input=none", "template_order=linear",
            "audio_window=tile", "resize_kernel=nearest_floor", "output=jpeg90", "quantisation=round"]


def test_explain_of_many_failing_backends_stays_under_2_gb(shared_data, tiny_models_dir, tmp_path):
    backends = "".join(f'[backends."reference[{v}]"]\nthreads = 1\n' for v in VARIANTS)
    config = tmp_path / "many.toml"
    config.write_text(f'[data]\npack = "{shared_data / "sanders_pack"}"\nmodels = "{tiny_models_dir}"\n'
                      f'audio = ["{shared_data / "audio" / "talk_hb.wav"}", "silence"]\nframes = 3\n'
                      f'[run]\noutput = "{tmp_path / "out"}"\n' + backends)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cli = Path(sys.executable).parent / "synctalk-parity"
    done = subprocess.run([str(cli), "explain", str(config), "--quiet"], capture_output=True, text=True, timeout=600)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\npeak RSS of explain over {len(VARIANTS)} backends x 2 audios: {peak_mb:.0f} MB")
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stdout.count("FAILED (diagnosed in") >= len(VARIANTS), done.stdout[-3000:]
    assert before < LIMIT_MB * 1024 and peak_mb <= LIMIT_MB


def test_a_diagnosiss_sessions_and_their_precision_variants_are_freed(tiny_models_dir):
    models = diagnosis_models(Path(tiny_models_dir))
    assert with_precision(models, "fp16") is with_precision(models, "fp16")  # built once per models object
    with_precision(models, "bf16")
    gone = weakref.ref(models)
    del models
    release_memory()
    assert gone() is None, "the variants keep the model sessions alive"
