"""Core ML conversion and its audit, and the commands over them (the model files are `harness.coreml`).

* The audit (`audit`, `weights`, `folding`): inputs and outputs, precision, op histogram, the source's
  folded shape arithmetic checked against ONNX Runtime, resampling modes and every weight tensor side
  by side with the source, each `Difference` named;

* `cli`: the `audit-model` and `convert coreml` subcommands, their options and handlers;
* `conversion`: the conversion run (both models translated, audited, and placed only when faithful);
* `report`: an audit as text, its verdict, and the parity cost its precision predicts;
* `cost`: that cost, predicted from the fp16 emulation on a few frames of the demo data.
"""
