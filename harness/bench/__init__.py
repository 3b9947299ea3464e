"""`synctalk-parity bench`: how fast each backend of a parity config is, against the bare generator.

Modules: `settings` (the ``[bench]`` table, thread options), `procfs` (``/proc`` probes of this
process), `stats` (latency percentiles, medians), `baseline` (the bare generator), `measure`
(one backend's runs, in-process or a port), `sweep` (every backend at every sweep point),
`overhead` (the parity overhead), `table` (the console tables) and `cli` (the command).

For each backend of the config (and a canonical `reference`, added when the config has none) and
the config's first audio only, a run makes `warmup + frames` frames, `repeats` times; the frames
are consumed and thrown away (no comparison). Per backend and sweep point it records:

* steady-state FPS (``fps``): measured frames / wall time of the measured frames (warm-up frames
  and the load, i.e. model sessions and audio features, excluded; both reported). A port without
  ``{"stage": "frame"}`` lines is timed from when its frame files appeared in the output folder
  (`harness.backends.frame_watch`): the frames after the warm-up over the time between their
  appearances. The ratios to the bare generator and the reference use it for every backend;
* FPS end to end (``fps_end_to_end``: all frames over the whole run, start-up and load included)
  and the time to the first frame (``ttff_s``, from the run's or the port process's start);
* seconds per pipeline stage (the backend's ``timings["stages"]``, covering warm-up frames too);
* per-frame latency p50/p90/p99/max of the measured frames (the backend's own per-frame latency
  when it gives one per frame, else the time between consecutive frames);
* peak RSS, with ``peak_rss_of`` saying whose (in-process: the high-water mark is reset through
  ``/proc/self/clear_refs`` before the backend runs and ``VmHWM`` read after, so it is the
  process's peak during the run, the harness's own memory included; a subprocess port: its own
  peak RSS from ``wait4``, not the harness's), CPU utilisation (user +
  system CPU seconds of the measured frames / wall / cores) and the OS thread count at the end
  of the run (``/proc/self/status``; None off Linux and for ports);
* FPS as a ratio to the **bare generator** (the generator model alone on pre-built inputs: the
  fastest of every way of spending the same cores, named, measured in the same run:
  `harness.bench.baseline`) and to the canonical **reference** at the same sweep point.

After the sweep, each configured backend's parity overhead (`overhead`): a one-backend `run` with
the reference cached, its wall time over the backend's own run time (``bench.overhead``).

Sweeps: ``threads`` (every in-process backend rebuilt with its thread option set: ``threads``
for reference, fp16 and openvino, ``intra_op_threads`` for onnxruntime; a subprocess port keeps
its own threading) and ``frames``. Settings come from the arguments, else from the config's
``[bench]`` table (``warmup`` = 5, ``repeats`` = 1, ``threads`` = none, ``frames`` = none, i.e.
the config's own threads and ``[data].frames``).

The results document has the schema of results.json (`harness.verdicts.results`): one run record per
backend x sweep point with status passed / skipped / error, its ``bench`` measurements and a
``timings`` summary; the top-level ``bench`` key holds the settings, the sweep points and their
bare-generator baselines.
"""
from __future__ import annotations
