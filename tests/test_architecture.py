"""The shape of the package, read from its source: no import cycles, layers, SQL only where it belongs.

Imports are read with ``ast`` (including imports inside functions, which hide a cycle rather than
remove it); imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "statusd"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """Every module this file imports when it runs (statusd modules by full name, others by top name)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


GRAPH = {name: {m for m in runtime_imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_reader_sees_the_whole_package() -> None:
    assert {"statusd.store.db", "statusd.daemon.service", "statusd.sync.replicator"} <= GRAPH.keys()
    assert "statusd.store.configuration" in GRAPH["statusd.store.db"]  # a function-level import counts


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def package_cycles() -> list[list[str]]:
    # Parent packages import their children (``statusd.store`` → ``statusd.store.db``); that is how
    # Python packages work, not a cycle between modules, so edges into a package's own __init__
    # from its children are left out.
    graph = {
        name: {m for m in deps if not (MODULES[m].name == "__init__.py" and name.startswith(m + "."))}
        for name, deps in GRAPH.items()
    }
    return cycles(graph)


def test_no_import_cycles_inside_the_package() -> None:
    assert package_cycles() == []


def test_migrate_and_the_mirror_import_each_other_only_one_way() -> None:
    # They did both ways (function-level imports); the atomic file write now lives in its own module.
    assert "statusd.sync.migrate" in GRAPH["statusd.sync.mirror"]
    assert "statusd.sync.mirror" not in GRAPH["statusd.sync.migrate"]


# Layering (STYLE.md): cli → daemon → sync → store → models/errors/config.
FORBIDDEN = {
    "statusd.store": (
        "statusd.sync",
        "statusd.daemon",
        "statusd.cli",
        "statusd.client",
        "asyncpg",
        "mcp",
        "watchfiles",
    ),
    "statusd.sync": ("statusd.daemon", "statusd.cli", "statusd.client", "mcp", "mcp_types"),
    "statusd.models": ("statusd.store", "statusd.sync", "statusd.daemon"),
    "statusd.errors": ("statusd.",),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_only_import_downwards(layer: str) -> None:
    wrong = []
    for name, path in MODULES.items():
        if name == layer or name.startswith(layer + "."):
            for imported in runtime_imports(path):
                if any(
                    imported == f or imported.startswith(f if f.endswith(".") else f + ".") for f in FORBIDDEN[layer]
                ):
                    wrong.append(f"{name} imports {imported}")
    assert wrong == []


SQL = re.compile(
    r"\b(SELECT\s|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b|CREATE\s+(TABLE|INDEX|UNIQUE)\b|"
    r"PRAGMA\s|BEGIN\s+IMMEDIATE\b|WITH\s+RECURSIVE\b)"
)
SQL_HOMES = ("store/", "sync/pg_schema")  # pg_schema.py and its companions (pg_schema_v2.py, pg_schema_upkeep.py)


def files_with_sql() -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(SQL_HOMES):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            if is_text and SQL.search(node.value):
                found.add(rel)
    return found


def test_the_sql_finder_finds_sql() -> None:
    assert SQL.search("SELECT id FROM work_items") and SQL.search("INSERT OR REPLACE INTO meta")
    assert not SQL.search("select the next ready item")


def test_no_sql_outside_the_store_and_the_hub_schema() -> None:
    assert files_with_sql() == set()
