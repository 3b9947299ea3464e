"""Decoded pack images, shared by every part of a run that reads them (the frame stream rebuilding the
reference's frames, the image evidence matching templates): each file is decoded once while it is among
the last `IMAGES` used, and a file changed on disk is decoded again."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.system.lru import LRU
from reference.data import read_image

IMAGES = 32  # decoded images kept: about 90 MB of 1280x720 frames
_DECODED = LRU(IMAGES)


def decoded_image(path: str | Path) -> np.ndarray:
    """`reference.data.read_image(path)`, from the shared cache (keyed by the file's path, size and
    modification time). The array is read-only: copy it before drawing on it."""
    path = Path(path)
    st = path.stat()

    def decode() -> np.ndarray:
        image = read_image(path)
        image.flags.writeable = False
        return image

    return _DECODED.get((str(path.resolve()), st.st_size, st.st_mtime_ns), decode)
