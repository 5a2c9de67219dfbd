"""The exchange logic short and long polling share: create the stream, then poll it by
offset. Each polling transport only says how long to wait before each poll and which
extra query parameters a poll carries (`Polling`). No I/O here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from clients.exchange import Exchange, ExchangeLogic, Fetch, HTTPCall, Reply, Sleep, require_status
from clients.interface import ClientSettings, Fault, StreamResult
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


def polling_exchange(kind: Polling) -> ExchangeLogic:
    """Create the stream (its id names the timeline too), then poll until it is done."""

    def exchange(
        settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange:
        call = create_call(request)
        created: Reply = yield Fetch(call)
        require_status(created, call)
        result.stream_id = stream_id = decode_created(loads(created.body))
        started = time.perf_counter_ns()
        offset = 0
        for poll_number in range(MAX_POLLS):
            delay = kind.delay_s(settings, poll_number, started)
            if delay > 0:
                yield Sleep(delay)
            call = poll_call(kind, settings, stream_id, offset)
            reply: Reply = yield Fetch(call)
            require_status(reply, call)
            offset, done = take_batch(result, loads(reply.body), offset, reply.now_ns)
            if done:
                return
            fault = settings.fault_due(result)
            if fault is Fault.LEAVE:
                result.left_ns = time.perf_counter_ns()
                return
            if fault is Fault.DROP:  # nothing to drop: the next poll is the reconnect
                result.drops_ns.append(time.perf_counter_ns())
        raise StreamIncomplete("polling never reached the end of the stream")

    return exchange
