"""pytest plugin: `pytest --parity-config FILE [--backend NAME ...]` makes one test per backend x audio.

With pytest-xdist, `pytest -n auto --parity-config FILE` runs each backend's tests in one of the
workers; the reference of each audio is computed once for all of them (the reference cache and its
lock) and their records are merged into one results.json.

Also `--benchmark`: tests that use pytest-benchmark's `benchmark` fixture are deselected in a plain
run and run only with this flag. JUnit XML comes from pytest's own `--junitxml`. `--parity-gate
BASELINE` runs `synctalk-parity gate` on the session's results.json when every test has run (the
benchmarks too with `--benchmark`): a regression fails the session and the gate's lines close the
terminal summary.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from harness.backends.base import RunInputs
from harness.text.tables import fmt_number
from reference.stages import in_stage_order

PLATFORM_SKIP = "not on this platform"
PARTS = ".parts"  # under [run].output: <run id>/<worker>.json, each pytest-xdist worker's records
RUN_KEY = "synctalk_parity_run"  # the run id the controller gives its workers
SESSION = pytest.StashKey["ParitySession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synctalk-parity")
    group.addoption("--parity-config", metavar="TOML", help="turn a parity config into one test per backend x audio")
    group.addoption("--backend", action="append", metavar="NAME", help="only this backend of the parity config")
    group.addoption("--parity-frames", type=int, metavar="N", help="override [data].frames of the parity config")
    group.addoption("--benchmark", action="store_true", help="run the benchmark tests (deselected otherwise)")
    group.addoption("--parity-gate", metavar="BASELINE",
                    help="after the tests (the benchmarks with --benchmark), gate the --parity-config run's "
                         "results.json against BASELINE (a results.json, or branch:NAME of the history store): "
                         "a regression fails the session")
    group.addoption("--parity-gate-store", metavar="PATH", help="the history store that branch:NAME reads")
    group.addoption("--parity-gate-markdown", metavar="FILE", help="also write the gate's table as markdown")
    group.addoption("--parity-gate-max-background", type=float, metavar="SHARE",
                    help="the gate compares speed only when other processes used at most this share of the CPU "
                         "(default 0.1, as `synctalk-parity gate --max-background`)")
    group.addoption("--parity-gate-noise", type=float, metavar="R",
                    help="the run-to-run noise of speed on this machine (as `synctalk-parity gate --noise`; "
                         "unknown by default against a results file, and one run a side is then not gated on speed)")


class ParityFailure(Exception):
    """A backend x audio run that failed its thresholds or could not run."""


class ParitySession:
    """Runs the reference once per audio and each backend when its test runs; writes results.json (a
    pytest-xdist worker writes its part, which the controller merges: `merge_parts`)."""

    def __init__(self, config_path: str, only: list[str] | None, frames: int | None,
                 worker: tuple[str, str] | None = None) -> None:
        from harness.runs.config import load_config
        from harness.runs.parity import (
            audio_files,
            audio_names,
            golden_audios,
            models_folder,
            start_results,
        )
        from reference.errors import ParityError
        try:
            self.cfg = load_config(config_path, only=only, frames=frames)
            self.models = models_folder(self.cfg)
            self.audios = audio_files(self.cfg)
            self.results = start_results(self.cfg, self.models, self.audios)
            self.goldens = golden_audios(self.cfg, self.results["inputs"])
        except ParityError as exc:
            raise pytest.UsageError(f"--parity-config: {exc}") from None
        from harness.runs.parity import REFERENCE_DIR, unique_names
        from harness.verdicts.results import audio_labels
        self.worker = worker[1] if worker else None
        self.path = (self.cfg.output / PARTS / worker[0] / f"{worker[1]}.json" if worker
                     else self.cfg.output / "results.json")
        self.audio_dirs = dict(zip(self.audios, unique_names([a.stem for a in self.audios])))
        self.labels = dict(zip(self.audios, audio_labels(self.audios)))
        self.names = dict(zip(self.audios, audio_names(self.cfg)))
        self.backend_dirs = dict(zip((s.name for s in self.cfg.backends),
                                     unique_names([s.name for s in self.cfg.backends], reserved=(REFERENCE_DIR,))))
        self.references: dict = {}
        self.ref_mouths: dict = {}  # audio name -> the reference's mouth thumbnails
        self.cand_mouths: dict = {}  # backend -> audio name -> its mouth thumbnails

    def inputs(self, audio: Path, folder: str) -> RunInputs:
        """The inputs of one run, in a fresh work folder of its own (`folder`: the reference's or the
        backend's, from `backend_dirs`; a worker's reference folder is its own)."""
        from harness.runs.parity import fresh_dir
        workdir = fresh_dir(self.cfg.output / "work" / self.audio_dirs[audio] / folder)
        return RunInputs(self.cfg.source, self.cfg.source_kind, audio, self.models, self.cfg.frames, workdir,
                         self.names[audio])

    def reference(self, audio: Path):
        """The reference of `audio`, once per session: a golden, the cache's entry, or computed."""
        from harness.runs.parity import REFERENCE_DIR, reference_of
        if audio not in self.references:
            folder = REFERENCE_DIR + (f"-{self.worker}" if self.worker else "")
            ref, entry = reference_of(self.cfg, self.results, self.audios.index(audio), self.inputs(audio, folder),
                                      self.goldens, progress=False)
            entry = {"audio": self.labels[audio], **entry, **({"worker": self.worker} if self.worker else {})}
            self.results.setdefault("reference", []).append(entry)
            self.references[audio] = ref
            self.ref_mouths[self.labels[audio]] = ref.mouths
        return self.references[audio]

    def record(self, spec, audio: Path) -> dict:
        """Run one backend x audio (the reference of that audio first, once), with the diagnosis of
        [run].explain; the backend's last audio also judges its audio dependence across the matrix."""
        import numpy as np

        from harness.runs.parity import judge_audio_dependence, run_backend
        ref = self.reference(audio)
        mouths: list = []
        record = run_backend(spec, ref, self.inputs(audio, self.backend_dirs[spec.name]),
                             self.labels[audio], self.cfg.output, progress=False, mouths=mouths, explain=self.cfg.explain)
        if mouths:
            self.cand_mouths.setdefault(spec.name, {})[self.labels[audio]] = np.stack(mouths)
        self.results["runs"].append(record)
        if audio == self.audios[-1]:
            judge_audio_dependence(self.results["runs"], {spec.name: self.cand_mouths.get(spec.name, {})},
                                   self.ref_mouths)
        self.write()
        return record

    def write(self, finished: bool = False) -> None:
        """results.json (or this worker's part), marked complete when `finished`."""
        from harness.verdicts.results import write_results
        self.results["partial"] = not finished
        write_results(self.results, self.path)


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
    if record.get("findings"):
        from harness.diagnosis.evidence.findings import finding_lines
        lines += [f"  finding: {text}" for text in finding_lines(record["findings"])]
    features = record.get("features", {})
    for stage in in_stage_order(features):
        drift = features[stage]
        lines.append(f"  stage {stage}: " + (drift["error"] if "error" in drift
                                             else f"max abs {num(drift['max_abs'])}, cosine {num(drift['cosine'])}"))
    return "\n".join(lines)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist (`-n N`) and a parity config, the controller sends each backend's tests to one
    worker (a backend's audio-dependence check needs all its audios) and merges the workers' records
    into one results.json at the end. Without `--benchmark` pytest-benchmark is off (its tests are
    deselected), so a parallel run does not warn that it disabled them; with it, a parallel run is
    refused (timings of tests that share the cores with other workers mean nothing)."""
    if config.getoption("--benchmark"):
        if getattr(config.option, "numprocesses", None):
            raise pytest.UsageError("--benchmark measures speed: run it alone, without pytest-xdist (-n 0)")
    elif hasattr(config.option, "benchmark_disable"):
        config.option.benchmark_disable = True
    if config.getoption("--parity-gate") and not config.getoption("--parity-config"):
        raise pytest.UsageError("--parity-gate gates the results.json of a --parity-config run: give --parity-config")
    if not config.getoption("--parity-config") or not getattr(config.option, "numprocesses", None) \
            or hasattr(config, "workerinput"):
        return
    dist = config.getoption("dist")
    if dist not in ("load", "loadgroup"):
        raise pytest.UsageError(f"--parity-config with --dist {dist}: a backend's audios would run in different "
                                "workers, and its audio-dependence check needs them together; leave --dist out")
    config.pluginmanager.register(PartsMerger(config), "synctalk-parity-merger")


class PartsMerger:
    """The pytest-xdist controller's side: schedules by backend, names this run's parts folder and merges
    it when the run ends."""

    def __init__(self, config: pytest.Config) -> None:
        import uuid

        from harness.runs.config import load_config
        from reference.errors import ParityError
        try:
            self.cfg = load_config(config.getoption("--parity-config"), only=config.getoption("--backend"),
                                   frames=config.getoption("--parity-frames"))
        except ParityError as exc:
            raise pytest.UsageError(f"--parity-config: {exc}") from None
        self.run_id = uuid.uuid4().hex[:12]
        self.summary = ""

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        from xdist.scheduler import LoadScopeScheduling

        class ByBackend(LoadScopeScheduling):
            """A parity config's tests of one backend (``cfg.toml::name[audio]``) form one unit of work;
            every other test is a unit of its own, as with ``--dist load``."""

            def _split_scope(self, nodeid: str) -> str:
                path, _, name = nodeid.partition("::")
                return f"{path}::{name.rsplit('[', 1)[0]}" if path.endswith(".toml") and name else nodeid

        return ByBackend(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[RUN_KEY] = self.run_id

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        folder = self.cfg.output / PARTS / self.run_id
        merged = merge_parts(folder, [s.name for s in self.cfg.backends])
        if merged is not None:
            from harness.verdicts.results import write_results
            path = write_results(merged, self.cfg.output / "results.json")
            self.summary = (f"{len(merged['runs'])} runs of {len(list(folder.glob('*.json')))} workers merged "
                            f"into {path}")
            if not merged["partial"]:
                gate_session(session, path)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # when no other run's parts are there

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.summary:
            terminalreporter.write_line(f"synctalk-parity: {self.summary}")


def merge_parts(folder: Path, backends: list[str]) -> dict | None:
    """One results document from the workers' parts in `folder` (None without any): the runs in the config's
    order (audio by audio, backend by backend), every worker's reference entries, partial if any part is."""
    from harness.verdicts.results import audio_labels, read_results
    parts = [read_results(path) for path in sorted(folder.glob("*.json"))]
    if not parts:
        return None
    merged = dict(parts[0])
    audios = audio_labels([Path(a["path"]) for a in merged["inputs"]["audio"]])

    def order(entry: dict) -> tuple:
        audio = audios.index(entry["audio"]) if entry["audio"] in audios else len(audios)
        return audio, backends.index(entry["backend"]) if entry.get("backend") in backends else -1

    merged["runs"] = sorted((run for part in parts for run in part["runs"]), key=order)
    merged["reference"] = sorted((entry for part in parts for entry in part.get("reference", [])), key=order)
    merged["partial"] = any(part["partial"] for part in parts)
    return merged


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if not config.getoption("--benchmark"):
        deselected = [item for item in items if "benchmark" in getattr(item, "fixturenames", ())]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item not in deselected]
    path = config.getoption("--parity-config")
    if not path:
        return
    worker = getattr(config, "workerinput", None)
    parity = ParitySession(path, config.getoption("--backend"), config.getoption("--parity-frames"),
                           (worker[RUN_KEY], worker["workerid"]) if worker and RUN_KEY in worker else None)
    config.stash[SESSION] = parity
    items.extend(ParityFile.from_parent(session, path=parity.cfg.path.resolve(), parity=parity).collect())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """results.json (or a worker's part) marked complete, unless the run was interrupted; then, without
    pytest-xdist, the gate (`--parity-gate`)."""
    parity = session.config.stash.get(SESSION, None)
    if parity is not None and parity.results["runs"]:
        parity.write(finished=exitstatus != pytest.ExitCode.INTERRUPTED)
        if parity.worker is None and exitstatus != pytest.ExitCode.INTERRUPTED:
            gate_session(session, parity.path)


GATE = pytest.StashKey[str]()  # the gate's text, for the terminal summary


def gate_session(session: pytest.Session, results: Path) -> None:
    """With --parity-gate: the gate of `results` against the baseline; a regression, or nothing to compare,
    fails the session (exit 1)."""
    config = session.config
    against = config.getoption("--parity-gate")
    if not against:
        return
    from harness.history.cli import run_gate
    from harness.history.gate import GateSettings
    from reference.errors import ParityError
    store = config.getoption("--parity-gate-store")
    busy, noise = config.getoption("--parity-gate-max-background"), config.getoption("--parity-gate-noise")
    settings = GateSettings(noise=noise) if busy is None else GateSettings(max_background=busy, noise=noise)
    try:
        result, described = run_gate([results], [against], Path(store) if store else None, settings)
    except ParityError as exc:
        config.stash[GATE] = f"gate: cannot run: {exc}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    config.stash[GATE] = result.text(described)
    if config.getoption("--parity-gate-markdown"):
        Path(config.getoption("--parity-gate-markdown")).write_text(result.markdown(described))
    if result.exit_code:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    text = config.stash.get(GATE, None)
    if text is not None:
        terminalreporter.section("synctalk-parity gate")
        for line in text.splitlines():
            terminalreporter.write_line(line)


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
