"""One stream's `StreamResult` from what the page received and what CDP saw of it.

The page reports every framed message it received with the request that carried it and its
position there (`page.js`); this module finds the network event that delivered each
message (`locate`, see `harness.measure.browser.cdp` for which event and why), stamps the
message with that event's CDP timestamp, groups the messages one event completed (a chunk)
and feeds them to the same decoders and `StreamResult.take` the Python clients use. Polls
go through `clients.polling.take_batch`, which also checks their offsets. So indices,
arrival stamps, chunk sizes, the end, errors, requests and bytes mean what they mean for
the Python clients, and `join` and everything after it work unchanged.

A message whose network event cannot be found (CDP lost or never sent it) is stamped with
the page's own clock mapped to CLOCK_MONOTONIC, and counted (`Assembly.js_stamped`).
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from clients.interface import StreamError, StreamResult, failures_recorded
from clients.polling import take_batch
from errors import ErrorKind, ProtocolError, ProtocolViolation, StreamIncomplete
from harness.measure.browser.cdp import RequestTrace
from harness.measure.browser.clock import JsClock
from transports import TRANSPORTS
from wire.framing import get_framing
from wire.messages import GenerationRequest, TokenMsg, loads

POLL_READERS = ("polls", "heldPolls")  # page.js's readers that poll (`page_reader`)
WEBSOCKET_READER = "webSocket"
# CDP has no event per WebTransport read, nor its bytes: the page's clock stamps its
# messages (`js_ms`), and the page counts the stream's bytes (`wire`)
WEBTRANSPORT_READER = "webTransport"
EVENT_READER = "eventStream"


@dataclass(frozen=True, slots=True)
class PageMessage:
    payload: str
    js_ms: float  # performance.now() when the page's JavaScript got it
    req: int  # which request of the stream carried it
    pos: int  # fetch bodies: its end offset; EventSource, WebSocket: its ordinal; polls: 0


@dataclass(frozen=True, slots=True)
class PageRecord:
    """What `window.tokenwire.run` resolved with."""

    start_ms: float
    end_ms: float
    requests: int
    done: bool
    error: StreamError | None
    messages: list[PageMessage]
    heads: list[tuple[int, float]] = field(default_factory=list)  # (req, jsMs): head in JS
    renders: dict[int, float] = field(default_factory=dict)  # message -> its frame (jsMs)
    wire: tuple[int, int] | None = None  # WebTransport: the stream's bytes sent, received

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageRecord:
        error = data.get("error")
        if error is not None:
            try:
                kind = ErrorKind(error.get("kind"))
            except ValueError:
                kind = ErrorKind.TRANSPORT
            error = StreamError(kind, str(error.get("message")))
        return cls(
            start_ms=float(data["startMs"]),
            end_ms=float(data["endMs"]),
            requests=int(data["requests"]),
            done=bool(data["done"]),
            error=error,
            messages=[PageMessage(p, float(t), int(r), int(o)) for p, t, r, o in data["messages"]],
            heads=[(int(r), float(t)) for r, t in data.get("heads", [])],
            renders={int(k): float(t) for k, t in data.get("renders", [])},
            wire=None if data.get("wire") is None else (int(data["wire"][0]), int(data["wire"][1])),
        )


@dataclass(frozen=True, slots=True)
class Stamp:
    ns: int  # CDP timestamp of the event that delivered the message
    seen_ns: int  # when that event reached Python
    read: Hashable  # the event's identity: messages with the same one form one chunk


@dataclass(slots=True)
class Assembly:
    """What one stream adds to the phase's browser figures."""

    js_gaps_ns: list[int] = field(default_factory=list)  # JavaScript saw it - CDP stamp
    head_gaps_ns: list[int] = field(default_factory=list)  # renderer - network process (heads)
    js_head_gaps_ns: list[int] = field(default_factory=list)  # JavaScript - network (heads)
    render_gaps_ns: list[int] = field(default_factory=list)  # token 0's frame - its arrival
    js_stamped: int = 0  # messages stamped with the page's clock: no CDP event found
    reads: list[tuple[int, int, list[int]]] = field(default_factory=list)  # (cdp, seen, indices)
    page_requests: int = 0
    cdp_requests: int = 0
    deflate: bool = False


def _http(traces: Sequence[RequestTrace]) -> list[RequestTrace]:
    return [t for t in traces if not t.websocket]


def page_reader(transport: str) -> str:
    """The page.js reader a transport runs with (its registry entry's `page_reader`)."""
    reader = TRANSPORTS.get(transport).page_reader
    if reader is None:
        raise ProtocolViolation(f"transport {transport} names no page reader")
    return reader


def locate(
    reader: str, sse_api: str, message: PageMessage, traces: Sequence[RequestTrace]
) -> Stamp | None:
    """The network event that delivered `message` to page.js's `reader`, or None when CDP
    has none (yet)."""
    if reader == WEBSOCKET_READER:
        sockets = [t for t in traces if t.websocket]
        if message.req >= len(sockets) or message.pos >= len(sockets[message.req].frames_in):
            return None
        frame = sockets[message.req].frames_in[message.pos]
        if frame.data != message.payload:
            return None
        return Stamp(frame.ns, frame.seen_ns, ("frame", message.req, message.pos))
    requests = _http(traces)
    if reader in POLL_READERS:
        if message.req >= len(requests):
            return None
        poll = requests[message.req]
        done = poll.finished or (poll.reads[-1] if poll.reads and poll.failed is None else None)
        if done is None:
            return None
        return Stamp(done.ns, done.seen_ns, ("poll", message.req))
    if reader == EVENT_READER and sse_api == "eventsource":
        opened = [t for t in requests if t.status == 200]
        if message.req >= len(opened) or message.pos >= len(opened[message.req].events):
            return None
        trace = opened[message.req]
        event = trace.events[message.pos]
        if event.data != message.payload:
            return None
        k = bisect.bisect_right(trace.reads, event.ns, key=lambda r: r.ns) - 1
        if k < 0:
            return Stamp(event.ns, event.seen_ns, ("event", message.req, message.pos))
        read = trace.reads[k]
        return Stamp(read.ns, read.seen_ns, ("read", message.req, k))
    # a fetch body: the first read whose cumulative length reaches the message's end
    if message.req >= len(requests):
        return None
    trace = requests[message.req]
    ends = trace.read_ends or list(accumulate(r.length for r in trace.reads))
    k = bisect.bisect_left(ends, message.pos)
    if k >= len(ends):
        return None
    return Stamp(trace.reads[k].ns, trace.reads[k].seen_ns, ("read", message.req, k))


def complete(
    transport: str, sse_api: str, record: PageRecord, traces: Sequence[RequestTrace]
) -> bool:
    """Whether CDP has reported everything of this stream: every message's event, and the
    end of every request (the byte counts come last). A WebTransport stream has no CDP
    events to wait for."""
    if page_reader(transport) == WEBTRANSPORT_READER:
        return True
    if len(traces) < min(record.requests, 1) or not all(t.ended for t in traces):
        return False
    reader = page_reader(transport)
    return all(locate(reader, sse_api, m, traces) is not None for m in record.messages)


def assemble(
    transport: str,
    sse_api: str,
    framing_name: str,
    request: GenerationRequest,
    scheduled_ns: int,
    record: PageRecord,
    traces: Sequence[RequestTrace],
    clock: JsClock,
) -> tuple[StreamResult, Assembly]:
    # the stream starts when the page starts it: the relay from Python to the page (the
    # driver's stamp -> performance.now() at the start, `dispatch_ms`) is the harness's
    result = StreamResult.start(
        transport, request, max(scheduled_ns, clock.mono_ns(record.start_ms))
    )
    reader = page_reader(transport)
    extra = Assembly(page_requests=record.requests, cdp_requests=len(traces))
    extra.head_gaps_ns = [t.head_gap_ns for t in traces if t.head_gap_ns is not None]
    answered = reader == EVENT_READER  # EventSource retries: only answered requests opened
    opened = [t for t in _http(traces) if t.status == 200] if answered else _http(traces)
    for req, js_ms in record.heads:
        head_ns = opened[req].head_network_ns if req < len(opened) else None
        if head_ns is not None:
            extra.js_head_gaps_ns.append(clock.mono_ns(js_ms) - head_ns)
    result.requests = len(traces) or record.requests
    for trace in traces:
        result.bytes_sent += trace.bytes_sent()
        result.bytes_received += trace.bytes_received()
        result.header_bytes += trace.head_bytes()
        extra.deflate |= trace.deflate
    http = [t.protocol for t in _http(traces) if t.protocol]
    result.http_version = http[-1] if http else None
    if reader == WEBTRANSPORT_READER:
        result.http_version = "HTTP/3"
        sent, received = record.wire or (0, 0)
        result.bytes_sent += sent
        result.bytes_received += received

    chunks: list[tuple[Stamp, list[str]]] = []
    for k, message in enumerate(record.messages):
        stamp = locate(reader, sse_api, message, traces)
        js_ns = clock.mono_ns(message.js_ms)
        if stamp is None:
            if reader == WEBTRANSPORT_READER:  # no event by design; one read, one chunk
                stamp = Stamp(js_ns, js_ns, ("js", message.js_ms))
            else:
                extra.js_stamped += 1
                stamp = Stamp(js_ns, js_ns, ("js", k))
        else:
            extra.js_gaps_ns.append(js_ns - stamp.ns)
        if chunks and chunks[-1][0].read == stamp.read:
            chunks[-1][1].append(message.payload)
        else:
            chunks.append((stamp, [message.payload]))

    framing = get_framing(framing_name)
    offset = 0
    with failures_recorded(result):
        for stamp, payloads in chunks:
            before = len(result.indices)
            try:
                if reader in POLL_READERS:
                    for payload in payloads:
                        offset, _ = take_batch(result, loads(payload), offset, stamp.ns)
                else:
                    result.take([framing.decode(p) for p in payloads], stamp.ns)
            except ProtocolError as exc:
                raise ProtocolViolation(str(exc)) from exc
            extra.reads.append((stamp.ns, stamp.seen_ns, result.indices[before:]))
        if record.error is not None:
            result.error = record.error
        elif result.end_ns is None:
            raise StreamIncomplete("the stream ended without a terminal message")
    first = first_token_message(reader, framing_name, record.messages)
    if first is not None and first in record.renders and result.recv_ns:
        extra.render_gaps_ns.append(clock.mono_ns(record.renders[first]) - result.recv_ns[0])
    return result, extra


def first_token_message(
    reader: str, framing_name: str, messages: Sequence[PageMessage]
) -> int | None:
    """The index of the first message that carried a token (start messages carry none)."""
    framing = get_framing(framing_name)
    for k, message in enumerate(messages):
        try:
            if reader in POLL_READERS:
                body = loads(message.payload)
                carries = isinstance(body, dict) and bool(body.get("tokens"))
            else:
                carries = isinstance(framing.decode(message.payload), TokenMsg)
        except ProtocolError:
            continue
        if carries:
            return k
    return None
