"""The transport registry is the one place a transport is named.

Two proofs: every consumer (server app, driver, blocking client, locust Users, CLI choices
and help, chart colours, the regression check's rules) sees every registered transport; and
a throwaway push transport ("echo", in tests/plugins/), registered on a copy of the
registry, streams end to end through the driver and the blocking client in every framing it
carries, and refuses the ones it cannot, without any other file knowing it
(docs/adding-a-transport.md shows its code and lists the parts a real one has).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import psutil
import pytest
import uvicorn
from plugins.echo_transport import ECHO
from starlette.types import ASGIApp
from support import ROOT

from bench import build_parser
from clients.asyncio_io import AsyncStreamClient
from clients.blocking_io import BlockingClient
from clients.interface import ClientSettings
from errors import ProtocolError, ScenarioError
from harness.analyse.metrics import summarize
from harness.ci.baseline import FigureStats
from harness.ci.check import rules_for
from harness.measure.driver import run_benchmark
from harness.measure.run.shards import open_shards
from harness.measure.scenario import Faults, Scenario, parse_transports, validated, validation
from harness.measure.server_process import bind_listener
from servers.app import create_app
from servers.run import uvicorn_config
from servers.sources.mock import MockSource, profile_for
from transports import FALLBACK_COLOUR, TRANSPORTS, Capabilities, Transport, load
from wire.framing import get_framing
from wire.messages import GenerationRequest

# --- a throwaway push transport (tests/plugins/echo_transport.py), on a copy of the registry

WITH_ECHO = TRANSPORTS.with_transport(ECHO)


@dataclass
class InProcessServer:
    """The app of an extended registry under uvicorn in a thread (the driver's server
    process only knows the registered transports)."""

    base_url: str

    def cpu_seconds(self) -> float:
        times = psutil.Process(os.getpid()).cpu_times()
        return float(times.user + times.system)

    def rss_bytes(self) -> int:
        return int(psutil.Process(os.getpid()).memory_info().rss)


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[InProcessServer]:
    sock = bind_listener("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert server.started, "the in-process server did not start within 10 s"
        yield InProcessServer(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def echo_server() -> Iterator[InProcessServer]:
    source = MockSource(profile_for("chat", ttft_ms=20, tokens_per_s=400, tokens_per_response=30))
    with serving(create_app(source, transports=WITH_ECHO)) as server:
        yield server


def test_a_transport_defined_in_a_test_streams_through_the_driver(
    echo_server: InProcessServer,
) -> None:
    scenario = Scenario(name="echo", transports=("echo",), requests=6, concurrency=3, warmup=1)
    phases = asyncio.run(run_benchmark(scenario, echo_server, transports=WITH_ECHO))
    assert [p.transport for p in phases] == ["echo"]
    summary = summarize(phases[0])
    assert summary.streams == 6 and summary.errors == 0
    assert summary.tokens_received == summary.tokens_emitted > 0
    assert summary.tokens_lost == 0 and summary.tokens_duplicated == 0
    assert summary.requests_per_stream == 1.0


@pytest.mark.parametrize("framing", ["json", "openai", "vercel-data", "langchain"])
def test_a_transport_defined_in_a_test_streams_through_the_blocking_client(
    echo_server: InProcessServer, framing: str
) -> None:
    settings = ClientSettings(base_url=echo_server.base_url, framing=framing)
    client = BlockingClient("echo", ECHO.exchange, settings)
    try:
        request = GenerationRequest(seed=4, stream_id=f"echo-blocking-{framing}")
        result = client.stream(request, time.perf_counter_ns())
    finally:
        client.close()
    assert result.error is None
    assert result.indices == list(range(len(result.indices))) and result.end_ns is not None
    assert result.end_tokens in (None, len(result.indices))  # a count, where the framing has one
    assert result.requests == 1 and result.bytes_received > 0


@pytest.mark.parametrize(
    ("framing", "says"),
    [
        ("raw", "echo carries framings with token boundaries, not raw"),
        ("vercel-ui", "framing vercel-ui cannot travel over echo; it travels over sse"),
        ("nope", "nope"),
    ],
)
def test_the_echo_server_refuses_a_framing_it_cannot_carry(
    echo_server: InProcessServer, framing: str, says: str
) -> None:
    reply = httpx.post(
        echo_server.base_url + "/test/echo", params={"framing": framing}, json={}, trust_env=False
    )
    assert reply.status_code == 400 and says in reply.json()["error"]


def test_the_extended_registry_leaves_the_default_one_alone() -> None:
    assert "echo" in WITH_ECHO and "echo" not in TRANSPORTS
    with pytest.raises(ValueError, match="already registered"):
        WITH_ECHO.with_transport(ECHO)


# --- every consumer sees every registered transport ----------------------------------------


@pytest.fixture(scope="module")
def locust_users() -> dict[str, dict[str, object]]:
    """The User classes locust finds in scenarios/locustfile.py (imported in a subprocess:
    locust monkey-patches the process that imports it)."""
    code = (
        "import json, scenarios.locustfile as f\n"
        "from locust import User\n"
        "users = {n: c for n, c in vars(f).items() if isinstance(c, type) and issubclass(c, User)"
        " and not c.abstract}\n"
        "print(json.dumps({c.transport: {'name': n, 'tags': sorted(c.tasks[0].locust_tag_set)}"
        " for n, c in users.items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def help_of(command: str) -> str:
    parser = build_parser()
    subparsers = next(
        a
        for a in parser._actions
        if isinstance(a, argparse._SubParsersAction) and a.dest == "command"
    )
    return subparsers.choices[command].format_help()


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
def test_every_consumer_knows_every_transport(
    transport: Transport, locust_users: dict[str, dict[str, object]]
) -> None:
    name = transport.name
    # the server mounts its router, or runs its own listener (the core's `running`)
    app = create_app(MockSource(profile_for("instant")))
    mounted = [getattr(r, "original_router", None) for r in app.routes]
    if transport.server is None:
        assert transport.listener is not None
        assert load(transport.listener) in TRANSPORTS.listeners()
    else:
        assert any(router is transport.router for router in mounted)
    # the driver makes its clients from the registry
    clients = open_shards(name, Scenario(), "http://127.0.0.1:9")
    assert all(isinstance(c, AsyncStreamClient) and c.transport == name for c in clients)
    # scenarios and the CLI accept it and name it in their help
    assert name in parse_transports("all") and name in Scenario().transports
    assert parse_transports(name) == (name,)
    for command in ("run", "load"):
        assert name in help_of(command).replace("\n", " ")
    # locust gets a generated User class, tagged with the name and the kind (not for a
    # transport over QUIC: locust's blocking clients have no QUIC client)
    if transport.quic:
        assert name not in locust_users
    else:
        assert locust_users[name] == {
            "name": f"{transport.title}User",
            "tags": sorted([name, transport.kind]),
        }
    # charts draw it in its own colour
    assert TRANSPORTS.colour(name) == transport.colour != FALLBACK_COLOUR
    # the regression check judges it by its kind
    stats = FigureStats(value=2.0, low=2.0, high=2.0, n=1)
    figures = {
        "requests_per_stream": stats,
        "added_delay_p50_ms": stats,
        "added_delay_mean_ms": stats,
    }
    chosen = {r.figure for r in rules_for(name, figures, 100.0)}
    assert ("added_delay_mean_ms" in chosen) == transport.interval_paced
    assert ("added_delay_p50_ms" in chosen) == (not transport.interval_paced)


def test_colours_are_distinct() -> None:
    colours = [t.colour for t in TRANSPORTS]
    assert len(set(colours)) == len(colours)


def test_the_server_index_lists_every_endpoint(echo_server: InProcessServer) -> None:
    index = httpx.get(echo_server.base_url + "/", trust_env=False).json()
    assert index["transports"] == {t.name: t.endpoint for t in WITH_ECHO}


def test_a_planned_drop_needs_transports_that_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Capabilities.resume` is read: a scenario refuses to drop a transport that says it
    cannot resume (the fault tests hold every transport that says it can to it)."""
    no_resume = Capabilities(resume=False, cancel_on_disconnect=True, browser=False)
    registry = TRANSPORTS.with_transport(replace(ECHO, name="stubborn", capabilities=no_resume))
    monkeypatch.setattr(validation, "TRANSPORTS", registry)
    faults = Faults(drop_at_token=3)
    with pytest.raises(ScenarioError, match="stubborn cannot resume"):
        validated(Scenario(transports=("sse", "stubborn"), faults=faults))
    validated(Scenario(transports=("sse",), faults=faults))


@pytest.mark.parametrize(
    ("framing", "transport", "message"),
    [
        (
            "vercel-ui",
            "chunked",
            "framing vercel-ui cannot travel over chunked; it travels over sse",
        ),
        ("vercel-data", "websocket", "cannot travel over websocket; it travels over chunked"),
        ("raw", "websocket", "raw cannot travel over websocket; it travels over sse, chunked"),
        ("langchain", "short_poll", "it travels over sse, chunked, websocket"),
        ("raw", "webhook", "raw cannot travel over webhook; it travels over sse, chunked"),
    ],
)
def test_which_transports_carry_a_framing_comes_from_their_carriages(
    framing: str, transport: str, message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        TRANSPORTS.framing_over(framing, transport)
    json_everywhere = TRANSPORTS.carrying(get_framing("json"))
    assert json_everywhere == TRANSPORTS.names()
    assert (
        TRANSPORTS.framing_over("openai", "chunked").encode_end("s", "m", 0, None)[-1] != "[DONE]"
    )
