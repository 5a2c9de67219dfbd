"""The aiohttp stack in-process, on a real loopback server (aiohttp's `TestServer`): the same
SSE bytes as the bare ASGI stack, one HTTP chunk per SSE event; a WebSocket stream; a
WebSocket to a path that has none; the router's 404 in the `{"error": ...}` shape. (The
cross-stack suite runs every stack through the real `servers.run`.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

from servers.core import no_socket_here
from servers.sources.spec import SourceSpec, build_source
from servers.stacks import aiohttp_server, asgi_app

SPEC = SourceSpec(preset="instant")
REQUEST = {"seed": 1, "max_tokens": 5, "stream_id": "same-bytes"}
JSON = {"content-type": "application/json"}
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = aiohttp_server.create_app(build_source(SPEC))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def asgi_sse_body() -> bytes:
    app = asgi_app.create_app(build_source(SPEC))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        answer = await http.post("/v1/sse", json=REQUEST)
    assert answer.status_code == 200
    return answer.content


async def raw_chunks(client: Client, path: str, body: bytes) -> list[bytes]:
    """The HTTP chunks of one response, as they come on the wire."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200 ") and b"Transfer-Encoding: chunked" in status
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        chunks.append(await reader.readexactly(size))
        assert await reader.readexactly(2) == b"\r\n"
    writer.close()
    return chunks


async def test_sse_bytes_are_the_asgi_stacks(client: Client) -> None:
    answer = await client.post("/v1/sse", data=orjson.dumps(REQUEST), headers=JSON)
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/event-stream"
    body = await answer.read()
    assert body == await asgi_sse_body()
    events = [event + b"\n\n" for event in body.split(b"\n\n")[:-1]]
    assert len(events) == 6  # five tokens, the end
    request = dict(REQUEST, stream_id="same-chunks")
    chunks = await raw_chunks(client, "/v1/sse", orjson.dumps(request))
    assert chunks == [e.replace(b"same-bytes", b"same-chunks") for e in events]


async def test_a_websocket_streams_then_closes(client: Client) -> None:
    async with client.ws_connect("/v1/ws") as ws:
        await ws.send_str(orjson.dumps({"seed": 1, "max_tokens": 3}).decode())
        messages = [orjson.loads(m.data) async for m in ws if m.type is WSMsgType.TEXT]
    assert [m["i"] for m in messages[:-1]] == [0, 1, 2] and messages[-1]["done"] is True
    assert ws.close_code == 1000


async def test_a_websocket_to_a_path_without_one_is_told_and_closed_1008(
    client: Client,
) -> None:
    async with client.ws_connect("/healthz") as ws:
        message = await ws.receive()
        assert message.type is WSMsgType.TEXT and message.data == no_socket_here("/healthz")
        assert (await ws.receive()).type is WSMsgType.CLOSE
    assert ws.close_code == 1008


async def test_unknown_paths_and_methods_answer_in_json(client: Client) -> None:
    missing = await client.get("/nope")
    assert (missing.status, await missing.json()) == (404, {"error": "Not Found"})
    wrong = await client.delete("/healthz")
    assert (wrong.status, await wrong.json()) == (405, {"error": "Method Not Allowed"})
    plain = await client.get("/v1/ws")  # a WebSocket endpoint, without the upgrade
    assert (plain.status, await plain.json()) == (405, {"error": "Method Not Allowed"})
