"""Client kinds (`harness.measure.run.kinds.ClientKind`): one registry names them, the
scenario's list of names agrees with it, the driver reaches the browser only through it,
and each kind opens and reports on its clients from a `ShardPlan` (no sockets, no Chromium)."""

from __future__ import annotations

import pytest
from support import ROOT, NoServer
from test_layout import imported_modules

from clients.asyncio_io import AsyncStreamClient
from clients.interface import ClientSettings
from errors import ScenarioError
from harness.measure.browser.capability import CLIENTS
from harness.measure.browser.client import BROWSER, BrowserStreamClient
from harness.measure.run.client_kinds import CLIENT_KINDS, client_kind
from harness.measure.run.kinds import ShardPlan
from harness.measure.run.python_clients import PYTHON, PinnedClient
from harness.measure.run.window import Window
from transports import TRANSPORTS


def plan(servers: int, shards: int = 2, concurrency: int = 8) -> ShardPlan:
    settings = tuple(ClientSettings(f"http://127.0.0.1:{k + 1}") for k in range(servers))
    return ShardPlan("sse", settings, shards, concurrency, 0, TRANSPORTS)


def test_one_registry_names_every_kind_and_the_scenario_agrees() -> None:
    assert tuple(CLIENT_KINDS) == CLIENTS == ("python", "browser")
    assert all(kind.name == name for name, kind in CLIENT_KINDS.items())
    assert client_kind("browser") is BROWSER and client_kind("python") is PYTHON
    with pytest.raises(ScenarioError, match="unknown client 'chrome'; allowed: python, browser"):
        client_kind("chrome")


def test_the_driver_and_its_parts_import_no_browser_code() -> None:
    """Only the registry of client kinds knows the browser's module."""
    measure = ROOT / "harness" / "measure"
    parts = [measure / "driver.py", measure / "client_processes.py"]
    parts += [p for p in (measure / "run").glob("*.py") if p.name != "client_kinds.py"]
    for path in parts:
        browser = {m for m in imported_modules(path) if m.startswith("harness.measure.browser")}
        assert not browser, f"{path.relative_to(ROOT)} imports {sorted(browser)}"


def test_python_clients_one_per_shard_pinned_when_there_are_several_servers() -> None:
    one = PYTHON.open(plan(servers=1))
    assert len(one) == 2 and all(isinstance(c, AsyncStreamClient) for c in one)
    pinned = PYTHON.open(plan(servers=2, shards=4))
    assert all(isinstance(c, PinnedClient) for c in pinned)
    assert [c.server for c in pinned] == [0, 1, 0, 1]  # type: ignore[attr-defined]
    assert PYTHON.many_processes and not BROWSER.many_processes


def test_browser_clients_one_per_page_of_one_server() -> None:
    pages = BROWSER.open(plan(servers=1, concurrency=8))
    assert len(pages) == 2 and all(isinstance(c, BrowserStreamClient) for c in pages)
    with pytest.raises(ScenarioError, match="reads from one server"):
        BROWSER.open(plan(servers=2))


def test_without_a_browser_session_the_window_cpu_stands() -> None:
    window = Window(NoServer(), start_ns=1, end_ns=2, client_cpu_s=0.25)
    for kind in CLIENT_KINDS.values():
        report = kind.report([], window)
        assert (report.client_cpu_s, report.browser) == (0.25, None)
