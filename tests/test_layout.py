"""The folders are the architecture: the import rules between them hold (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from support import ROOT

FORBIDDEN_IN_WIRE = ("fastapi", "starlette", "httpx", "httpx_sse", "websockets", "uvicorn")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_under(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules_under("wire"), ids=lambda p: p.name)
def test_wire_is_pure(path: Path) -> None:
    """Codecs are bytes/str in, messages out: no web framework, HTTP client or server."""
    bad = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN_IN_WIRE}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "path",
    [p for p in modules_under("harness") if "cli" not in p.relative_to(ROOT / "harness").parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_harness_never_imports_its_cli(path: Path) -> None:
    bad = {m for m in imported_modules(path) if m == "harness.cli" or m.startswith("harness.cli.")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules_under("scenarios"), ids=lambda p: p.name)
def test_scenarios_hold_data_and_thin_shims(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 30, f"{path.relative_to(ROOT)} has {lines} lines; code belongs in harness/"


# Only the drivers and their I/O helpers touch httpx or websockets (`direct`, the live
# upstream read straight, is an exchange logic like every transport's; the asyncio driver's
# lean clients borrow httpx's default headers and websockets' User-Agent only).
CLIENT_IO = {
    "asyncio_io.py",
    "blocking_io.py",
    "httpx_io.py",
    "websockets_io.py",
    "h1_io.py",
    "ws_io.py",
    "h3_io.py",  # HTTP/3: an httpx transport over aioquic, for the asyncio driver
    "wt_io.py",  # WebTransport over aioquic, for the asyncio driver
    "sessions.py",  # the asyncio driver's conversations' WebSockets, kept between turns
}


@pytest.mark.parametrize(
    "path", [p for p in modules_under("clients") if p.name not in CLIENT_IO], ids=lambda p: p.name
)
def test_exchange_logic_does_no_io(path: Path) -> None:
    """Each transport's exchange logic stays I/O-free, so both drivers run the same copy."""
    bad = {
        m for m in imported_modules(path) if m.split(".")[0] in ("httpx", "websockets", "aioquic")
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


# Only the drivers and their I/O helpers read the clock, as each read returns.
CLOCK_READERS = CLIENT_IO | {"callbacks_asyncio.py", "callbacks_blocking.py"}


@pytest.mark.parametrize(
    "path",
    [p for p in modules_under("clients") if p.name not in CLOCK_READERS],
    ids=lambda p: p.name,
)
def test_exchange_logic_never_reads_the_clock(path: Path) -> None:
    """The drivers hand the time in with each reply (h11's rule), so the scripted driver can
    run any exchange logic from canned replies, stamps included."""
    bad = {m for m in imported_modules(path) if m.split(".")[0] in ("time", "datetime")}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


# --- no import cycle among project modules ---------------------------------------------------

# the project's own modules: what pyproject.toml packages, and the scenario shims
PROJECT_FILES = ("bench.py", "errors.py", "transports.py")
PROJECT_PACKAGES = ("wire", "servers", "clients", "harness", "scenarios")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every project module by its dotted name."""
    paths = [root / name for name in PROJECT_FILES if (root / name).exists()]
    paths += [p for package in PROJECT_PACKAGES for p in sorted((root / package).rglob("*.py"))]
    return {module_name(p, root): p for p in paths}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports: every import statement, at module level or
    in a function, under `if TYPE_CHECKING:` too; `from package import name` counts as an
    import of the submodule `package.name` when there is one, else of `package`."""

    def owner(name: str) -> str | None:  # the module that defines `name` (a.b.C -> a.b)
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(owner(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, `level - 1` packages up
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in modules else owner(base))
        graph[name] = {m for m in found if m is not None and m != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other round in a circle: each strongly
    connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = {stack.pop()}
            while v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) through each circle of modules."""
    return [cycle_in(graph, component) for component in circles(graph)]


def cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A cycle through the first module of `component`, by breadth-first search within it."""
    start = min(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(component)}")


def test_no_import_cycle_among_project_modules() -> None:
    """Every module can be imported on its own, and none needs a lazy import to dodge
    another: the import graph among project modules has no cycle."""
    graph = import_graph(project_modules())
    found = [
        f"{' -> '.join(cycle_in(graph, c))} (the circle: {', '.join(sorted(c))})"
        for c in circles(graph)
    ]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_cycle_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Function-level, TYPE_CHECKING, `from package import module` and relative imports
    all make edges, and a cycle through them is reported as a path."""
    files = {
        "harness/__init__.py": "",
        "harness/a.py": "from harness import b\n",
        "harness/b.py": "def f():\n    import harness.c\n",
        "harness/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from .d import X\n",
        "harness/d.py": "from harness.a import thing\nX = 1\n",
        "errors.py": "import os\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(project_modules(tmp_path))
    assert graph["harness.a"] == {"harness.b"} and graph["errors"] == set()
    assert import_cycles(graph) == [
        ["harness.a", "harness.b", "harness.c", "harness.d", "harness.a"]
    ]


MAX_MODULE_LINES = 500


def test_no_project_module_is_over_500_lines() -> None:
    """Small modules with one job: a module past 500 lines is doing several (tests aside)."""
    long = {
        str(path.relative_to(ROOT)): lines
        for path in project_modules().values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these by job: {long}"
