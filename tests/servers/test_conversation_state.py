"""A conversation's state on the server: a turn that asks to be stored is continued by the
next turn's `previous_response_id` (on any transport), refusals name the reason, and a
WebSocket request with `keep_open` leaves the connection open for the next one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from support import serve
from websockets.asyncio.client import connect

from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from wire.messages import GenerationRequest, ToolCall, dumps, loads


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30) as client:
        yield client


async def finished(http: httpx.AsyncClient, body: dict[str, object]) -> dict[str, object]:
    """Stream a turn over chunked HTTP to its end; its terminal message."""
    response = await http.post("/v1/chunked", json=body)
    assert response.status_code == 200, response.text
    ending: dict[str, object] = loads(response.text.splitlines()[-1])
    return ending


async def test_a_stored_turn_is_continued_and_the_refusals_name_why(
    http: httpx.AsyncClient,
) -> None:
    first = {"seed": 1, "max_tokens": 3, "stream_id": "talk-0", "context": "a" * 100}
    await finished(http, {**first, "store": True})
    await finished(http, {"seed": 2, "max_tokens": 3, "stream_id": "talk-x", "store": False})
    # the next turn continues the kept conversation: only what is new travels
    ok = {"seed": 3, "max_tokens": 3, "stream_id": "talk-1", "previous_response_id": "talk-0"}
    assert (await finished(http, {**ok, "context": "b" * 10}))["done"] is True
    for previous, status, needle in (
        ("nobody", 404, "no response 'nobody' to continue"),
        ("talk-x", 400, "was not stored"),
    ):
        body = {"seed": 4, "max_tokens": 3, "previous_response_id": previous}
        response = await http.post("/v1/sse", json=body)
        assert response.status_code == status and needle in response.json()["error"]


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Keeps conversations of at most 300 characters."""
    spec = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=4000)
    yield from serve(tmp_path_factory, "small", spec, "--max-conversation-chars", "300")


async def test_a_conversation_beyond_max_conversation_chars_is_refused(
    small_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=small_server.base_url, trust_env=False) as http:
        first = {"seed": 1, "max_tokens": 3, "stream_id": "t0", "context": "a" * 100}
        await finished(http, {**first, "store": True})
        body = {"max_tokens": 1, "previous_response_id": "t0", "context": "b" * 250}
        response = await http.post("/v1/streams", json=body)
        assert response.status_code == 400
        assert "exceeds max_conversation_chars (300)" in response.json()["error"]


async def test_a_tool_turn_ends_with_the_call_its_seed_makes(http: httpx.AsyncClient) -> None:
    request = GenerationRequest(seed=7, max_tokens=2, tool="run_tool")
    ending = await finished(http, request.to_json())
    planned = request.tool_call()
    assert planned is not None
    assert ToolCall.from_json(ending["tool_call"]) == planned
    created = await http.post("/v1/streams", json=request.to_json())
    stream_id = created.json()["id"]
    for _ in range(20):  # a long poll of 5 s at most each: the 2 tokens are done long before
        poll = (await http.get(f"/v1/streams/{stream_id}?offset=0&wait=5")).json()
        if poll["done"]:
            break
    assert poll["done"] and ToolCall.from_json(poll["tool_call"]) == planned


async def test_a_websocket_kept_open_carries_the_next_turn(server: ServerProcess) -> None:
    url = server.base_url.replace("http://", "ws://") + "/v1/ws"
    async with connect(url) as ws:
        for turn in range(3):
            last = turn == 2
            request = GenerationRequest(seed=turn, max_tokens=2).to_json()
            await ws.send(dumps({**request, "framing": "json", "keep_open": not last}))
            received = [loads(await ws.recv()) for _ in range(3)]
            assert [m.get("i") for m in received[:2]] == [0, 1] and received[2]["done"] is True
        await ws.wait_closed()  # the last turn's request left keep_open out: the server closes
        assert ws.close_code == 1000
