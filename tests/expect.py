"""Shared assertion of the robustness tests: a call fails with an InputError that names the file."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from reference.errors import InputError


def expect_error(call: Callable, path: Path, *fragments: str) -> InputError:
    """`call()` raises an InputError naming `path` (attribute and text) and every fragment of the problem."""
    with pytest.raises(InputError) as info:
        call()
    text = str(info.value)
    assert info.value.path == path and str(path) in text, text
    for fragment in fragments:
        assert fragment in text, text
    return info.value
