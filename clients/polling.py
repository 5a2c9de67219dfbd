"""What short and long polling clients share: create the stream, then poll by offset.

The protocol part is I/O-free (`Polling`, `create_call`, `poll_call`, `take_batch`) and shared
with the blocking clients in `clients/sync.py`; `PollingClient` is the async client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from clients.base import ClientSettings, StreamResult, failures_recorded
from clients.http import (
    HTTPCall,
    charge_bytes,
    check_status,
    count_exchange,
    make_http_client,
    mapped_errors,
)
from clients.wirebytes import ByteMeter
from errors import ProtocolViolation, StreamIncomplete, UpstreamFailed
from wire.messages import EndMsg, GenerationRequest, Message, loads
from wire.poll import decode_batch, decode_created

MAX_POLLS = 1 << 62  # a bound for the loop, never reached: the stream timeout ends it first


@dataclass(frozen=True, slots=True)
class Polling:
    """A polling transport without I/O: the extra query parameters of each poll, and how long
    to wait before poll `n` (0-based) given when the stream was created."""

    transport: str
    params: Callable[[ClientSettings], dict[str, str]]
    delay_s: Callable[[ClientSettings, int, int], float]  # (settings, n, started_ns) -> s


def create_call(request: GenerationRequest) -> HTTPCall:
    return HTTPCall("POST", "/v1/streams", json=request.to_json(), expected_status=201)


def poll_call(kind: Polling, settings: ClientSettings, stream_id: str, offset: int) -> HTTPCall:
    return HTTPCall(
        "GET", f"/v1/streams/{stream_id}", params={"offset": offset, **kind.params(settings)}
    )


def start(result: StreamResult, created: object) -> str:
    """The creation answer names the stream; later polls and the timeline use that id."""
    result.stream_id = decode_created(created)
    return result.stream_id


def take_batch(result: StreamResult, body: object, offset: int, now_ns: int) -> tuple[int, bool]:
    """Record one poll's answer; return (the next offset, whether the stream has ended)."""
    batch = decode_batch(body)
    if batch.error is not None:
        raise UpstreamFailed(batch.error)
    if batch.tokens and batch.tokens[0].i != offset:
        raise ProtocolViolation(f"asked for offset {offset}, got index {batch.tokens[0].i}")
    messages: list[Message] = [*batch.tokens]
    if batch.done:
        messages.append(EndMsg(tokens=batch.next))
    elif not batch.tokens:
        result.empty_polls += 1
    result.take(messages, now_ns)
    return batch.next, batch.done


def never_ended() -> StreamIncomplete:
    return StreamIncomplete("polling never reached the end of the stream")


class PollingClient:
    """The async client of a `Polling` transport; subclasses name their `kind`."""

    kind: Polling

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.transport = self.kind.transport
        self.http = make_http_client(settings)
        self.meter = ByteMeter()

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result), mapped_errors():
            await self._run(request, result)
        return result

    async def _send(self, result: StreamResult, call: HTTPCall) -> object:
        response: httpx.Response = await self.http.request(call.method, call.url, **call.kwargs())
        count_exchange(result, response)
        charge_bytes(self.meter, result, response)
        await check_status(response, call.expected_status)
        return loads(response.content)

    async def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        stream_id = start(result, await self._send(result, create_call(request)))
        started = time.perf_counter_ns()
        offset = 0
        for poll_number in range(MAX_POLLS):
            delay = self.kind.delay_s(self.settings, poll_number, started)
            if delay > 0:
                await asyncio.sleep(delay)
            body = await self._send(result, poll_call(self.kind, self.settings, stream_id, offset))
            offset, done = take_batch(result, body, offset, time.perf_counter_ns())
            if done:
                return
        raise never_ended()

    async def aclose(self) -> None:
        await self.http.aclose()
