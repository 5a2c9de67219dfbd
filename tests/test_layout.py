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
}


@pytest.mark.parametrize(
    "path", [p for p in modules_under("clients") if p.name not in CLIENT_IO], ids=lambda p: p.name
)
def test_exchange_logic_does_no_io(path: Path) -> None:
    """Each transport's exchange logic stays I/O-free, so both drivers run the same copy."""
    bad = {m for m in imported_modules(path) if m.split(".")[0] in ("httpx", "websockets")}
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
