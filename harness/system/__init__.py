"""The machine and the process: /proc probes, memory, user folders, crash logs, caches."""
