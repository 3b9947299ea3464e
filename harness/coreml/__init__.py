"""Core ML conversions of the pipeline's two ONNX models, and their audit against the ONNX source.

* Reading a converted model into one neutral graph (`graph`): an ML program package (`.mlpackage`,
  `mil_proto`), a neural-network or ML-program spec (`.mlmodel`, `nn_spec`, `mil_proto`), a compiled
  model folder (`.mlmodelc`: `metadata.json` and the MIL text `model.mil`, `mil_text`) with its weight
  blobs (`blobs`), or another ONNX file (`onnx_view`); `read` picks the reader.
* The translator (`translate`): ONNX -> a Core ML ML program through coremltools' MIL builder, no torch,
  for the ops these models use; `convert` converts both models and audits its own output.
* The audit (`audit`, `weights`, `report`): inputs and outputs, precision, op histogram, resampling
  modes and every weight tensor side by side with the source, each difference named; `cost` predicts
  the parity cost of a faithful fp16 conversion from the fp16 emulation on a few real frames.

Reading, translating and auditing run anywhere coremltools installs; only prediction needs macOS
(the `coreml` backend, harness/backends/coreml_backend.py).
"""
