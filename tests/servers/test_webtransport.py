"""WebTransport's listener (servers/webtransport.py) on a real server, read by the real
client (clients/wt_io.py): what it refuses and how, the access rules read from the CONNECT,
the session's leaving, and its one-line start-up errors. The streams themselves (every
token, resume, a leave cancelled one grace later) are the registry-driven suites' tests
(tests/clients: end to end, faults)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ROOT, quic_ca, quic_files, serve, stack_args, webtransport_args

from clients import wt_io
from clients.exchange import Arrival
from clients.interface import ClientSettings, StreamResult
from errors import HTTPStatusFailed
from harness.measure.server_process import ServerProcess, start_server, stop_server
from servers.settings import SERVER_TOKEN_ENV
from servers.sources.spec import SourceSpec
from wire.messages import dumps, loads

SPEC = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=50, tokens_per_response=200)
TOKEN = "webtransport-token-7"


def settings_for(server: ServerProcess, token: str | None = None) -> ClientSettings:
    return ClientSettings(base_url=server.base_url, ca_file=quic_ca(), token=token)


@pytest.fixture(scope="module")
def wt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "webtransport", SPEC, "--resume-grace-s", "5")


async def opened(
    server: ServerProcess, path: str = "/v1/wt", **headers: str
) -> tuple[wt_io.WTConnection, StreamResult]:
    result = StreamResult("webtransport", "", 0)
    connection = await wt_io.open_webtransport(settings_for(server), path, result, headers)
    return connection, result


async def messages_until_end(connection: wt_io.WTConnection) -> list[str]:
    received = []
    while (arrival := await asyncio.wait_for(connection.protocol.receive(), 10)) is not None:
        assert isinstance(arrival, Arrival) and isinstance(arrival.data, str)
        received.append(arrival.data)
    return received


def test_a_bad_first_message_gets_an_error_and_the_stream_ends(wt_server: ServerProcess) -> None:
    async def go() -> list[str]:
        connection, result = await opened(wt_server)
        try:
            connection.protocol.send_text("not json")
            return await messages_until_end(connection)
        finally:
            await connection.close(result)

    received = asyncio.run(go())
    assert len(received) == 1 and "error" in loads(received[0])


def test_another_path_is_404(wt_server: ServerProcess) -> None:
    with pytest.raises(HTTPStatusFailed, match="HTTP 404 from WebTransport CONNECT /v1/nope"):
        asyncio.run(opened(wt_server, "/v1/nope"))


def test_a_foreign_origin_is_403_and_the_servers_own_page_is_admitted(
    wt_server: ServerProcess,
) -> None:
    with pytest.raises(HTTPStatusFailed, match="HTTP 403"):
        asyncio.run(opened(wt_server, origin="http://evil.example"))

    async def own_page() -> None:  # a page of the server's own origin, over TCP
        connection, result = await opened(wt_server, origin=wt_server.base_url)
        await connection.close(result)

    asyncio.run(own_page())


def test_with_tokens_a_session_needs_one(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(TOKEN + "\n")
    with pytest.MonkeyPatch.context() as env:
        env.delenv(SERVER_TOKEN_ENV, raising=False)
        server = start_server(
            SPEC,
            tmp_path / "server.log",
            extra_args=(*stack_args(), *webtransport_args(), "--token-file", str(token_file)),
        )
    try:

        async def session(token: str | None) -> None:
            result = StreamResult("webtransport", "", 0)
            settings = settings_for(server, token)
            connection = await wt_io.open_webtransport(settings, "/v1/wt", result)
            await connection.close(result)

        with pytest.raises(HTTPStatusFailed, match="HTTP 401"):
            asyncio.run(session(None))
        with pytest.raises(HTTPStatusFailed, match="HTTP 401"):
            asyncio.run(session("not-the-token"))
        asyncio.run(session(TOKEN))
    finally:
        stop_server(server)


def timeline_within(server: ServerProcess, stream_id: str, seconds: float) -> dict[str, Any]:
    """The stream's timeline once it is done, or as it is `seconds` from now."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=server.base_url, trust_env=False) as http:
        while True:
            timeline: dict[str, Any] = http.get(f"/v1/streams/{stream_id}/timeline").json()
            if timeline["done"] or time.monotonic() > deadline:
                return timeline
            time.sleep(0.02)


@pytest.mark.parametrize(("code", "cancelled"), [("clean", True), ("dropped", False)])
def test_a_clean_close_is_a_leave_and_a_dropped_one_waits_for_a_resume(
    wt_server: ServerProcess, code: str, cancelled: bool
) -> None:
    """A connection closed without an error: the client left for good (cancelled now); with
    one (a drop): the generation waits its 5 s resume grace."""
    stream_id = f"wt-close-{code}"

    async def leave() -> None:
        connection, result = await opened(wt_server)
        connection.protocol.send_text(dumps({"seed": 1, "stream_id": stream_id}))
        first = await connection.protocol.receive()
        assert first is not None
        error = wt_io.LEFT_CODE if code == "clean" else wt_io.DROPPED_CODE
        await connection.close(result, error)

    asyncio.run(leave())
    timeline = timeline_within(wt_server, stream_id, 2.0)  # 200 tokens take 4 s
    if cancelled:
        assert timeline["done"] is True and timeline["error"] == "cancelled: the client left"
    else:
        assert timeline["done"] is False


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servers.run", *stack_args(), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_taken_udp_port_and_a_lone_certificate_are_one_line() -> None:
    cert, key = quic_files()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = str(udp.getsockname()[1])
        taken = run_server("--port", port, "--webtransport-cert", cert, "--webtransport-key", key)
    assert taken.returncode == 2
    assert taken.stderr.strip().splitlines() == [
        f"servers.run: error: WebTransport answers on UDP port {port} of 127.0.0.1, the TCP "
        "port's number, and that port is taken (Address already in use): serve on another port"
    ]
    lone = run_server("--port", "0", "--webtransport-cert", cert)
    assert lone.returncode == 2
    assert lone.stderr.strip().splitlines() == [
        "servers.run: error: --webtransport-cert and --webtransport-key go together: give "
        "both or neither"
    ]


def test_a_request_on_a_stream_whose_session_ran_is_ignored(wt_server: ServerProcess) -> None:
    """A stream's id is used once: a second request on it after its stream ended starts
    nothing (a generation nobody could read)."""

    async def twice() -> list[str]:
        connection, result = await opened(wt_server)
        try:
            connection.protocol.send_text(dumps({"max_tokens": 3, "stream_id": "wt-once"}))
            received = await messages_until_end(connection)
            connection.protocol.send_text(dumps({"max_tokens": 3, "stream_id": "wt-twice"}))
            await asyncio.sleep(0.5)
            return received
        finally:
            await connection.close(result)

    received = asyncio.run(twice())
    assert loads(received[-1])["done"] is True
    with httpx.Client(base_url=wt_server.base_url, trust_env=False) as http:
        assert http.get("/v1/streams/wt-once/timeline").status_code == 200
        assert http.get("/v1/streams/wt-twice/timeline").status_code == 404
