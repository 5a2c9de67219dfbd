"""The server's HTTP behaviour: bad requests get 4xx JSON errors (never a 500), SSE resumes
with Last-Event-ID and stops EventSource reconnect loops, idle polled streams are dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from harness.measure.server_process import ServerProcess
from wire.messages import loads
from wire.sse import SSEStreamDecoder


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/v1/streams", b'{"seed": -1}', 400, "seed must be an integer from 0 to"),
        ("POST", "/v1/streams", b'{"colour": 1}', 400, "unknown request field"),
        ("POST", "/v1/streams", b"{not json", 400, "invalid JSON"),
        ("POST", "/v1/streams", b"[1, 2]", 400, "must be a JSON object"),
        ("POST", "/v1/streams", b'{"stream_id": "a b"}', 400, "stream_id must be"),
        ("GET", "/v1/streams/nope?offset=0", None, 404, "no stream 'nope'"),
        ("GET", "/v1/streams/nope?offset=-1", None, 422, "offset"),
        ("GET", "/v1/streams/nope?offset=x", None, 422, "offset"),
        ("GET", "/v1/streams/nope?offset=0&wait=9999", None, 400, "wait must be at most"),
        ("POST", "/v1/sse?framing=xml", b"{}", 400, "unknown framing 'xml'; allowed: json, openai"),
        ("POST", "/v1/chunked?framing=xml", b"{}", 400, "unknown framing"),
        ("POST", "/v1/chunked", b'{"max_tokens": 0}', 400, "max_tokens must be a positive"),
        ("GET", "/v1/sse?seed=abc", None, 422, "seed"),
        ("POST", "/v1/timelines", b'{"ids": 3}', 400, "ids"),
        ("GET", "/v1/streams/nope/timeline", None, 404, "no stream"),
    ],
)
async def test_bad_requests_get_a_4xx_json_error(
    http: httpx.AsyncClient, method: str, path: str, body: bytes | None, status: int, needle: str
) -> None:
    headers = {"content-type": "application/json"}  # a body of any other type gets 415
    response = await http.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert needle in response.json()["error"]


async def test_a_taken_stream_id_is_a_conflict(http: httpx.AsyncClient) -> None:
    first = await http.post("/v1/streams", json={"stream_id": "twice"})
    second = await http.post("/v1/streams", json={"stream_id": "twice"})
    assert (first.status_code, second.status_code) == (201, 409)
    assert "already exists" in second.json()["error"]


async def test_polling_by_offset_and_timeline(http: httpx.AsyncClient) -> None:
    created = await http.post("/v1/streams", json={"seed": 7, "max_tokens": 30})
    stream_id = created.json()["id"]
    texts: list[str] = []
    for _ in range(200):
        batch = (
            await http.get(f"/v1/streams/{stream_id}", params={"offset": len(texts), "wait": 5})
        ).json()
        assert [t["i"] for t in batch["tokens"]] == list(
            range(len(texts), len(texts) + len(batch["tokens"]))
        )
        texts += [t["t"] for t in batch["tokens"]]
        if batch["done"]:
            break
    timeline = (await http.get(f"/v1/streams/{stream_id}/timeline?texts=true")).json()
    assert timeline["texts"] == texts
    assert len(timeline["emit_ns"]) == timeline["tokens"] == 30
    assert timeline["emit_ns"] == sorted(timeline["emit_ns"])
    past_end = await http.get(f"/v1/streams/{stream_id}", params={"offset": 31})
    assert past_end.status_code == 400


async def read_sse(response: httpx.Response) -> list[tuple[str, str]]:
    decoder = SSEStreamDecoder()
    events = []
    async for raw in response.aiter_raw():
        events += [(e.id, e.data) for e in decoder.feed(raw)]
    return events


async def test_eventsource_get_resumes_after_last_event_id(http: httpx.AsyncClient) -> None:
    async with http.stream("GET", "/v1/sse?seed=2&max_tokens=12&stream=resume-me") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        full = await read_sse(response)
    assert [i for i, _ in full[:-1]] == [str(k) for k in range(12)]
    assert loads(full[-1][1]) == {"done": True, "n": 12, "id": "resume-me"}

    headers = {"last-event-id": "11"}
    async with http.stream("GET", "/v1/sse?stream=resume-me", headers=headers) as response:
        # everything was delivered: 204 makes EventSource stop reconnecting
        assert response.status_code == 204

    headers = {"last-event-id": "8"}
    async with http.stream("GET", "/v1/sse?stream=resume-me", headers=headers) as response:
        resumed = await read_sse(response)
    assert resumed == full[9:]


async def test_a_reconnect_naming_no_stream_gets_nothing_and_starts_nothing(
    http: httpx.AsyncClient,
) -> None:
    """EventSource reconnects by itself with Last-Event-ID; without `?stream=` the server
    cannot know which stream it continues: 204 (EventSource stops), never a new generation."""
    response = await http.get("/v1/sse?seed=1", headers={"last-event-id": "3"})
    assert response.status_code == 204 and response.content == b""


@pytest.mark.parametrize("last_event_id", ["-3", "-1000", "x", "1.5", "+2"])
async def test_last_event_id_must_be_a_token_index(
    http: httpx.AsyncClient, last_event_id: str
) -> None:
    response = await http.get(
        "/v1/sse?seed=1&stream=never-made", headers={"last-event-id": last_event_id}
    )
    assert response.status_code == 400
    assert "Last-Event-ID must be a token index" in response.json()["error"]


async def test_websocket_bad_request_gets_error_and_policy_close(server: ServerProcess) -> None:
    url = server.base_url.replace("http", "ws") + "/v1/ws"
    async with connect(url, proxy=None) as ws:
        await ws.send('{"seed": "x"}')
        message = await ws.recv()
        assert "seed must be" in loads(message)["error"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_polled_stream_nobody_polls_is_dropped(impatient_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=impatient_server.base_url, trust_env=False) as http:
        stream_id = (await http.post("/v1/streams", json={})).json()["id"]
        assert (await http.get(f"/v1/streams/{stream_id}")).status_code == 200
        await asyncio.sleep(1.6)  # idle timeout 0.3 s, reaped within a second after
        timeline = await http.get(f"/v1/streams/{stream_id}/timeline")
        assert timeline.json()["error"] == "cancelled: no client read this stream for 0.3 s"
        assert timeline.json()["done"] is True
        assert timeline.json()["tokens"] < 400


@pytest.mark.parametrize("path", ["/v1/sse", "/v1/chunked"])
async def test_a_push_client_that_leaves_stops_the_generation_after_the_grace(
    impatient_server: ServerProcess, path: str
) -> None:
    """A reader that leaves may come back within the resume grace (0.5 s here); after it,
    the generation is cancelled, and says why."""
    stream_id = f"leaver-{path.rsplit('/', 1)[-1]}"
    async with httpx.AsyncClient(base_url=impatient_server.base_url, trust_env=False) as http:
        async with http.stream("POST", path, json={"stream_id": stream_id}) as response:
            async for _ in response.aiter_raw():
                break  # one read, then hang up
        left = time.monotonic()
        await asyncio.sleep(0.2)
        within_grace = (await http.get(f"/v1/streams/{stream_id}/timeline")).json()
        timeline: dict[str, object] = {}
        for _ in range(50):
            await asyncio.sleep(0.05)
            timeline = (await http.get(f"/v1/streams/{stream_id}/timeline")).json()
            if timeline["done"]:
                break
        ended_after_s = time.monotonic() - left
    assert within_grace["done"] is False
    assert timeline["done"] is True and ended_after_s >= 0.5
    assert timeline["error"] == "cancelled: the client left and did not resume within 0.5 s"
    assert isinstance(timeline["tokens"], int) and timeline["tokens"] < 400
