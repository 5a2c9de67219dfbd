"""An EventSource that drops before its first event with an id reconnects without
`Last-Event-ID`: the request that names its stream again rejoins it from the start (the
caller's stream, the same request, running or ended within the resume grace); anything
else naming a
stream in use is still a 409. Start messages carry `id: -1`, and `Last-Event-ID: -1`
resumes at token 0 without them. Real servers (tests/conftest.py); the real EventSources
are in tests/clients/test_eventsource_reconnect.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import serve, stack_args

from harness.measure.server_process import ServerProcess, start_server, stop_server
from servers.settings import SERVER_TOKEN_ENV
from servers.sources.spec import SourceSpec
from wire.framing import get_framing
from wire.messages import TokenMsg, loads
from wire.sse import SSEStreamDecoder

ALICE = "alice-reconnects-1"
BOB = "bob-reconnects-2"
# about 1 s per stream: a reconnect lands while the generation still runs
SLOW = SourceSpec(preset="chat", ttft_ms=5, tokens_per_s=40, tokens_per_response=40)
NAMES = count()


def fresh(name: str) -> str:
    return f"{name}-{next(NAMES)}"


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "sse-reconnect-slow", SLOW)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two principals, alice and bob."""
    folder = tmp_path_factory.mktemp("sse-reconnect-guarded")
    tokens = folder / "tokens.txt"
    tokens.write_text(f"{ALICE}\n{BOB}\n")
    with pytest.MonkeyPatch.context() as env:
        env.delenv(SERVER_TOKEN_ENV, raising=False)
        args = ("--token-file", str(tokens))
        process = start_server(SLOW, Path(folder / "server.log"), extra_args=(*stack_args(), *args))
    try:
        yield process
    finally:
        stop_server(process)


async def drop_after_head(http: httpx.AsyncClient, path: str, **kwargs: Any) -> None:
    """Open the stream, take the response head, hang up before any event: what
    `curl -m 0.02` and a network drop do."""
    async with http.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200


async def read_sse(
    http: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> tuple[int, list[tuple[str, str]]]:
    """(status, [(event id, data)]) of the whole response."""
    async with http.stream(method, path, **kwargs) as response:
        if response.status_code != 200:
            await response.aread()
            return response.status_code, []
        decoder = SSEStreamDecoder()
        events: list[tuple[str, str]] = []
        async for raw in response.aiter_raw():
            events += [(e.id, e.data) for e in decoder.feed(raw)]
        return 200, events


async def server_texts(http: httpx.AsyncClient, stream_id: str, **kwargs: Any) -> dict:
    for _ in range(200):
        timeline = (await http.get(f"/v1/streams/{stream_id}/timeline?texts=true", **kwargs)).json()
        if timeline["done"]:
            return timeline
        await asyncio.sleep(0.02)
    raise AssertionError(f"{stream_id} did not end")


def json_texts(events: list[tuple[str, str]]) -> tuple[list[int], list[str], dict]:
    """(indices, texts, terminal message) of a json-framed stream."""
    *tokens, end = [loads(data) for _, data in events]
    return [t["i"] for t in tokens], [t["t"] for t in tokens], end


GRACE_S = 0.5


@pytest.fixture(scope="module")
def short_grace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "sse-reconnect-grace", SLOW, "--resume-grace-s", "0.5")


async def test_the_curl_reproduction_rejoins_the_stream_from_its_start(
    short_grace: ServerProcess,
) -> None:
    """`curl -m 0.02 URL; curl URL` (the issue): the second gets 200 and the whole text;
    so does a third within the resume grace after the end (a client that got nothing, as
    when a short stream was written whole before its drop); after it, the id is taken."""
    stream_id = fresh("d0")
    path = f"/v1/sse?seed=1&stream={stream_id}"
    async with httpx.AsyncClient(base_url=short_grace.base_url, trust_env=False) as http:
        await drop_after_head(http, path)
        status, events = await read_sse(http, "GET", path)
        assert status == 200
        indices, texts, end = json_texts(events)
        timeline = await server_texts(http, stream_id)
        assert texts == timeline["texts"] and indices == list(range(timeline["tokens"]))
        assert end == {"done": True, "n": timeline["tokens"], "id": stream_id}
        assert [i for i, _ in events[:-1]] == [str(k) for k in range(len(texts))]
        assert timeline["error"] is None
        replay_status, replay = await read_sse(http, "GET", path)
        assert replay_status == 200 and replay == events  # the same stream, not a new one
        assert (await server_texts(http, stream_id))["emit_ns"] == timeline["emit_ns"]
        await asyncio.sleep(GRACE_S + 0.3)
        again = await http.get(path)
    assert again.status_code == 409 and "already exists" in again.json()["error"]


async def test_a_reconnect_joins_a_generation_that_still_runs(slow: ServerProcess) -> None:
    """The dropped reader's generation runs on (it waits the resume grace); the reconnect
    gets what was made so far and then follows it live, and nothing starts twice."""
    stream_id = fresh("live")
    path = f"/v1/sse?seed=3&stream={stream_id}"
    async with httpx.AsyncClient(base_url=slow.base_url, trust_env=False, timeout=30) as http:
        await drop_after_head(http, path)
        await asyncio.sleep(0.3)
        running = (await http.get(f"/v1/streams/{stream_id}/timeline")).json()
        assert running["done"] is False and running["tokens"] > 0
        status, events = await read_sse(http, "GET", path)
        timeline = await server_texts(http, stream_id)
    assert status == 200
    indices, texts, _ = json_texts(events)
    assert texts == timeline["texts"] and indices == list(range(timeline["tokens"]))
    assert timeline["error"] is None and timeline["tokens"] > running["tokens"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"seed": 1}, {"seed": 2}),
        ({"seed": 1}, {"seed": 1, "max_tokens": 5}),
        ({"seed": 1, "max_tokens": 5}, {"seed": 1}),
        ({"seed": 1, "prompt": "hi"}, {"seed": 1, "prompt": "ho"}),
        ({"seed": 1, "prompt": "hi"}, {"seed": 1}),
    ],
)
async def test_a_request_that_differs_is_a_conflict_not_a_reconnect(
    slow: ServerProcess, first: dict, second: dict
) -> None:
    stream_id = fresh("differs")
    async with httpx.AsyncClient(base_url=slow.base_url, trust_env=False, timeout=30) as http:
        await drop_after_head(http, "/v1/sse", params={**first, "stream": stream_id})
        other = await http.get("/v1/sse", params={**second, "stream": stream_id})
        assert other.status_code == 409
        assert "made for another request" in other.json()["error"]
        # the conflict left the stream alone: the same request still rejoins it
        status, events = await read_sse(
            http, "GET", "/v1/sse", params={**first, "stream": stream_id}
        )
        timeline = await server_texts(http, stream_id)
    assert status == 200
    assert json_texts(events)[1] == timeline["texts"] and timeline["error"] is None


async def test_the_prompt_still_tells_a_reconnect_once_the_generation_ended(
    http: httpx.AsyncClient,
) -> None:
    """An ended generation no longer holds its prompt (only a digest of it)."""
    stream_id = fresh("ended")
    params: dict[str, str | int] = {
        "seed": 4,
        "max_tokens": 3,
        "prompt": "a prompt",
        "stream": stream_id,
    }
    await drop_after_head(http, "/v1/sse", params=params)
    await server_texts(http, stream_id)  # ended, within the resume grace (5 s)
    other = await http.get("/v1/sse", params={**params, "prompt": "another"})
    assert other.status_code == 409
    status, events = await read_sse(http, "GET", "/v1/sse", params=params)
    assert status == 200 and json_texts(events)[0] == [0, 1, 2]


async def test_post_reconnects_without_last_event_id_rejoin_too(http: httpx.AsyncClient) -> None:
    """POST names the stream with `?stream=` or `stream_id` in the body."""
    for where in ("query", "body"):
        stream_id = fresh(f"post-{where}")
        body: dict[str, object] = {"seed": 5, "max_tokens": 20}
        path = f"/v1/sse?stream={stream_id}" if where == "query" else "/v1/sse"
        if where == "body":
            body["stream_id"] = stream_id
        async with http.stream("POST", path, json=body) as response:
            assert response.status_code == 200
        status, events = await read_sse(http, "POST", path, json=body)
        assert status == 200, where
        timeline = await server_texts(http, stream_id)
        assert json_texts(events)[1] == timeline["texts"], where


async def test_another_principals_stream_is_refused_and_left_alone(
    guarded: ServerProcess,
) -> None:
    """Bob naming alice's stream, without `Last-Event-ID`, gets 409 (the id is taken) and
    none of her text; alice's own reconnect still gets all of it."""
    stream_id = fresh("alices")
    path = f"/v1/sse?seed=6&stream={stream_id}"
    alice = {"Authorization": f"Bearer {ALICE}"}
    bob = {"Authorization": f"Bearer {BOB}"}
    async with httpx.AsyncClient(base_url=guarded.base_url, trust_env=False, timeout=30) as http:
        await drop_after_head(http, path, headers=alice)
        refused = await http.get(path, headers=bob)
        assert refused.status_code == 409
        assert refused.json() == {"error": f"stream {stream_id!r} already exists"}
        status, events = await read_sse(http, "GET", path, headers=alice)
        timeline = await server_texts(http, stream_id, headers=alice)
    assert status == 200
    assert json_texts(events)[1] == timeline["texts"] and timeline["error"] is None


@pytest.mark.parametrize("framing", ["openai", "langchain"])
async def test_start_messages_carry_id_minus_1_and_it_resumes_at_token_0(
    http: httpx.AsyncClient, framing: str
) -> None:
    codec = get_framing(framing)
    stream_id = fresh(framing)
    path = f"/v1/sse?seed=8&max_tokens=6&stream={stream_id}&framing={framing}"
    status, full = await read_sse(http, "GET", path)
    assert status == 200
    starts = len(codec.encode_start(stream_id, "m"))
    assert starts >= 1
    assert [i for i, _ in full[:starts]] == ["-1"] * starts  # every start message: -1
    token_ids = [i for i, data in full if isinstance(codec.decode(data), TokenMsg)]
    assert token_ids == [str(k) for k in range(6)]

    status, resumed = await read_sse(http, "GET", path, headers={"last-event-id": "-1"})
    assert status == 200
    assert resumed == full[starts:]  # token 0 on, without the start messages


async def test_a_stream_whose_start_messages_were_all_it_sent_resumes_at_token_0(
    slow: ServerProcess,
) -> None:
    """The openai drop of the issue: the role chunk, then the connection is gone."""
    stream_id = fresh("role-only")
    path = f"/v1/sse?seed=9&stream={stream_id}&framing=openai"
    async with httpx.AsyncClient(base_url=slow.base_url, trust_env=False, timeout=30) as http:
        async with http.stream("GET", path) as response:
            decoder = SSEStreamDecoder()
            async for raw in response.aiter_raw():
                first = decoder.feed(raw)
                if first:
                    break
        assert first[0].id == "-1" and '"role":"assistant"' in first[0].data
        status, events = await read_sse(http, "GET", path, headers={"last-event-id": "-1"})
        timeline = await server_texts(http, stream_id)
    assert status == 200
    codec = get_framing("openai")
    texts = [m.text for _, d in events if isinstance(m := codec.decode(d), TokenMsg)]
    assert texts == timeline["texts"] and timeline["error"] is None
    assert not any('"role"' in data for _, data in events)


@pytest.mark.parametrize("framing", ["vercel-ui", "raw"])
async def test_framings_without_event_ids_send_none(http: httpx.AsyncClient, framing: str) -> None:
    status, events = await read_sse(http, "GET", f"/v1/sse?seed=1&max_tokens=4&framing={framing}")
    assert status == 200 and events
    assert {i for i, _ in events} == {""}
