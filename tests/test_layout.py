"""The compiler's layout stays the way docs/architecture.md describes: small modules, imports at the top
(a module's dependencies are visible, and the import graph is the real one), no cycles among its modules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "unlearnspec"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(modules imported at module level outside ``if TYPE_CHECKING``, function-level unlearnspec imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    inner: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            fn = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            tc = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module:
                # `from a.b import c`: module a.b.c when c is a module, else a.b (resolved by the caller)
                names = [f"{child.module}:{a.name}" for a in child.names]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            for n in names:
                if n.startswith("unlearnspec"):
                    if fn:
                        inner.append((child.lineno, n))
                    elif not tc:
                        top.add(n)
            visit(child, fn, tc)

    visit(tree, False, False)
    return top, inner


def test_no_module_is_longer_than_600_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"split these along their concerns: {long}"


def test_the_compiler_and_the_catalog_import_at_module_level() -> None:
    found = {str(p.relative_to(ROOT)): inner for folder in ("compiler", "catalog")
             for p in (PACKAGE / folder).rglob("*.py") if (inner := imports(p)[1])}
    assert not found, found


def test_no_import_cycle_among_compiler_and_catalog_modules() -> None:
    files = [p for folder in ("compiler", "catalog") for p in (PACKAGE / folder).rglob("*.py")]
    names = {module_name(p) for p in files}

    def target(n: str) -> str:
        module, _, name = n.partition(":")
        return f"{module}.{name}" if f"{module}.{name}" in names else module

    graph = {module_name(p): {target(n) for n in imports(p)[0]} & names - {module_name(p)} for p in files}
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join([*path[path.index(n):], n])
            if n not in state:
                walk(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)


def test_the_catalog_is_the_bottom_layer() -> None:
    for p in (PACKAGE / "catalog").rglob("*.py"):
        outside = {n for n in imports(p)[0] if not n.startswith("unlearnspec.catalog")}
        assert not outside, (p.name, outside)
