"""The import graph of the project's packages: no cycle, the reference stands alone, and the reference
run imports no slow package it does not use. (The layers above the reference are import-linter's
contract in pyproject.toml, checked by tests/test_architecture.py.)

For the graph every module of reference/, harness/, fixtures/ and reports/ is parsed with `ast`
(nothing is imported), and every import of a project module is an edge, function-level ones
included: an import inside a function still makes the two modules depend on each other. The slow
packages are looked for in the sys.modules of a fresh interpreter that imported the reference run.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reference", "harness", "fixtures", "reports")


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the project's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` stands for: itself, or the closest enclosing module that exists."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that `module` imports anywhere in its file (top level or inside functions)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import name`: name may be a submodule of pkg, else an attribute of pkg
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                out.add(target)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_path(graph, set(c)) for c in components]


def _cycle_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A closed path through `component`, starting at its first module: a -> b -> ... -> a."""
    start = min(component)
    parents = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return [start] + path[::-1][1:] + [start]
            if w not in parents:
                parents[w] = v
                queue.append(w)
    return sorted(component)


def test_the_graph_sees_top_level_function_level_and_relative_imports(tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "__init__.py").write_text("")
    (tmp_path / "reference" / "a.py").write_text("import numpy\nfrom reference import b\n")
    (tmp_path / "reference" / "b.py").write_text("def f():\n    from .c import g\n")
    (tmp_path / "reference" / "c.py").write_text("from reference.a import thing\nimport harness.x\n")
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "x.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["reference.a"] == {"reference.b"}
    assert graph["reference.b"] == {"reference.c"}
    assert graph["reference.c"] == {"reference.a", "harness.x"}
    assert find_cycles(graph) == [["reference.a", "reference.b", "reference.c", "reference.a"]]


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("forbidden", ["fixtures", "harness"])
def test_the_reference_imports_nothing_from(forbidden):
    graph = import_graph()
    leaks = sorted(f"{m} imports {t}" for m, targets in graph.items() if m.split(".")[0] == "reference"
                   for t in targets if t.split(".")[0] == forbidden)
    assert leaks == [], f"the reference depends on {forbidden}/:\n" + "\n".join(leaks)


# Heavy packages the canonical run does not use; each costs 0.1-0.7 s of every command's start-up.
SLOW_IMPORTS = ("onnx", "scipy.signal", "scipy.stats", "openvino", "matplotlib", "selenium")


@pytest.mark.parametrize("entry", ["reference.pipeline", "reference.infer harness.cli"])
def test_the_reference_run_imports_no_slow_package(entry):
    """What `infer` imports (the pipeline, the CLI module and its parser, with every subcommand's
    options) leaves the slow packages out of sys.modules."""
    code = (f"import sys\nfor name in {entry.split()!r}: __import__(name)\n"
            "if 'harness.cli' in sys.modules: sys.modules['harness.cli'].build_parser()\n"
            f"print(' '.join(m for m in {SLOW_IMPORTS!r} if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [], f"import {entry} pulls in {run.stdout.split()} (import it where it is used)"


def test_the_slow_import_check_sees_an_import():
    code = "import reference.pipeline, sys, scipy.signal\nprint('scipy.signal' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.stdout.strip() == "True", run.stderr
