"""The exchange logic short and long polling share: create the stream, then poll it by
offset. Each polling transport only says how long to wait before each poll and which
extra query parameters a poll carries (`Polling`). No I/O here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clients.exchange import Exchange, ExchangeLogic, Fetch, HTTPCall, Reply, Sleep, require_status
from clients.interface import ClientSettings, StreamResult
from clients.resume import Connection, Interruption, resumable
from errors import ProtocolViolation, StreamIncomplete, UpstreamFailed
from wire.messages import EndMsg, GenerationRequest, Message, loads
from wire.poll import decode_batch, decode_created

MAX_POLLS = 1 << 62  # a bound for the loop, never reached: the stream timeout ends it first


@dataclass(frozen=True, slots=True)
class Polling:
    """A polling transport without I/O: the extra query parameters of each poll, and how long
    to wait before poll `n` (0-based): `delay_s(settings, n, started_ns, now_ns)`, given when
    the stream was created and the time now (both stamps of replies: the creation's and the
    last poll's)."""

    transport: str
    params: Callable[[ClientSettings], dict[str, str]]
    delay_s: Callable[[ClientSettings, int, int, int], float]


@dataclass(slots=True)
class PollCursor:
    """Where a polled stream stands: its id, the stamp of its creation (the origin of
    short polling's grid), the polls made, the next offset, and the last reply's stamp."""

    stream_id: str
    started_ns: int
    now_ns: int
    polls: int = 0
    offset: int = 0


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
        messages.append(EndMsg(tokens=batch.next, tool_call=batch.tool_call))
    elif not batch.tokens:
        result.empty_polls += 1
    result.take(messages, now_ns)
    return batch.next, batch.done


def polling_exchange(kind: Polling) -> ExchangeLogic:
    """Create the stream (its id names the timeline too), then poll until it is done. A
    poll holds no connection: a fault is stamped with the last poll's reply, and after a
    drop the next poll is the reconnect."""

    def exchange(
        settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange:
        call = create_call(request)
        created: Reply = yield Fetch(call)
        require_status(created, call)
        result.stream_id = decode_created(loads(created.body))
        cursor = PollCursor(result.stream_id, created.now_ns, created.now_ns)

        def connect(resuming: bool) -> Connection:
            while cursor.polls < MAX_POLLS:
                delay = kind.delay_s(settings, cursor.polls, cursor.started_ns, cursor.now_ns)
                if delay > 0:
                    yield Sleep(delay)
                call = poll_call(kind, settings, cursor.stream_id, cursor.offset)
                reply: Reply = yield Fetch(call)
                require_status(reply, call)
                cursor.polls, cursor.now_ns = cursor.polls + 1, reply.now_ns
                cursor.offset, done = take_batch(
                    result, loads(reply.body), cursor.offset, reply.now_ns
                )
                if done:
                    return None
                if (fault := settings.fault_due(result)) is not None:
                    return Interruption(fault, reply.now_ns)
            raise StreamIncomplete("polling never reached the end of the stream")

        yield from resumable(result, connect)

    return exchange
