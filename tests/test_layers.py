"""The package's import structure: no circles, and dependencies that point down only.

Read with `ast` from the source (module level and inside functions alike); nothing is
imported, so a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import modelaudit

ROOT = Path(modelaudit.__file__).parent
#: Lower layers may never import higher ones (prefixes of dotted module names).
FORBIDDEN = {
    "modelaudit.findings": ("modelaudit.",),
    "modelaudit.budget": (
        "modelaudit.engine",
        "modelaudit.scanners",
        "modelaudit.formats",
        "modelaudit.fetchers",
    ),
    "modelaudit.formats": ("modelaudit.engine", "modelaudit.scanners", "modelaudit.fetchers"),
    "modelaudit.rules": ("modelaudit.engine", "modelaudit.scanners", "modelaudit.fetchers"),
    "modelaudit.scanners": ("modelaudit.engine", "modelaudit.fetchers", "modelaudit.reporters"),
    "modelaudit.reporters": ("modelaudit.engine", "modelaudit.scanners", "modelaudit.fetchers"),
    "modelaudit.fetchers": ("modelaudit.engine", "modelaudit.scanners", "modelaudit.reporters"),
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = ["modelaudit", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            # A submodule importing its own package's __init__ is how re-exports work.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_graph_was_read() -> None:
    assert "modelaudit.engine.dispatch" in GRAPH
    assert "modelaudit.scanners.registry" in GRAPH["modelaudit.engine.dispatch"]


def test_no_import_circle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert circles == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_dependencies_point_down(layer: str) -> None:
    bad = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name == layer or name.startswith(layer + ".")
        for target in targets
        if target.startswith(FORBIDDEN[layer])
    )
    assert bad == []


def test_rule_catalogue_loads_without_any_scanner() -> None:
    """SARIF and `modelaudit rules` need every rule while the parent imports no scanner."""
    import subprocess
    import sys

    code = (
        "import sys, modelaudit.rules as r\n"
        "assert not [m for m in sys.modules if m.startswith('modelaudit.scanners')], 'scanners'\n"
        "ids = set(r.RULES)\n"
        "print(len(ids), all(i in ids for i in ('MA0001', 'MA1001', 'MA2001', 'MA3001',"
        " 'MA4000', 'MA4200', 'MA9001')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, complete = out.stdout.split()
    assert complete == "True"
    assert int(count) > 80
