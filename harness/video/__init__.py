"""Videos as an app hands them back (H.264 .mp4 and the like), read and written with PyAV.

* `read`: a video's container and streams (codec, profile, bit rate, pixel format, colour matrix,
  range and primaries, nominal and real frame rate, first timestamp, each frame's presentation time,
  the audio track's samples), its pictures decoded to BGR by presentation time onto the pipeline's
  25 fps slots (`Timeline`), and the raw YUV planes read under any colour matrix and range;
* `write`: frames (and a sound track) encoded to H.264, for tests and for the codec round trip of
  the evidence.

Nothing here judges: the findings are made in `harness.diagnosis.evidence`.
"""
