"""The lean clients (`clients.h1_io`, `clients.ws_io`) under the benchmark's own event loop
(uvloop): the same tokens, requests, head bytes and wire bytes as httpx and the websockets
library, for every transport they serve; and the request serialisation, byte for byte."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from support import FAST_POLLS, serve

from clients import h1_io
from clients.asyncio_io import AsyncStreamClient
from clients.exchange import HTTPCall
from clients.interface import ClientSettings, StreamResult
from harness.measure import event_loop
from harness.measure.run.timelines import fetch_timelines
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from transports import TRANSPORTS
from wire.messages import GenerationRequest

LEAN_TRANSPORTS = ("short_poll", "long_poll", "sse", "chunked", "websocket")
SPEC = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=400, tokens_per_response=30)


@pytest.fixture(scope="module")
def lean_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "lean", SPEC)


def test_a_request_is_serialised_as_on_the_wire() -> None:
    call = HTTPCall(
        "POST", "/v1/sse", params={"framing": "json"}, json={"seed": 1}, headers={"X-A": "b"}
    )
    data = h1_io.request_bytes(call, "127.0.0.1:8000", {"authorization": "Bearer t"})
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/sse?framing=json HTTP/1.1"
    assert set(lines[1:]) == {
        "host: 127.0.0.1:8000",
        "authorization: Bearer t",
        "x-a: b",
        "content-type: application/json",
        "content-length: 10",
    }
    assert body == b'{"seed":1}'
    get = h1_io.request_bytes(HTTPCall("GET", "/v1/streams/x"), "h", {})
    assert get == b"GET /v1/streams/x HTTP/1.1\r\nhost: h\r\n\r\n"


def test_only_plain_http_1_1_takes_the_lean_client() -> None:
    assert h1_io.usable(ClientSettings("http://127.0.0.1:1"))
    assert not h1_io.usable(ClientSettings("https://127.0.0.1:1"))
    assert not h1_io.usable(ClientSettings("http://127.0.0.1:1", http2=True))


def run_both(base_url: str, transport: str) -> tuple[StreamResult, StreamResult]:
    """One stream through the lean client and one through httpx, on uvloop."""
    settings = ClientSettings(base_url, knobs=FAST_POLLS, max_connections=2)

    async def one(lean: bool, stream_id: str) -> StreamResult:
        logic = TRANSPORTS.get(transport).exchange
        client = AsyncStreamClient(transport, logic, replace(settings, lean_http=lean))
        assert (client.h1 is not None) is lean
        try:
            request = GenerationRequest(seed=7, stream_id=stream_id)
            return await asyncio.wait_for(client.stream(request, time.perf_counter_ns()), 20)
        finally:
            await client.aclose()

    async def both() -> tuple[StreamResult, StreamResult]:
        lean = await one(True, f"lean-{transport}-{time.time_ns()}")
        plain = await one(False, f"htpx-{transport}-{time.time_ns()}")  # same length
        return lean, plain

    return event_loop.run(both())


@pytest.mark.parametrize("transport", LEAN_TRANSPORTS)
def test_the_lean_client_counts_what_httpx_counts(
    lean_server: ServerProcess, transport: str
) -> None:
    lean, plain = run_both(lean_server.base_url, transport)
    assert lean.error is None and plain.error is None, (lean.error, plain.error)
    timelines = event_loop.run(fetch_timelines(lean_server.base_url, [lean.stream_id]))
    assert lean.texts == timelines[lean.stream_id].texts == plain.texts
    assert lean.indices == list(range(len(lean.texts))) and lean.end_ns is not None
    assert lean.http_version == plain.http_version  # HTTP/1.1; none on a WebSocket
    if transport in ("sse", "chunked", "websocket"):  # one request each: the same bytes
        for name in ("requests", "header_bytes", "bytes_sent", "bytes_received"):
            assert getattr(lean, name) == getattr(plain, name), name
    else:  # polls: as many as the timing needs; each the same size
        assert lean.bytes_sent / lean.requests == pytest.approx(
            plain.bytes_sent / plain.requests, rel=0.02
        )
        assert lean.header_bytes / lean.requests == pytest.approx(
            plain.header_bytes / plain.requests, rel=0.02
        )


@pytest.mark.parametrize("transport", ("short_poll", "long_poll", "sse", "chunked"))
def test_streams_one_after_another_reuse_one_keep_alive_connection(
    lean_server: ServerProcess, transport: str
) -> None:
    """Every request of four streams in a row (each poll, each stream) on one connection:
    the server keeps it alive, so the pool must too (it once asked httptools after the
    message was over, got False, and paid a new connection for every exchange)."""
    settings = ClientSettings(lean_server.base_url)

    async def run() -> tuple[list[StreamResult], int]:
        client = AsyncStreamClient(transport, TRANSPORTS.get(transport).exchange, settings)
        try:
            results = [await client.stream(GenerationRequest(seed=k), 0) for k in range(4)]
            assert client.h1 is not None
            return results, client.h1.connections_made
        finally:
            await client.aclose()

    results, made = event_loop.run(run())
    assert [r.error for r in results] == [None] * 4
    assert sum(r.requests for r in results) >= 4 and made == 1


@pytest.mark.parametrize("transport", ("sse", "chunked", "websocket"))
def test_a_dropped_and_resumed_stream_loses_nothing_on_the_lean_client(
    lean_server: ServerProcess, transport: str
) -> None:
    settings = ClientSettings(lean_server.base_url, max_connections=2, drop_at_token=5)

    async def run() -> StreamResult:
        client = AsyncStreamClient(transport, TRANSPORTS.get(transport).exchange, settings)
        try:
            request = GenerationRequest(seed=9, stream_id=f"drop-{transport}-{time.time_ns()}")
            return await asyncio.wait_for(client.stream(request, time.perf_counter_ns()), 20)
        finally:
            await client.aclose()

    result = event_loop.run(run())
    assert result.error is None and len(result.drops_ns) == 1 and result.requests == 2
    assert result.indices == list(range(len(result.indices))) and result.end_ns is not None


def test_a_reused_connection_the_server_dropped_is_retried_once_on_a_new_one() -> None:
    """A server that answers one request per connection, says keep-alive, and closes the
    connection a moment later without reading the next: the next request, sent on the
    reused connection before its close arrived, is sent again on a new connection (the
    server never read it), as browsers and httpx do."""

    async def run() -> tuple[list[bytes], int, int]:
        async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.2)  # the client sends its next request meanwhile
            writer.close()

        server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = h1_io.H1Pool(ClientSettings(f"http://127.0.0.1:{port}"))
        result = StreamResult.start("short_poll", GenerationRequest(seed=1), 0)
        try:
            call = HTTPCall("GET", "/x")
            bodies = [(await h1_io.fetch(pool, result, call)).body for _ in range(3)]
            return bodies, pool.connections_made, result.requests
        finally:
            pool.close()
            server.close()

    bodies, made, requests = event_loop.run(run())
    assert bodies == [b"ok"] * 3 and requests == 3
    assert made == 3  # each reuse failed unanswered, and was sent again on a new connection
