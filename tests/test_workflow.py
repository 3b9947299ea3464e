"""The CI workflow (.github/workflows/parity.yml): its structure, and that every synctalk-parity call it
makes parses with our CLI (so renaming a flag cannot silently break CI)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the workflow")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "parity.yml"
SHELL_ENDS = {">>", ">", "|", "||", "&&", ";", "2>&1", "<"}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in _steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def _expand(text: str, matrix: dict) -> str:
    """${{ matrix.KEY }} replaced by the entry's value, any other expression by a placeholder."""
    text = re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: str(matrix.get(m.group(1), "")), text)
    return re.sub(r"\$\{\{.*?\}\}", "X", text)


def _cli_calls(script: str) -> list[list[str]]:
    """The argument lists of every `synctalk-parity ...` command in a shell script."""
    calls = []
    script = script.replace("\\\n", " ")
    for line in script.splitlines():
        tokens = shlex.split(line, comments=True)
        while "synctalk-parity" in tokens:
            tokens = tokens[tokens.index("synctalk-parity") + 1:]
            args = []
            for tok in tokens:
                if tok in SHELL_ENDS:
                    break
                args.append(tok)
            calls.append(args)
    return calls


def _all_calls(workflow: dict) -> list[tuple[str, list[str]]]:
    out = []
    for name, job in workflow["jobs"].items():
        entries = job.get("strategy", {}).get("matrix", {}).get("include") or [{}]
        for entry in entries:
            for step in _steps(job):
                if "run" in step:
                    out += [(f"{name}: {step.get('name', '')}", call) for call in _cli_calls(_expand(step["run"], entry))]
    return out


def test_matrix_runs_linux_and_apple_silicon(workflow):
    parity = workflow["jobs"]["parity"]
    include = parity["strategy"]["matrix"]["include"]
    assert {e["os"] for e in include} == {"ubuntu-latest", "macos-14"}
    assert parity["strategy"].get("fail-fast") is False
    configs = {e["os"]: e["config"] for e in include}
    assert configs == {"ubuntu-latest": "examples/linux.toml", "macos-14": "examples/apple_silicon.toml"}
    for entry in include:
        assert (ROOT / entry["config"]).is_file()
    assert parity["runs-on"] == "${{ matrix.os }}"
    assert "SYNCTALK_PARITY_MACHINE" in parity["env"]
    assert "SYNCTALK_PARITY_DATA" in workflow["env"]
    assert any("pip install -r requirements.lock" in s.get("run", "") for s in _steps(parity))
    assert _uses(parity, "actions/setup-python")


def test_mac_job_runs_only_in_process_backends_of_its_config(workflow):
    mac = next(e for e in workflow["jobs"]["parity"]["strategy"]["matrix"]["include"] if e["os"] == "macos-14")
    names = re.findall(r"--backend\s+(\S+)", mac["backends"])
    assert names == ["ort_cpu", "coreml_ane", "coreml_all", "coreml_strict", "coreml_native", "coreml_native_ane",
                     "fp16"]
    config = tomllib.loads((ROOT / mac["config"]).read_text())
    assert set(names) <= set(config["backends"])
    chosen = {n: b for n, b in config["backends"].items() if n in names}
    assert {b["kind"] for b in chosen.values()} <= {"onnxruntime", "fp16", "coreml"}
    # native Core ML beside the CoreML execution provider, and the provider once with strict placement
    assert [n for n, b in chosen.items() if b["kind"] == "coreml"] == ["coreml_native", "coreml_native_ane"]
    assert chosen["coreml_strict"]["provider"] == "coreml" and chosen["coreml_strict"]["strict_placement"] is True


def test_mac_job_converts_and_audits_the_core_ml_models_before_the_run(workflow):
    steps = _steps(workflow["jobs"]["parity"])
    names = [s.get("name", "") for s in steps]
    convert = next(s for s in steps if "convert coreml" in s.get("run", ""))
    assert convert["if"] == "runner.os == 'macOS'"
    assert names.index(convert["name"]) < names.index("Parity run")
    calls = _cli_calls(convert["run"])
    assert [c[0] for c in calls] == ["fixtures", "convert", "audit-model", "audit-model"]
    assert {Path(c[1]).name for c in calls if c[0] == "audit-model"} == {"Generator.mlpackage", "AudioEncoder.mlpackage"}


def test_results_are_uploaded_and_merged_into_one_report(workflow):
    parity, report = workflow["jobs"]["parity"], workflow["jobs"]["report"]
    upload = [u for u in _uses(parity, "actions/upload-artifact") if u["with"]["name"] == "parity-${{ matrix.name }}"]
    assert len(upload) == 1 and upload[0].get("if") == "always()"
    assert "results.json" in upload[0]["with"]["path"] and "worst_frames" in upload[0]["with"]["path"]
    assert upload[0]["with"]["name"].startswith("parity-")
    needs = report["needs"]
    assert (needs if isinstance(needs, list) else [needs]) == ["parity"]
    assert report.get("if") == "always()"  # a failing parity job still gets its report
    download = _uses(report, "actions/download-artifact")
    assert len(download) == 1 and download[0]["with"]["pattern"] == "parity-*"
    assert _uses(report, "actions/upload-artifact")[0]["with"]["path"].startswith("report")
    calls = [call for _, call in _all_calls({"jobs": {"report": report}}) if call[:1] == ["report"]]
    assert calls and all("--out" in c and "--junit" in c and "--markdown" in c for c in calls)
    scripts = " ".join(s.get("run", "") for s in _steps(report))
    assert '--markdown >> "$GITHUB_STEP_SUMMARY"' in scripts


def test_every_cli_call_parses(workflow):
    calls = _all_calls(workflow)
    assert {call[0] for _, call in calls} >= {"run", "report"}
    parser = build_parser()
    for where, call in calls:
        try:
            parser.parse_args(call)
        except SystemExit:
            pytest.fail(f"{where}: `synctalk-parity {' '.join(call)}` does not parse with harness.cli.build_parser()")


def _step(job: dict, fragment: str) -> dict:
    return next(s for s in _steps(job) if fragment in s.get("run", ""))


def test_each_machine_keeps_its_history_store_and_pull_requests_are_gated_against_main(workflow):
    parity = workflow["jobs"]["parity"]
    assert parity["permissions"].get("actions") == "read"  # gh run download of main's store
    fetch = _step(parity, "gh run download")
    assert "--branch main" in fetch["run"] and "parity-history-${{ matrix.name }}" in fetch["run"]
    gate = _step(parity, "synctalk-parity gate")
    assert "pull_request" in gate["if"] and "cancelled()" in gate["if"]
    (call,) = _cli_calls(_expand(gate["run"], {}))
    assert call[call.index("--against") + 1] == "branch:main" and "--markdown" in call and "--store" in call
    assert '>> "$GITHUB_STEP_SUMMARY"' in gate["run"] and "1) " in gate["run"] and "exit 1" in gate["run"]
    add = _step(parity, "synctalk-parity history add")
    store = call[call.index("--store") + 1]
    (add_call, report_call) = _cli_calls(_expand(add["run"], {}))
    assert add_call[add_call.index("--store") + 1] == store and "--branch" in add_call
    assert report_call[:2] == ["history", "report"]
    steps = [s.get("name") for s in _steps(parity)]
    assert steps.index(fetch["name"]) < steps.index(gate["name"]) < steps.index(add["name"])  # gated before filed
    (upload,) = [u for u in _uses(parity, "actions/upload-artifact") if "history" in u["with"]["name"]]
    assert upload["with"]["name"] == "parity-history-${{ matrix.name }}"
    assert upload["with"]["path"].split()[0].rstrip("/") == Path(store).parent.as_posix()
    assert steps.index(add["name"]) < steps.index(upload["name"])
