"""coremltools, imported and run without the noise it prints on Linux.

Importing it logs warnings that do not concern this project (the scikit-learn version, the
macOS-only prediction library it cannot load off macOS), and its converter draws one progress bar
per pass pipeline. Both are kept off the console; a real error still raises.
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Iterator

from reference.errors import ParityError


class CoremltoolsMissing(ParityError):
    """coremltools cannot be imported here."""

    exit_code = 3


def coremltools():
    """The coremltools module, imported with its import-time warnings silenced."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import coremltools as ct
    except ImportError as exc:
        raise CoremltoolsMissing(f"coremltools cannot be imported ({exc}); install the lock: "
                                 "pip install -r requirements.lock") from None
    finally:
        log.setLevel(level)
    return ct


@contextlib.contextmanager
def no_progress_bars() -> Iterator[io.StringIO]:
    """Within the block, what coremltools writes to stderr (its pass progress bars) goes to a buffer."""
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        yield buffer
