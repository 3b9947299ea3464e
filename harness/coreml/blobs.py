"""The weight file of an ML program (`weights/weight.bin`), read with numpy and checked.

Layout (coremltools' MIL blob storage, version 2, little-endian): a 64-byte header (uint32 blob count,
uint32 version), then per blob a 64-byte record at the offset the program names (uint32 sentinel
0xDEADBEEF, uint32 data type, uint64 size in bytes, uint64 data offset, ...) and its data, 64-byte
aligned. A truncated or foreign file is an InputError naming the offset, never a crash.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from reference.errors import InputError

SENTINEL = 0xDEADBEEF
HEADER = struct.Struct("<II")
RECORD = struct.Struct("<IIQQ")
DTYPES = {1: np.float16, 2: np.float32, 3: np.uint8, 4: np.int8, 5: None, 6: np.int16, 7: np.uint16,
          14: np.int32, 15: np.uint32}
"""Blob data type code -> numpy dtype (5 is bfloat16, read by bit shift; sub-byte codes are not read)."""
FIX = "copy the package or folder again with its weights/ folder"


class BlobFile:
    """A weight.bin opened by memory map; `read(offset)` gives the blob whose record is at `offset`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "weight file not found", FIX)
        self.data = np.memmap(self.path, np.uint8, mode="r") if self.path.stat().st_size else np.zeros(0, np.uint8)
        if len(self.data) < 64:
            raise InputError(self.path, f"not a Core ML weight file ({len(self.data)} bytes, no header)", FIX)
        self.count, self.version = HEADER.unpack_from(self.data, 0)
        if self.version != 2:
            raise InputError(self.path, f"weight file version {self.version}; this reader knows version 2",
                             "convert again with coremltools >= 7")

    def read(self, offset: int) -> np.ndarray:
        """The blob whose record is at `offset`, as a 1-D array of its stored dtype (bfloat16 as float32)."""
        if offset + RECORD.size > len(self.data):
            raise InputError(self.path, f"blob record at offset {offset} lies past the end of the file "
                             f"({len(self.data)} bytes): truncated", FIX)
        sentinel, code, size, start = RECORD.unpack_from(self.data, offset)
        if sentinel != SENTINEL:
            raise InputError(self.path, f"no blob record at offset {offset} (sentinel {sentinel:#x})",
                             "the program and the weight file do not belong together")
        if start + size > len(self.data):
            raise InputError(self.path, f"blob at offset {offset} needs bytes {start}..{start + size} of "
                             f"{len(self.data)}: truncated", FIX)
        if code not in DTYPES:
            raise InputError(self.path, f"blob at offset {offset} has data type code {code} (compressed "
                             "sub-byte weights are not read)", "audit an uncompressed conversion")
        raw = np.asarray(self.data[start:start + size])
        if code == 5:
            return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        return raw.view(DTYPES[code])

    def floats(self, offset: int, shape: tuple) -> np.ndarray:
        """The blob at `offset` as float32 of `shape` (InputError when its size does not fit)."""
        flat = self.read(offset)
        if flat.size != int(np.prod(shape)):
            raise InputError(self.path, f"blob at offset {offset} holds {flat.size} values; the program "
                             f"declares shape {tuple(shape)}", "the program and the weight file do not belong together")
        return flat.astype(np.float32).reshape(shape)
