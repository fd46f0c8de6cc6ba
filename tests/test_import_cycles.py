"""No import cycle among unlearnspec's modules, and the layer contracts hold (docs/architecture.md).

The import graph comes from grimp (the library import-linter is built on), which reads every module's
imports statically, including the imports inside functions (imports under ``if TYPE_CHECKING:`` are
left out: they never run, so they cannot form a cycle at import time); the cycles are found with Tarjan's
strongly-connected-components algorithm. A cycle is a strongly connected component of more than one
module (or a module importing itself).

Importing ``a.b.c`` first runs the packages ``a`` and ``a.b``: an import therefore also reaches the
enclosing packages of what it names (:func:`runtime_edges`), except those that enclose the importer, which
are already being imported. Without that, ``lm_training -> methods.data`` hid the cycle
``lm_training -> methods (its __init__) -> loading -> builtin_model -> lm_training``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules deep at most)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                out.append(sorted(component))
    return out


def ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def runtime_edges(direct: dict[str, set[str]]) -> dict[str, set[str]]:
    """The modules each module's imports run: what it names, and the enclosing packages of those that do
    not enclose the importer itself."""
    out: dict[str, set[str]] = {}
    for m, targets in direct.items():
        own = {*ancestors(m), m}
        reach = set(targets)
        for t in targets:
            reach |= {a for a in ancestors(t) if a not in own and a in direct}
        out[m] = reach
    return out


def test_an_import_runs_the_packages_around_its_target() -> None:
    direct = {"p": {"p.loader"}, "p.loader": {"p.training"}, "p.training": {"p.pkg.data"},
              "p.pkg": {"p.loader", "p.pkg.data"}, "p.pkg.data": {"p.pkg.losses"}, "p.pkg.losses": set()}
    cycles = [c for c in strongly_connected(runtime_edges(direct)) if len(c) > 1]
    assert cycles == [["p.loader", "p.pkg", "p.training"]]  # p.training -> p.pkg.data runs p.pkg first
    assert [c for c in strongly_connected(direct) if len(c) > 1] == []  # the names alone hide it
    # a module's imports of its own package's modules do not count its package (already being imported)
    assert "p.pkg" not in runtime_edges(direct)["p.pkg.data"]


def test_tarjan_finds_a_known_cycle_and_no_false_one() -> None:
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    cycles = [c for c in strongly_connected(g) if len(c) > 1]
    assert cycles == [["a", "b", "c"]]
    assert [c for c in strongly_connected({"x": {"y"}, "y": set()}) if len(c) > 1] == []


def test_no_import_cycle_among_unlearnspec_modules() -> None:
    graph = grimp.build_graph("unlearnspec", exclude_type_checking_imports=True)
    edges = runtime_edges({m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules})
    cycles = [c for c in strongly_connected(edges) if len(c) > 1]
    cycles += [[m] for m, targets in edges.items() if m in targets]
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_layer_contracts_hold() -> None:
    """`lint-imports` (the README's test command runs it too) keeps every contract in pyproject.toml."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_readme_and_ci_run_the_same_command_including_lint_imports() -> None:
    def command(text: str) -> str:
        return next(line.strip() for line in text.splitlines()
                    if line.strip().startswith("scripts/setup") and "pytest" in line)

    readme = command((ROOT / "README.md").read_text(encoding="utf-8"))
    ci = command((ROOT / ".ci" / "run").read_text(encoding="utf-8"))
    assert readme == ci
    assert ".venv/bin/lint-imports" in ci.split(" && ")
