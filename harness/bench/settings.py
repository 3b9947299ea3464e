"""Bench settings: the ``[bench]`` table, ``--threads``/``--frames`` lists, a backend's thread option."""
from __future__ import annotations

from pathlib import Path

from harness.backends.base import Backend
from harness.backends.registry import make_backend
from harness.runs.config import check_bench, read_toml

THREAD_OPTION = {"reference": "threads", "fp16": "threads", "openvino": "threads",
                 "onnxruntime": "intra_op_threads"}
"""The option that sets a backend kind's thread count (kinds not listed cannot be told)."""


def bench_settings(path: str | Path) -> dict:
    """The ``[bench]`` table of a parity config, checked (`harness.runs.config.check_bench`), with defaults."""
    path = Path(path)
    return check_bench(path, read_toml(path).get("bench", {}))


def parse_int_list(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4] (for ``--threads`` / ``--frames``); ValueError on anything else."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers such as 1,2,4, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"expected comma-separated integers >= 0 such as 1,2,4, got {text!r}")
    return values


def effective_threads(backend: Backend) -> int | None:
    """The intra-op thread count a backend runs with (0: the engine's default); None for a port."""
    key = THREAD_OPTION.get(backend.kind)
    return None if key is None else int(backend.options.get(key, 0))


def with_threads(backend: Backend, threads: int | None) -> Backend:
    """The backend rebuilt with its thread option set to `threads` (unchanged for None or a port)."""
    key = THREAD_OPTION.get(backend.kind)
    if threads is None or key is None:
        return backend
    return make_backend(backend.name, {**backend.options, "kind": backend.kind, key: int(threads)})
