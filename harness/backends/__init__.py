"""Backends: one small module per engine behind the interface of `harness.backends.base`."""
