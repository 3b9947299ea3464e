"""Command line, backends, metrics and runners of synctalk-parity."""
