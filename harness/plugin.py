"""pytest plugin: `pytest --parity-config FILE [--backend NAME ...]` makes one test per backend x audio.

Also `--benchmark`: tests that use pytest-benchmark's `benchmark` fixture are deselected in a plain
run and run only with this flag. JUnit XML comes from pytest's own `--junitxml`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.base import RunInputs, in_stage_order
from harness.tables import fmt_number

PLATFORM_SKIP = "not on this platform"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synctalk-parity")
    group.addoption("--parity-config", metavar="TOML", help="turn a parity config into one test per backend x audio")
    group.addoption("--backend", action="append", metavar="NAME", help="only this backend of the parity config")
    group.addoption("--parity-frames", type=int, metavar="N", help="override [data].frames of the parity config")
    group.addoption("--benchmark", action="store_true", help="run the benchmark tests (deselected otherwise)")


class ParityFailure(Exception):
    """A backend x audio run that failed its thresholds or could not run."""


class ParitySession:
    """Runs the reference once per audio and each backend when its test runs; writes results.json."""

    def __init__(self, config_path: str, only: list[str] | None, frames: int | None) -> None:
        from harness.config import load_config
        from harness.parity import audio_files, models_folder, start_results
        from reference.errors import ParityError
        try:
            self.cfg = load_config(config_path, only=only, frames=frames)
            self.models = models_folder(self.cfg)
            self.audios = audio_files(self.cfg)
            self.results = start_results(self.cfg, self.models, self.audios)
        except ParityError as exc:
            raise pytest.UsageError(f"--parity-config: {exc}") from None
        from harness.parity import REFERENCE_DIR, audio_labels, unique_names
        self.audio_dirs = dict(zip(self.audios, unique_names([a.stem for a in self.audios])))
        self.labels = dict(zip(self.audios, audio_labels(self.audios)))
        self.backend_dirs = dict(zip((s.name for s in self.cfg.backends),
                                     unique_names([s.name for s in self.cfg.backends], reserved=(REFERENCE_DIR,))))
        self.references: dict = {}
        self.ref_mouths: dict = {}  # audio name -> the reference's mouth thumbnails
        self.cand_mouths: dict = {}  # backend -> audio name -> its mouth thumbnails

    def inputs(self, audio: Path, folder: str) -> RunInputs:
        """The inputs of one run, in a fresh work folder of its own (`folder`: the reference's or the
        backend's, from `backend_dirs`)."""
        from harness.parity import fresh_dir
        workdir = fresh_dir(self.cfg.output / "work" / self.audio_dirs[audio] / folder)
        return RunInputs(self.cfg.source, self.cfg.source_kind, audio, self.models, self.cfg.frames, workdir)

    def record(self, spec, audio: Path) -> dict:
        """Run one backend x audio (the reference of that audio first, once), with the diagnosis of
        [run].explain; the backend's last audio also judges its audio dependence across the matrix."""
        import numpy as np

        from harness.parity import REFERENCE_DIR, judge_audio_dependence, run_backend, run_reference
        from harness.results import write_results
        if audio not in self.references:
            self.references[audio] = run_reference(self.inputs(audio, REFERENCE_DIR), progress=False)
            self.ref_mouths[self.labels[audio]] = self.references[audio].mouths
        mouths: list = []
        record = run_backend(spec, self.references[audio], self.inputs(audio, self.backend_dirs[spec.name]),
                             self.labels[audio], self.cfg.output, progress=False, mouths=mouths, explain=self.cfg.explain)
        if mouths:
            self.cand_mouths.setdefault(spec.name, {})[self.labels[audio]] = np.stack(mouths)
        self.results["runs"].append(record)
        if audio == self.audios[-1]:
            judge_audio_dependence(self.results["runs"], {spec.name: self.cand_mouths.get(spec.name, {})},
                                   self.ref_mouths)
        write_results(self.results, self.cfg.output / "results.json")
        return record


class ParityItem(pytest.Item):
    """One backend x audio of the parity config."""

    def __init__(self, *, spec, audio: Path, parity: ParitySession, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec, self.audio, self.parity = spec, audio, parity

    def runtest(self) -> None:
        record = self.parity.record(self.spec, self.audio)
        if record["status"] == "skipped":
            pytest.skip(f"{PLATFORM_SKIP}: {record['reason']}")
        if record["status"] != "passed" or record.get("errors"):
            raise ParityFailure(failure_message(record))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ParityFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.parity.cfg.path, None, f"parity: {self.spec.name} [{self.audio.name}]"


def failure_message(record: dict) -> str:
    """What failed, the thresholds and the key metrics, for a person reading the pytest output."""
    def num(value) -> str:
        return fmt_number(value, ".4g")

    lines = [f"backend {record['backend']} on {record['audio']}: {record['status'].upper()}"]
    if record.get("reason"):
        lines.append(f"  reason: {record['reason']}")
        if record.get("log_tail"):
            lines += ["  log tail:"] + [f"    {line}" for line in record["log_tail"].splitlines()[-10:]]
    for failure in record.get("failures", []):
        lines.append(f"  violated: {failure}")
    lines += [f"  error: {text}" for text in record.get("errors", [])]
    if record.get("thresholds"):
        lines.append("  thresholds: " + ", ".join(f"{k}={num(v)}" for k, v in record["thresholds"].items()))
    summary = record.get("summary", {})
    for region in ("full", "face", "mouth"):
        stats = summary.get(region, {})
        if stats:
            lines.append(f"  {region:6s} identical {num(stats['identical_pct']['mean'])} %, "
                         f"PSNR min {num(stats['psnr']['min'])} dB, SSIM min {num(stats['ssim']['min'])}, "
                         f"max abs {num(stats['max_abs']['max'])}")
    if record.get("diagnosis", {}).keys() - {"audio_dependence"}:
        from harness.diagnosis.explain import causes
        lines += [f"  cause: {text}" for text in causes(record)]
    features = record.get("features", {})
    for stage in in_stage_order(features):
        drift = features[stage]
        lines.append(f"  stage {stage}: " + (drift["error"] if "error" in drift
                                             else f"max abs {num(drift['max_abs'])}, cosine {num(drift['cosine'])}"))
    return "\n".join(lines)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if not config.getoption("--benchmark"):
        deselected = [item for item in items if "benchmark" in getattr(item, "fixturenames", ())]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item not in deselected]
    path = config.getoption("--parity-config")
    if not path:
        return
    parity = ParitySession(path, config.getoption("--backend"), config.getoption("--parity-frames"))
    items.extend(ParityFile.from_parent(session, path=parity.cfg.path.resolve(), parity=parity).collect())


class ParityFile(pytest.File):
    """The parity config as a pytest file node: its tests are the backend x audio items."""

    def __init__(self, *, parity: ParitySession, **kwargs) -> None:
        super().__init__(**kwargs)
        self.parity = parity

    def collect(self):
        for spec in self.parity.cfg.backends:
            for audio in self.parity.audios:
                yield ParityItem.from_parent(self, name=f"{spec.name}[{audio.stem}]", spec=spec, audio=audio,
                                             parity=self.parity)
