"""The Core ML model-file library: reading, translating and auditing the pipeline's two models against
their ONNX sources (the commands over it are `harness.convert`).

* Reading any model into one neutral graph (`graph`), `read` picking the reader by suffix: an ML
  program package (`.mlpackage`) or spec (`.mlmodel`) through `mil_proto`, a neural-network
  `.mlmodel` through `nn_spec`, a compiled folder (`.mlmodelc`: `metadata.json` and the MIL text
  `model.mil`) through `mil_text`, another `.onnx` through `onnx_view`; both MIL forms share
  `mil_program`, and weight files are read by `blobs`.
* The translator (`translate`): ONNX -> a Core ML ML program through coremltools' MIL builder, no torch,
  for the ops these models use; `package` writes and caches the packages.
* The audit (`audit`, `weights`): inputs and outputs, precision, op histogram, resampling modes and
  every weight tensor side by side with the source, each `Difference` named.
* `quiet` imports coremltools without its Linux warnings and progress bars.

This package imports only `reference` (and itself). Reading, translating and auditing run anywhere
coremltools installs; only prediction needs macOS (the `coreml` backend, harness/backends/coreml_backend.py).
"""
