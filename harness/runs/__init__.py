"""The runs: a parity run (the reference once per audio, every backend streamed against it), its
config, the reference cache, the frame stream, side-by-side videos, the console table, `compare`
of two folders and a golden judged on this machine.
"""
