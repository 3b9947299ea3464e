"""Checking a backend's options table: unknown keys and wrong types are named."""
from __future__ import annotations


def check_options(backend: str, options: dict, allowed: dict[str, type | tuple]) -> dict:
    """Return `options` after checking every key is allowed and has the declared type."""
    for key, value in options.items():
        if key not in allowed:
            raise ValueError(f"backend {backend!r}: unknown option {key!r}; allowed: {', '.join(sorted(allowed))}")
        want = allowed[key]
        if not isinstance(value, want) or (isinstance(value, bool) and bool not in (want if isinstance(want, tuple) else (want,))):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            raise ValueError(f"backend {backend!r}: option {key!r} must be {names}, got {value!r}")
    return options
