"""The server's limits and its answers to bad input: each refusal a 4xx JSON error naming
what was refused; connections that never complete a request are closed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets
from stack_behaviour import REQUEST_TIMEOUT, guard_holds, lacking
from support import serve
from websockets.asyncio.client import connect

from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from wire.messages import loads

LIMITS = (
    "--max-body-bytes",
    "2000",
    "--max-prompt-chars",
    "100",
    "--max-tokens-limit",
    "50",
    "--max-active-streams",
    "3",
    "--request-timeout-s",
    "0.5",
    "--max-model-name-chars",
    "20",
)


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Small limits, and slow streams (so three of them stay active for a while)."""
    spec = SourceSpec(preset="chat", ttft_ms=50, tokens_per_s=20, tokens_per_response=40)
    yield from serve(tmp_path_factory, "strict", spec, *LIMITS, "--resume-grace-s", "0")


@pytest.fixture
async def http(strict_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=strict_server.base_url, trust_env=False, timeout=10
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"seed": 1, "prompt": "x" * 3000}, 413, "max_body_bytes (2000)"),
        ({"seed": 1, "prompt": "x" * 101}, 400, "max_prompt_chars (100)"),
        ({"seed": 1, "max_tokens": 51}, 400, "max_tokens_limit (50)"),
    ],
    ids=["body", "prompt", "max_tokens"],
)
@pytest.mark.parametrize("path", ["/v1/streams", "/v1/sse", "/v1/chunked"])
async def test_limits_are_refused_by_name(
    http: httpx.AsyncClient, path: str, body: dict[str, object], status: int, needle: str
) -> None:
    response = await http.post(path, json=body)
    assert response.status_code == status
    assert needle in response.json()["error"]


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "text", "text": 5}],
        [{"type": "text", "text": None}],
        [{"type": "text", "text": ["a"]}],
        [{"type": "text"}],
    ],
    ids=["number", "null", "list", "missing"],
)
async def test_chat_content_parts_need_string_text(
    http: httpx.AsyncClient, content: list[dict[str, object]]
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "string `text`" in response.json()["error"]["message"]


async def test_a_long_model_name_is_refused_not_echoed(http: httpx.AsyncClient) -> None:
    body = {"model": "m" * 100_000, "messages": [{"role": "user", "content": "hi"}]}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 413  # the body is over max_body_bytes before the name
    body = {"model": "m" * 21, "messages": [{"role": "user", "content": "hi"}]}
    response = await http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "max_model_name_chars (20)" in response.json()["error"]["message"]


async def test_too_many_active_streams_get_503_with_retry_after(
    http: httpx.AsyncClient,
) -> None:
    ids = [(await http.post("/v1/streams", json={"seed": k})).json().get("id") for k in range(3)]
    assert all(ids)
    refused = await http.post("/v1/streams", json={"seed": 9})
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "max_active_streams (3)" in refused.json()["error"]
    for stream_id in ids:  # read them to their end so the next tests have room
        while not (await http.get(f"/v1/streams/{stream_id}", params={"wait": 5})).json()["done"]:
            pass


async def test_a_binary_first_websocket_message_gets_an_error_and_a_close(
    strict_server: ServerProcess,
) -> None:
    url = strict_server.base_url.replace("http://", "ws://") + "/v1/ws"
    async with connect(url, proxy=None) as ws:
        await ws.send(b"\x00\x01binary")
        assert "binary" in loads(await ws.recv())["error"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@lacking(REQUEST_TIMEOUT)
def test_a_connection_that_never_completes_its_request_head_is_closed(
    strict_server: ServerProcess,
) -> None:
    """A slow client holding a socket open with half a request head is cut off after
    `request_timeout_s` (0.5 s here)."""
    host, port = strict_server.base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line, ever
        try:
            closed = sock.recv(1024) == b""  # closed by the server
        except TimeoutError:
            closed = False
        guard_holds(REQUEST_TIMEOUT, closed, "the connection was still open after 3 s")


async def test_a_body_that_never_arrives_gets_408(strict_server: ServerProcess) -> None:
    host, port = strict_server.base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v1/streams HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    answer = b""
    async with asyncio.timeout(5):
        while b"request_timeout_s" not in answer:
            chunk = await reader.read(4096)
            if not chunk:
                break
            answer += chunk
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request_timeout_s" in answer
