"""Every stack sends the same bytes: for each transport and every framing it carries, the
body of a stream (SSE events, NDJSON lines, poll batches, WebSocket messages, chat
completion chunks) is the same on every stack as on the default one, byte for byte, and the
timelines endpoint answers the same. Real servers, one per stack (`stacks.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
import websockets

from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec
from stacks import DEFAULT, STACKS
from transports import TRANSPORTS
from wire.framing import FRAMINGS
from wire.messages import dumps

SPEC = SourceSpec(preset="chat", ttft_ms=1, tokens_per_s=4000, tokens_per_response=40)
OTHERS = [name for name in STACKS.names() if name != DEFAULT]
JSON = {"content-type": "application/json"}


class Servers:
    """One server per stack, started when first asked for, stopped with the module."""

    def __init__(self, running: contextlib.ExitStack, folders: pytest.TempPathFactory) -> None:
        self.running, self.folders = running, folders
        self.started: dict[str, ServerProcess] = {}

    def __getitem__(self, name: str) -> ServerProcess:
        if name not in self.started:
            extra = ("--threads", "8") if STACKS.get(name).threaded else ()
            log = self.folders.mktemp(name.replace("@", "-")) / "server.log"
            serving = running_server(SPEC, log, extra_args=("--stack", name, *extra))
            self.started[name] = self.running.enter_context(serving)
        return self.started[name]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with contextlib.ExitStack() as running:
        yield Servers(running, tmp_path_factory)


def carried(transport: str) -> list[str]:
    return [name for name, f in FRAMINGS.items() if transport in TRANSPORTS.carrying(f)]


async def http_body(base: str, framing: str, stream_id: str, *, method: str, path: str) -> bytes:
    """The whole body of one push stream: POSTed with a JSON request, or asked for by GET."""
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as http:
        request = {"seed": 7, "max_tokens": 30, "stream_id": stream_id}
        if method == "GET":
            query = f"seed=7&max_tokens=30&stream={stream_id}&framing={framing}"
            answer = await http.get(f"{path}?{query}")
        else:
            answer = await http.post(f"{path}?framing={framing}", json=request)
        assert answer.status_code == 200, answer.text
        return answer.content


async def websocket_body(base: str, framing: str, stream_id: str) -> bytes:
    url = base.replace("http://", "ws://") + "/v1/ws"
    async with websockets.connect(url) as ws:
        request = {"seed": 7, "max_tokens": 30, "stream_id": stream_id, "framing": framing}
        await ws.send(dumps(request))
        messages = [m if isinstance(m, bytes) else m.encode() async for m in ws]
    return b"\x00".join(messages)


async def poll_bodies(base: str, stream_id: str) -> bytes:
    """The stream's poll answers once it has ended: from 0, from the middle, from the end,
    and a long poll at the end (which answers at once)."""
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as http:
        body = {"seed": 7, "max_tokens": 30, "stream_id": stream_id}
        created = await http.post("/v1/streams", json=body)
        assert created.status_code == 201 and created.json() == {"id": stream_id}
        for _ in range(200):
            timeline = (await http.get(f"/v1/streams/{stream_id}/timeline")).json()
            if timeline["done"]:
                break
            await asyncio.sleep(0.02)
        queries = ("offset=0", "offset=11", "offset=30", "offset=30&wait=1")
        answers = [await http.get(f"/v1/streams/{stream_id}?{q}") for q in queries]
        assert [a.status_code for a in answers] == [200] * 4
        return b"\x00".join(a.content for a in answers)


async def chat_body(base: str, stream_id: str) -> bytes:
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as http:
        body = {
            "model": "m",
            "seed": 7,
            "max_tokens": 30,
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}],
        }
        headers = {"x-tokenwire-stream-id": stream_id}
        answer = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.content


EXCHANGES: dict[str, Callable[[str, str, str], Awaitable[bytes]]] = {
    "sse": functools.partial(http_body, method="POST", path="/v1/sse"),
    "sse-get": functools.partial(http_body, method="GET", path="/v1/sse"),
    "chunked": functools.partial(http_body, method="POST", path="/v1/chunked"),
    "websocket": websocket_body,
}
CARRIED_BY = {"sse": "sse", "sse-get": "sse", "chunked": "chunked", "websocket": "websocket"}
CASES = [(e, f) for e, t in CARRIED_BY.items() for f in carried(t)]


@pytest.mark.parametrize("stack", OTHERS)
@pytest.mark.parametrize(("exchange", "framing"), CASES)
async def test_a_push_stream_has_the_same_bytes_on_every_stack(
    servers: Servers, stack: str, exchange: str, framing: str
) -> None:
    stream_id = f"same-{exchange}-{framing}-{stack.replace('@', '-')}"
    fetch = EXCHANGES[exchange]
    reference = await fetch(servers[DEFAULT].base_url, framing, stream_id)
    assert len(reference) > 100  # 30 tokens (and their framing, but for raw)
    assert await fetch(servers[stack].base_url, framing, stream_id) == reference


@pytest.mark.parametrize("stack", OTHERS)
async def test_polls_chat_completions_and_timelines_are_the_same_on_every_stack(
    servers: Servers, stack: str
) -> None:
    base, other = servers[DEFAULT].base_url, servers[stack].base_url
    poll, chat = (f"same-{kind}-{stack.replace('@', '-')}" for kind in ("poll", "chat"))
    assert await poll_bodies(other, poll) == await poll_bodies(base, poll)
    assert await chat_body(other, chat) == await chat_body(base, chat)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        ask = {"ids": [poll, chat, "nope"], "texts": True}
        mine = (await http.post(f"{base}/v1/timelines", json=ask)).json()
        theirs = (await http.post(f"{other}/v1/timelines", json=ask)).json()
    assert theirs["missing"] == mine["missing"] == ["nope"]
    for a, b in zip(mine["timelines"], theirs["timelines"], strict=True):
        assert a.keys() == b.keys()
        assert (a["id"], a["tokens"], a["texts"], a["done"]) == (
            b["id"],
            b["tokens"],
            b["texts"],
            b["done"],
        )
        assert len(b["emit_ns"]) == b["tokens"] == 30


@pytest.mark.parametrize("stack", STACKS.names())
def test_every_stack_serves_health_and_its_index(servers: Servers, stack: str) -> None:
    with httpx.Client(base_url=servers[stack].base_url, trust_env=False) as http:
        health = http.get("/healthz")
        index = http.get("/")
        missing = http.get("/v1/nothing-here")
    assert health.status_code == 200 and health.json()["ok"] is True
    assert index.json()["transports"] == {t.name: t.endpoint for t in TRANSPORTS}
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}


@pytest.mark.parametrize("stack", [s.name for s in STACKS if "2" in s.http_versions])
async def test_a_stack_that_speaks_http2_sends_the_same_bytes_over_it(
    servers: Servers, stack: str
) -> None:
    """HTTP/2 in clear text by prior knowledge (h2c), as httpx speaks it."""
    stream_id = f"same-h2-{stack.replace('@', '-')}"
    reference = await EXCHANGES["sse"](servers[DEFAULT].base_url, "json", stream_id)
    async with httpx.AsyncClient(
        base_url=servers[stack].base_url, http1=False, http2=True, trust_env=False, timeout=30
    ) as http:
        body = {"seed": 7, "max_tokens": 30, "stream_id": stream_id}
        answer = await http.post("/v1/sse?framing=json", json=body)
    assert answer.http_version == "HTTP/2"
    assert answer.content == reference
