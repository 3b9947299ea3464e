"""The Core ML commands, over the model-file library of `harness.coreml`.

* `cli`: the `audit-model` and `convert coreml` subcommands, their options and handlers;
* `conversion`: the conversion run (both models translated, audited, and placed only when faithful);
* `report`: an audit as text, its verdict, and the parity cost its precision predicts;
* `cost`: that cost, predicted from the fp16 emulation on a few frames of the demo data.
"""
