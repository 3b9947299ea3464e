"""A finding of the image evidence, as the makers in `findings` return it and results.json stores it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Finding:
    """One kind of difference the evidence shows: ``frames`` are 1-based frame numbers, ``explains_db`` the
    PSNR gain of its model (None for the kinds that are not pixel models), ``details`` the kind's own
    fields, ``crop`` (``path``, ``frame``) the saved crop of its most telling frame, if any."""

    kind: str
    summary: str
    frames: list[int]
    explains_db: float | None
    details: dict = field(default_factory=dict)
    crop: dict | None = None

    def to_dict(self) -> dict:
        """The finding as results.json stores it: the four common keys, the kind's fields, then ``crop``."""
        out = {"kind": self.kind, "summary": self.summary, "frames": self.frames, "explains_db": self.explains_db,
               **self.details}
        if self.crop is not None:
            out["crop"] = self.crop
        return out

    @classmethod
    def from_dict(cls, stored: dict) -> Finding:
        """A finding read back from results.json (`to_dict`'s inverse)."""
        rest = {k: v for k, v in stored.items() if k not in ("kind", "summary", "frames", "explains_db", "crop")}
        return cls(stored["kind"], stored["summary"], stored["frames"], stored["explains_db"], rest, stored.get("crop"))

    def line(self) -> str:
        """The finding as the console prints it."""
        if self.explains_db is None:
            return f"{self.kind}: {self.summary}"
        return f"{self.kind}: {self.summary} [explains {db_text(self.explains_db)}]"


def db_text(value: float | None) -> str:
    """A gain in dB as summaries write it ("all of the residual" when nothing is left)."""
    if value is None:
        return "-"
    return "all of the residual" if math.isinf(value) else f"{value:.2f} dB"
