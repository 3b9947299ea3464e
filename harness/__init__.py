"""The harness: backends, metrics and verdicts, diagnosis, runs and the command line of synctalk-parity.

Its packages are layers (docs/architecture.md; pyproject.toml's import-linter contract keeps them):
`cli`, `cli_args`, `demo` and `plugin` on top, then `bench` and `history`, `runs`, `diagnosis`,
`verdicts`, `backends`, `coreml`, and `system` and `text` at the bottom, over `fixtures` and
`reference`.
"""
