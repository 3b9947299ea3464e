"""The Core ML model-file library: reading and translating the pipeline's two models (the audit against
their ONNX sources and the commands over it are `harness.convert`).

* Reading any model into one neutral graph (`graph`), `read` picking the reader by suffix: an ML
  program package (`.mlpackage`) or spec (`.mlmodel`) through `mil_proto`, a neural-network
  `.mlmodel` through `nn_spec`, a compiled folder (`.mlmodelc`: `metadata.json` and the MIL text
  `model.mil`) through `mil_text`, another `.onnx` through `onnx_view`; both MIL forms share
  `mil_program`, and weight files are read by `blobs`.
* The translator (`translate`): ONNX -> a Core ML ML program through coremltools' MIL builder, no torch,
  for the ops these models use, after `fold` has folded a TorchScript export's shape arithmetic at the
  pipeline's fixed shapes (batch 1); `package` writes and caches the packages.
* `quiet` imports coremltools without its Linux warnings and progress bars.

This package imports only `reference` (and itself). Reading and translating run anywhere
coremltools installs; only prediction needs macOS (the `coreml` backend, harness/backends/coreml_backend.py).
"""
