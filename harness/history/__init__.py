"""Parity and speed over time: a store of runs per commit and machine, and a gate between two runs.

- `snapshot`: what a later comparison needs of one run record of a results.json or bench.json
  (verdict, metrics per region, feature drift, the bill of deviations, speed and per-frame latencies),
  with the machine's fingerprint: a `Snapshot`;
- `store`: the SQLite history (`history add`), safe under concurrent writers, read with keyword filters
  (`load_runs`);
- `stats`: the speed test (Mann-Whitney U on per-frame latencies, the Hodges-Lehmann change of the
  median with its confidence interval);
- `gate`: like-with-like comparison of a run against its baseline, each regression and improvement
  a `Change` named with before and after (`synctalk-parity gate`);
- `baseline`: a run's baseline on a branch of the store (`gate --against branch:NAME`, the history page);
- `cli`: the `history add` and `gate` commands.

The history page (`synctalk-parity history report`) is rendered by `reports.history`.
"""
