"""Convention knobs of the pipeline: the canonical choice of each and the variants real ports make.

`Conventions()` is the canonical SyncTalk_2D pipeline. A variant is written as text,
`"audio_window=tile,template_order=linear"`, the same syntax as the `reference[...]` backend names.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

from reference.audio import FRAMINGS, MEL_SCALES, WINDOWS

# knob -> values (the first is canonical); the convention search tries every one. audio_offset
# takes an integer instead, and output any "jpeg<q>" with q in 1..100 (the search tries the few here).
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
    "audio_source": ("wav", "aud_ave"),
    "paste": ("crop328", "direct"),
    "resize_kernel": ("cv2_cubic", "pil_cubic", "bilinear", "nearest"),
    "output": ("lossless", "jpeg95", "jpeg90", "jpeg75"),
    "precision": ("fp32", "fp16", "bf16"),
}
_JPEG = re.compile(r"jpeg(?P<q>[1-9][0-9]{0,2})")


def jpeg_quality(output: str) -> int | None:
    """The JPEG quality q of an `output` convention "jpeg<q>" (1..100), None for "lossless"."""
    if output == "lossless":
        return None
    match = _JPEG.fullmatch(output)
    if match is None or int(match["q"]) > 100:
        raise ValueError(f"convention output={output!r} is unknown; choose lossless or jpeg<q> with q in 1..100")
    return int(match["q"])


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
    audio_source: str = "wav"  # "aud_ave": the generator reads the pack's aud_ave.bin, not the WAV
    paste: str = "crop328"
    resize_kernel: str = "cv2_cubic"  # of every resize: the computed crop and the paste
    output: str = "lossless"  # or "jpeg<q>": the composited frame round-tripped through a JPEG
    precision: str = "fp32"

    def __post_init__(self) -> None:
        jpeg_quality(self.output)
        for name, allowed in CHOICES.items():
            if name != "output" and getattr(self, name) not in allowed:
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
