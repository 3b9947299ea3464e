"""The reference under any conventions, on chosen frames, with every cache bounded.

A `Renderer` serves every variant the convention fit tries for one (source, audio, models): a
variant's frame `i` is made from three cached parts, each kept in a least-recently-used cache of
fixed size so that memory stays bounded however many variants and backends are diagnosed:

* the audio features of the variant's audio-side knobs (a few MB each, `FEATURE_CACHE` of them);
* the decoded template of frame `i` for the variant's template knobs (`TEMPLATE_CACHE`);
* the generator output of frame `i` for the variant's pre-generator knobs (1.2 MB each,
  `OUTPUT_CACHE` of them): a variant that changes only what follows the generator (output channel
  order, quantisation, paste, resize kernel, output codec) costs no generator call;
* behind it, one cache for every renderer of the process (`SHARED_OUTPUTS` outputs), keyed by the
  model files (path, size, modification time, external data included) and a digest of the
  generator's inputs: the diagnoses of several backends on one clip try many of the same variants.
  In one `explain` of 6 failing backends x 2 clips, 515 generator calls had 161 distinct inputs.

Rendered frames themselves are not kept: callers score them and drop them.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from harness.system.lru import LRU
from reference import features
from reference.conventions import POST_GENERATOR, Conventions
from reference.pipeline import AudioFeatures, ReferencePipeline, audio_features
from reference.provenance import model_files

FRONT_END = ("stft_framing", "stft_window", "mel_scale", "precision")
MAX_OFFSET = 8  # embeddings are encoded far enough ahead for any audio_offset
FEATURE_CACHE = 24
TEMPLATE_CACHE = 24
OUTPUT_CACHE = 64
PIPELINE_CACHE = 64
SHARED_OUTPUTS = LRU(160)  # 190 MB at most


def _model_key(models) -> tuple:
    """What names a models object's numbers: each file of both models (graph and external data) with
    its size and modification time."""
    stats = ((path, path.stat()) for role in (models.files.encoder, models.files.generator) for path in model_files(role))
    return tuple((str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats)


def generate_shared(models, image: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """`models.generate(image, audio)`, or the output of the same models on the same inputs that any
    renderer of this process made lately (`SHARED_OUTPUTS`)."""
    digest = hashlib.sha1(np.ascontiguousarray(image).data)  # twice blake2b's speed here: 1.4 ms for 2.4 MB
    digest.update(np.ascontiguousarray(audio).data)
    # a copy: an engine's output array can hold its session's memory (ONNX Runtime's arena) alive
    return SHARED_OUTPUTS.get((_model_key(models), digest.digest()),
                              lambda: np.array(models.generate(image, audio), copy=True))


def _padded(base: AudioFeatures, padding: str) -> AudioFeatures:
    """`base` (unpadded features) with `padding`, as `audio_features` pads them."""
    data_len = base.n_frames
    padded = features.pad_features(base.embeddings, padding)
    if padding == "edge" and len(base.embeddings) < data_len:
        padded = padded[:-1]  # the last row pads with the clip's last embedding, not encoded here
    return replace(base, padded=padded, n_frames=data_len + 2 if padding == "edge" else data_len)


def _pre_generator(conv: Conventions) -> Conventions:
    """`conv` with every post-generator knob canonical: variants equal here share generator outputs."""
    canonical = Conventions()
    return replace(conv, **{knob: getattr(canonical, knob) for knob in POST_GENERATOR})


class Renderer:
    """Frames of the reference under any conventions (see the module docstring).

    `n` is the number of frames the candidate was asked for: the audio features cover them all.
    `renders` counts the variant frames made.
    """

    def __init__(self, source, audio, models, n: int) -> None:
        self.source, self.audio, self.models, self.n = source, audio, models, n
        self._features = LRU(FEATURE_CACHE)
        self._padded = LRU(FEATURE_CACHE)
        self._templates = LRU(TEMPLATE_CACHE)
        self._outputs = LRU(OUTPUT_CACHE)
        self._pipelines = LRU(PIPELINE_CACHE)
        self.renders = 0

    def features(self, conv: Conventions) -> AudioFeatures:
        """The audio features of `conv`: the mel and embeddings are shared by every variant with the same
        front end (and precision), the padding by every variant with the same padding too."""
        front = tuple(getattr(conv, k) for k in FRONT_END)
        base = self._features.get(front, lambda: audio_features(
            self.audio, self.models, replace(Conventions(), **dict(zip(FRONT_END, front)), feature_padding="none",
                                             audio_offset=MAX_OFFSET), self.n))
        return self._padded.get((front, conv.feature_padding), lambda: _padded(base, conv.feature_padding))

    def pipeline(self, conv: Conventions) -> ReferencePipeline:
        return self._pipelines.get(conv, lambda: ReferencePipeline(self.source, self.models, conv))

    def frame(self, conv: Conventions, i: int, box: tuple[slice, slice] | None = None) -> np.ndarray:
        """Frame `i` (0-based) of the reference run under `conv`; with `box` (row and column slices)
        only its pixels there, for less work (the output codec round-trips only the blocks around
        `box`). Raises what the pipeline raises when the variant cannot run on this input (e.g. a
        pack file it needs is missing)."""
        pipe = self.pipeline(conv)
        feats = self.features(conv)
        pipe.check_frames(feats, max(self.n, i + 1), self.audio)
        template_key = (pipe.template(i), conv.crop_source, conv.masked_input == "pack",
                        conv.resize_kernel if conv.crop_source == "computed" or self.source.kind == "dataset" else None)
        tpl = self._templates.get(template_key, lambda: pipe.load_template(i))
        output = self._outputs.get((_pre_generator(conv), i),
                                   lambda: generate_shared(pipe.models, *pipe.generator_inputs(i, feats, tpl)))
        self.renders += 1
        return pipe.composite(tpl, output, box)[1]
