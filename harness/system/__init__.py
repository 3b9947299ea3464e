"""The machine, the process and what every layer shares: /proc probes, memory, user folders, crash logs,
caches and registries.
"""
