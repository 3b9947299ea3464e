"""Convention knobs of the pipeline: the canonical choice of each and the variants real ports make.

`Conventions()` is the canonical SyncTalk_2D pipeline. A variant is written as text,
`"audio_window=tile,template_order=linear"`, the same syntax as the `reference[...]` backend names.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from reference.audio import FRAMINGS, MEL_SCALES, WINDOWS

# knob -> allowed values (the first is canonical); audio_offset takes an integer instead.
CHOICES: dict[str, tuple] = {
    "stft_framing": FRAMINGS,
    "stft_window": WINDOWS,
    "mel_scale": MEL_SCALES,
    "audio_window": ("window", "tile"),
    "feature_padding": ("edge", "none"),
    "template_order": ("pingpong", "linear"),
    "crop_source": ("default", "pack", "computed"),
    "masked_input": ("memory", "pack"),
    "channel_order": ("bgr", "rgb"),
    "quantisation": ("truncate", "round"),
}


@dataclass(frozen=True)
class Conventions:
    """One choice per knob; the defaults are canonical (see DESIGN.md, "Conventions")."""

    stft_framing: str = "center_zero"
    stft_window: str = "periodic"
    mel_scale: str = "slaney"
    audio_window: str = "window"
    feature_padding: str = "edge"
    audio_offset: int = 0
    template_order: str = "pingpong"
    crop_source: str = "default"  # the source's own: the pack's crops, or computed for a dataset
    masked_input: str = "memory"
    channel_order: str = "bgr"
    quantisation: str = "truncate"

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"convention {name}={getattr(self, name)!r} is unknown; "
                                 f"choose one of {', '.join(allowed)}")
        if not isinstance(self.audio_offset, int) or abs(self.audio_offset) > 8:
            raise ValueError(f"convention audio_offset={self.audio_offset!r} must be an integer in -8..8")

    @classmethod
    def parse(cls, text: str) -> "Conventions":
        """Parse `"knob=value,knob=value"` (empty text is canonical)."""
        known = {f.name for f in fields(cls)}
        values: dict = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in known:
                raise ValueError(f"unknown convention {item!r}; knobs are {', '.join(sorted(known))}")
            values[key] = int(value) if key == "audio_offset" else value
        return replace(cls(), **values)

    def variants(self) -> dict:
        """The knobs that differ from canonical."""
        canonical = asdict(Conventions())
        return {k: v for k, v in asdict(self).items() if canonical[k] != v}

    def label(self) -> str:
        """`knob=value,...` of the non-canonical knobs, or `canonical`."""
        return ",".join(f"{k}={v}" for k, v in self.variants().items()) or "canonical"
