"""Streams under faults: long streams outlive the idle timeout while read; dropped
connections resume on every transport with nothing lost or repeated; a stream left for good
is cancelled one resume grace later; a WebSocket that leaves is noticed before its first
token too. Real server processes on loopback, real clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets
from support import (
    BLOCKING_NAMES,
    FAST_POLLS,
    TRANSPORT_NAMES,
    async_client,
    blocking_client,
    quic_ca,
    serve,
)
from websockets.asyncio.client import connect

from clients.interface import ClientSettings, StreamResult
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from transports import TRANSPORTS, Kind
from wire.messages import GenerationRequest

GRACE_S = 0.5
# what the registry says each transport can do is what these tests hold it to
RESUMING = [t.name for t in TRANSPORTS if t.capabilities.resume]
PUSH_RESUMING = [t.name for t in TRANSPORTS if t.capabilities.resume and t.kind is Kind.PUSH]
PUSH_CANCELLING = [
    t.name for t in TRANSPORTS if t.capabilities.cancel_on_disconnect and t.kind is Kind.PUSH
]
TOKENS = 150  # about 1.5 s at 100 tokens/s: longer than the reaper's 1 s cycle + 0.3 s


@pytest.fixture(scope="module")
def faulty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """About 150-token streams at 100 tokens/s; a push reader that left has 0.5 s to resume; a
    stream nobody reads for 0.3 s is cancelled."""
    spec = SourceSpec(preset="chat", ttft_ms=20, tokens_per_s=100, tokens_per_response=TOKENS)
    args = ("--resume-grace-s", str(GRACE_S), "--idle-timeout-s", "0.3")
    yield from serve(tmp_path_factory, "faulty", spec, *args)


async def timeline_when_done(base_url: str, stream_id: str, within_s: float) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False) as http:
        deadline = time.monotonic() + within_s
        while True:
            timeline: dict[str, object] = (
                await http.get(f"/v1/streams/{stream_id}/timeline")
            ).json()
            if timeline["done"] or time.monotonic() > deadline:
                return timeline
            await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def slow_first_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The first token 1.5 s after the request; idle timeout 0.3 s; resume grace 5 s."""
    spec = SourceSpec(preset="chat", ttft_ms=1500, tokens_per_s=50, tokens_per_response=20)
    yield from serve(
        tmp_path_factory, "slow-first", spec, "--resume-grace-s", "5", "--idle-timeout-s", "0.3"
    )


async def stream(
    server: ServerProcess,
    transport: str,
    stream_id: str,
    drop_at_token: int = 0,
    leave_at_token: int = 0,
) -> StreamResult:
    config = ClientSettings(
        base_url=server.base_url,
        knobs=FAST_POLLS,
        ca_file=quic_ca(),
        drop_at_token=drop_at_token,
        leave_at_token=leave_at_token,
    )
    client = async_client(transport, config)
    try:
        request = GenerationRequest(seed=7, stream_id=stream_id)
        return await client.stream(request, time.perf_counter_ns())
    finally:
        await client.aclose()


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_a_stream_longer_than_the_idle_timeout_completes_while_read(
    faulty_server: ServerProcess, transport: str
) -> None:
    """1.5 s of tokens against a 0.3 s idle timeout: readers (push followers, held long
    polls, short polls) keep the generation alive."""
    result = await stream(faulty_server, transport, f"long-{transport}")
    assert result.error is None, result.error
    assert result.end_tokens and result.indices == list(range(result.end_tokens))


@pytest.mark.parametrize("transport", RESUMING)
async def test_a_dropped_connection_resumes_with_nothing_lost_or_repeated(
    faulty_server: ServerProcess, transport: str
) -> None:
    result = await stream(faulty_server, transport, f"drop-{transport}", drop_at_token=10)
    assert result.error is None, result.error
    assert len(result.drops_ns) == 1
    assert result.end_tokens and result.indices == list(range(result.end_tokens))
    after_drop = [t for t in result.recv_ns if t > result.drops_ns[0]]
    assert after_drop, "no token arrived after the drop"
    if transport in PUSH_RESUMING:
        assert result.requests == 2  # the first connection and the resume


def test_the_blocking_client_resumes_too(faulty_server: ServerProcess) -> None:
    assert PUSH_RESUMING  # the registry's push transports resume
    for transport in (t for t in PUSH_RESUMING if t in BLOCKING_NAMES):
        config = ClientSettings(base_url=faulty_server.base_url, drop_at_token=5)
        client = blocking_client(transport, config)
        try:
            request = GenerationRequest(seed=8, stream_id=f"blocking-drop-{transport}")
            result = client.stream(request, time.perf_counter_ns())
        finally:
            client.close()
        assert result.error is None, (transport, result.error)
        assert result.end_tokens and result.indices == list(range(result.end_tokens))
        assert len(result.drops_ns) == 1


@pytest.mark.parametrize("transport", PUSH_CANCELLING)
async def test_a_stream_left_for_good_is_cancelled_one_grace_later(
    faulty_server: ServerProcess, transport: str
) -> None:
    stream_id = f"leave-{transport}"
    result = await stream(faulty_server, transport, stream_id, leave_at_token=5)
    assert result.error is None and result.left_ns is not None
    timeline = await timeline_when_done(faulty_server.base_url, stream_id, within_s=3)
    assert (
        timeline["error"] == f"cancelled: the client left and did not resume within {GRACE_S:g} s"
    )
    ended_ns = timeline["ended_ns"]
    assert isinstance(ended_ns, int)
    assert (ended_ns - result.left_ns) / 1e9 >= GRACE_S


async def test_a_websocket_closed_before_its_first_token_cancels_at_once(
    slow_first_server: ServerProcess,
) -> None:
    """The server reads while it waits for the first token: a close frame from the client
    cancels the generation at once, without waiting for the resume grace (5 s here)."""
    url = slow_first_server.base_url.replace("http://", "ws://") + "/v1/ws"
    async with connect(url, proxy=None) as ws:
        await ws.send('{"seed": 1, "stream_id": "ws-early-leaver"}')
        await asyncio.sleep(0.2)
    closed_ns = time.perf_counter_ns()
    timeline = await timeline_when_done(slow_first_server.base_url, "ws-early-leaver", 1)
    assert timeline["done"] is True and timeline["tokens"] == 0
    assert timeline["error"] == "cancelled: the client left"
    ended_ns = timeline["ended_ns"]
    assert isinstance(ended_ns, int) and (ended_ns - closed_ns) / 1e6 < 500


async def test_a_websocket_that_vanishes_before_its_first_token_is_noticed(
    faulty_server: ServerProcess,
) -> None:
    """No close frame (the connection just drops): the server notices at once and gives the
    client the resume grace, not the seconds until its next send."""
    url = faulty_server.base_url.replace("http://", "ws://") + "/v1/ws"
    ws = await connect(url, proxy=None)
    # about 1 s of tokens: the resume grace (0.5 s) runs out first
    await ws.send('{"seed": 2, "stream_id": "ws-vanisher", "max_tokens": 90}')
    ws.transport.abort()
    left_ns = time.perf_counter_ns()
    with pytest.raises(websockets.ConnectionClosed):
        await ws.recv()
    timeline = await timeline_when_done(faulty_server.base_url, "ws-vanisher", within_s=3)
    assert (
        timeline["error"] == f"cancelled: the client left and did not resume within {GRACE_S:g} s"
    )
    ended_ns = timeline["ended_ns"]
    assert isinstance(ended_ns, int) and GRACE_S <= (ended_ns - left_ns) / 1e9 < GRACE_S + 0.5


async def test_a_held_long_poll_is_not_reaped(slow_first_server: ServerProcess) -> None:
    """A long poll held 1.5 s for the first token, five idle timeouts long, is a reader: the
    stream is not reaped under it. An offset past the tokens produced is refused."""
    async with httpx.AsyncClient(base_url=slow_first_server.base_url, trust_env=False) as http:
        created = await http.post("/v1/streams", json={"seed": 3, "stream_id": "held-poll"})
        assert created.status_code == 201
        held = await http.get("/v1/streams/held-poll", params={"offset": 0, "wait": 5})
        answer = held.json()
        assert answer["tokens"] and "error" not in answer, answer
        past = await http.get("/v1/streams/held-poll", params={"offset": answer["next"] + 5})
        assert past.status_code == 400
        assert "past the tokens produced so far" in past.json()["error"]


def test_a_finished_stream_is_never_dropped() -> None:
    """A drop (or leave) due at exactly the last token must not fire after the terminal
    message: the resume of a finished SSE stream gets 204 and would be recorded as a failure."""
    settings = ClientSettings(base_url="http://127.0.0.1:9", drop_at_token=3, leave_at_token=5)
    result = StreamResult(transport="sse", stream_id="s", scheduled_ns=0)
    result.indices = [0, 1, 2]
    assert settings.fault_due(result) is not None
    result.end_ns = 1
    assert settings.fault_due(result) is None
