"""Convention knobs of the pipeline: the canonical choice of each and the variants real ports make.

`Conventions()` is the canonical SyncTalk_2D pipeline. A variant is written as text,
`"audio_window=tile,template_order=linear"`, the same syntax as the `reference[...]` backend names.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

from reference.audio import FRAMINGS, MEL_SCALES, WINDOWS
from reference.image import RESIZE_KERNELS

# knob -> values (the first is canonical). audio_offset takes an integer instead, and output any
# JPEG codec "[pil_]jpeg<q>[_444]" (q in 1..100; the few here are examples, the search fits q).
CHOICES: dict[str, tuple] = {
    "stft_framing": FRAMINGS,
    "stft_window": WINDOWS,
    "mel_scale": MEL_SCALES,
    "audio_window": ("window", "tile"),
    "feature_padding": ("edge", "none"),
    "template_order": ("pingpong", "linear"),
    "crop_source": ("default", "pack", "computed"),
    "masked_input": ("memory", "two_point", "pack", "none"),
    "input_channels": ("bgr", "rgb"),
    "output_channels": ("bgr", "rgb"),
    "quantisation": ("truncate", "round"),
    "audio_source": ("wav", "aud_ave"),
    "paste": ("crop328", "direct"),
    "resize_kernel": RESIZE_KERNELS,
    "output": ("lossless", "jpeg95", "jpeg90", "jpeg75"),
    "precision": ("fp32", "fp16", "bf16"),
}
_JPEG = re.compile(r"(?P<lib>pil_)?jpeg(?P<q>[1-9][0-9]{0,2})(?P<sub>_444)?")
# Knobs that change nothing before the generator: their variants reuse the generator's outputs.
POST_GENERATOR = ("output_channels", "quantisation", "paste", "resize_kernel", "output")
# Old spelling, still accepted: channel_order=X sets both input_channels and output_channels.
ALIASES = {"channel_order": ("input_channels", "output_channels")}


@dataclass(frozen=True)
class JpegCodec:
    """The encoder of an `output` convention: library ("cv2" or "pil"), quality 1..100, chroma subsampling."""

    library: str
    quality: int
    subsampling: str  # "420" or "444"

    @property
    def name(self) -> str:
        return f"{'pil_' if self.library == 'pil' else ''}jpeg{self.quality}{'_444' if self.subsampling == '444' else ''}"


def jpeg_codec(output: str) -> JpegCodec | None:
    """The JPEG codec of an `output` convention, None for "lossless": "jpeg<q>" is OpenCV's encoder
    (4:2:0), "pil_jpeg<q>" Pillow's (4:2:0), a "_444" suffix keeps full-resolution chroma."""
    if output == "lossless":
        return None
    match = _JPEG.fullmatch(output)
    if match is None or int(match["q"]) > 100:
        raise ValueError(f"convention output={output!r} is unknown; choose lossless or [pil_]jpeg<q>[_444] "
                         f"with q in 1..100")
    return JpegCodec("pil" if match["lib"] else "cv2", int(match["q"]), "444" if match["sub"] else "420")


@dataclass(frozen=True)
class Conventions:
    """One choice per knob; the defaults are canonical (see docs/conventions.md)."""

    stft_framing: str = "center_zero"
    stft_window: str = "periodic"
    mel_scale: str = "slaney"
    audio_window: str = "window"
    feature_padding: str = "edge"
    audio_offset: int = 0
    template_order: str = "pingpong"
    crop_source: str = "default"  # the source's own: the pack's crops, or computed for a dataset
    masked_input: str = "memory"  # "two_point": the box x 5..310, y 5..305; "pack": model_inputs; "none": no mask
    input_channels: str = "bgr"  # channel order of the generator's image input
    output_channels: str = "bgr"  # channel order the generator's output is read in
    quantisation: str = "truncate"
    audio_source: str = "wav"  # "aud_ave": the generator reads the pack's aud_ave.bin, not the WAV
    paste: str = "crop328"
    resize_kernel: str = "cv2_cubic"  # of every resize: the computed crop and the paste
    output: str = "lossless"  # or a JPEG codec "[pil_]jpeg<q>[_444]": the frame round-tripped through it
    precision: str = "fp32"

    def __post_init__(self) -> None:
        jpeg_codec(self.output)
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
            if not sep or key not in known | set(ALIASES):
                raise ValueError(f"unknown convention {item!r}; knobs are {', '.join(sorted(known))}")
            if key == "audio_offset":
                try:
                    values[key] = int(value)
                except ValueError:
                    raise ValueError(f"convention audio_offset={value!r} must be an integer in -8..8") from None
            else:
                values.update(dict.fromkeys(ALIASES.get(key, (key,)), value))
        return replace(cls(), **values)

    def variants(self) -> dict:
        """The knobs that differ from canonical."""
        canonical = asdict(Conventions())
        return {k: v for k, v in asdict(self).items() if canonical[k] != v}

    def label(self) -> str:
        """`knob=value,...` of the non-canonical knobs, or `canonical`."""
        return ",".join(f"{k}={v}" for k, v in self.variants().items()) or "canonical"
