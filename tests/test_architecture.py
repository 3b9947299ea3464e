"""The layers of docs/architecture.md, as pyproject.toml's import-linter contract states them: an import
only points down, with no exception listed; an upward import breaks the contract."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "reports", "fixtures", "reference")
LINT = Path(sys.executable).parent / "lint-imports"


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_contract_has_no_exceptions_and_names_every_package():
    (contract,) = _contracts()
    assert contract["type"] == "layers"
    assert not contract.get("ignore_imports") and not contract.get("unmatched_ignore_imports_alerting")
    named = {part.strip() for layer in contract["layers"] for part in layer.replace(":", "|").split("|")}
    top = {p.name for p in (ROOT / "harness").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    top |= {p.stem for p in (ROOT / "harness").glob("*.py") if p.stem != "__init__"}
    assert {f"harness.{name}" for name in top} <= named, "every harness package and root module has its layer"
    assert set(PACKAGES) - {"harness"} <= named


def test_imports_point_down():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "golden"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_upward_import_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    low = root / "reference" / "errors.py"
    low.write_text(low.read_text() + "\nfrom harness.runs import parity  # noqa: E402,F401\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "reference is not allowed to import harness" in result.stdout
    assert "reference.errors -> harness.runs.parity" in result.stdout


def test_siblings_of_one_layer_stay_apart(tmp_path):
    root = _copy(tmp_path)
    text = root / "harness" / "text" / "tables.py"
    text.write_text(text.read_text() + "\nfrom harness.system import procfs  # noqa: E402,F401\n")
    result = _lint(root)
    assert result.returncode != 0 and "harness.text.tables -> harness.system.procfs" in result.stdout
