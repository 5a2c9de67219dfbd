"""What Chromium's network stack reported of each stream, from Chrome DevTools Protocol
(CDP) `Network` events, and how a message the page received maps to the network event that
delivered it. Pure bookkeeping: `NetworkLog.on` takes each event as Playwright hands it over.

Clock: every CDP `Network` timestamp is seconds of Chromium's `base::TimeTicks`, which is
CLOCK_MONOTONIC on Linux: the clock `time.perf_counter_ns()` reads in the server. The
session checks that with a known answer before relying on it (`harness.measure.browser.clock`).

Which event stamps a message (one stamp per network read, as the Python clients stamp):

- fetch bodies (chunked, SSE over fetch): `Network.dataReceived`, one per chunk of body the
  renderer took from the network process. A message is stamped by the first read whose
  cumulative `dataLength` reaches the message's end offset in the body.
- EventSource: `Network.eventSourceMessageReceived` gives each event in order (its data is
  checked against the page's); the event is stamped by the `dataReceived` read it came in
  (the latest one at or before the event), so events parsed from one read share a stamp.
- WebSocket: `Network.webSocketFrameReceived`, one per message (its payload is checked).
- polling: `Network.loadingFinished` of the poll (the whole body is in).

Bytes: received bytes are Chromium's own count (`encodedDataLength`: response head, body,
chunked framing); request heads are rebuilt from the headers Chromium reports it sent
(`requestWillBeSentExtraInfo`), as the Python clients rebuild theirs; response heads are
exact (`headersText`). WebSocket frames are counted from their payloads plus RFC 6455
framing (the close handshake included); when the browser negotiated permessage-deflate
(Chromium offers it, the server accepts), payloads travel compressed and CDP shows them
decompressed, so those byte counts are an upper bound (`WebSocketTrace.deflate`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from clients.httpx_io import head_bytes

POLL_PATH = re.compile(r"/v1/streams/([A-Za-z0-9_-]{1,64})")
CLIENT_MASK = 4  # a client's frames carry a 4-byte mask (RFC 6455 5.3)
CLOSE_CODE = 2  # a close frame's body: the 2-byte status code


def mono_ns(seconds: float) -> int:
    """A CDP timestamp (seconds, microsecond resolution) as nanoseconds."""
    return round(seconds * 1_000_000) * 1000


def frame_header_bytes(payload: int) -> int:
    """The size of an RFC 6455 frame header for a payload of `payload` bytes (unmasked)."""
    return 2 if payload < 126 else 4 if payload < 65536 else 10


@dataclass(slots=True)
class Arrival:
    """One network event that delivered bytes: its CDP stamp and when Python got it."""

    ns: int  # CDP timestamp, CLOCK_MONOTONIC
    seen_ns: int  # time.perf_counter_ns() when the event reached Python
    length: int = 0  # body bytes it carried (dataReceived.dataLength; a frame's payload)
    data: str | None = None  # EventSource data, WebSocket payload


@dataclass(slots=True)
class RequestTrace:
    """One request (or WebSocket) as CDP reported it."""

    request_id: str
    websocket: bool = False
    url: str = ""
    method: str = ""
    stream_id: str | None = None
    body_bytes: int = 0
    request_head: int = 0  # rebuilt from the headers Chromium sent
    response_head: int = 0  # exact: the head as received (headersText)
    status: int | None = None
    protocol: str | None = None
    reads: list[Arrival] = field(default_factory=list)  # dataReceived with data in it
    read_ends: list[int] = field(default_factory=list)  # body offset after each read
    encoded: int = 0  # the sum of dataReceived.encodedDataLength
    events: list[Arrival] = field(default_factory=list)  # EventSource messages
    frames_in: list[Arrival] = field(default_factory=list)
    frames_out: list[Arrival] = field(default_factory=list)
    finished: Arrival | None = None  # loadingFinished, or webSocketClosed
    total_received: int | None = None  # loadingFinished.encodedDataLength
    failed: str | None = None  # loadingFailed's errorText (or a WebSocket's frame error)
    deflate: bool = False  # the WebSocket negotiated permessage-deflate
    head_network_ns: int | None = None  # the network process had the response head
    head_gap_ns: int | None = None  # the renderer got the response head - the network got it
    sent_headers: dict[str, str] | None = None  # requestWillBeSentExtraInfo: what went out

    @property
    def ended(self) -> bool:
        return self.finished is not None or self.failed is not None

    def bytes_sent(self) -> int:
        if not self.websocket:
            return self.request_head + self.body_bytes
        frames = sum(f.length + frame_header_bytes(f.length) + CLIENT_MASK for f in self.frames_out)
        close = frame_header_bytes(CLOSE_CODE) + CLIENT_MASK + CLOSE_CODE if self.finished else 0
        return self.request_head + frames + close

    def bytes_received(self) -> int:
        if not self.websocket:
            if self.total_received is not None:
                return self.total_received
            return self.response_head + self.encoded
        frames = sum(f.length + frame_header_bytes(f.length) for f in self.frames_in)
        close = frame_header_bytes(CLOSE_CODE) + CLOSE_CODE if self.finished else 0
        return self.response_head + frames + close

    def head_bytes(self) -> int:
        return self.request_head + self.response_head


def stream_of_request(url: str, method: str, post_data: str | None) -> str | None:
    """The stream a request belongs to: `?stream=` of an EventSource, the id in a poll's
    path, or `stream_id` in a POST body (the driver always names its streams)."""
    parts = urlsplit(url)
    if method == "GET" and parts.path.endswith("/v1/sse"):
        return parse_qs(parts.query).get("stream", [None])[0]
    poll = POLL_PATH.search(parts.path)
    if method == "GET" and poll and parts.path.endswith(poll.group(0)):
        return poll.group(1)
    return stream_of_message(post_data)


def stream_of_message(text: str | None) -> str | None:
    """`stream_id` of a JSON request body or first WebSocket message, if it names one."""
    if not text:
        return None
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    stream_id = body.get("stream_id") if isinstance(body, dict) else None
    return stream_id if isinstance(stream_id, str) else None


def request_head_bytes(method: str, url: str, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    raw = [(k.encode(), str(v).encode()) for k, v in headers.items()]
    return head_bytes(f"{method} {target} HTTP/1.1", raw)


class NetworkLog:
    """CDP `Network` events of one page, grouped by stream. `take` hands a stream's requests
    over (in the order they were made) and forgets them."""

    def __init__(self, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.clock = clock
        self.by_id: dict[str, RequestTrace] = {}
        self.streams: dict[str, list[RequestTrace]] = {}
        self.changed: dict[str, asyncio.Event] = {}
        self.events = 0

    def trace(self, request_id: str) -> RequestTrace:
        found = self.by_id.get(request_id)
        if found is None:
            found = self.by_id[request_id] = RequestTrace(request_id)
        return found

    def attach(self, trace: RequestTrace, stream_id: str | None) -> None:
        if stream_id is None or trace.stream_id is not None:
            return
        trace.stream_id = stream_id
        self.streams.setdefault(stream_id, []).append(trace)

    def on(self, method: str, params: dict[str, Any]) -> None:
        seen = self.clock()
        self.events += 1
        handler = HANDLERS.get(method)
        if handler is None:
            return
        trace = self.trace(params["requestId"])
        handler(self, trace, params, seen)
        if trace.stream_id is not None:
            event = self.changed.get(trace.stream_id)
            if event is not None:
                event.set()
        elif trace.ended:
            del self.by_id[trace.request_id]  # not a stream's (the page itself): forget it

    async def settle(
        self, stream_id: str, complete: Callable[[list[RequestTrace]], bool], timeout_s: float
    ) -> bool:
        """Wait until `complete` holds for the stream's requests (CDP events may trail the
        page's own view a little), at most `timeout_s`; whether it came to hold."""
        event = self.changed.setdefault(stream_id, asyncio.Event())
        try:
            async with asyncio.timeout(timeout_s):
                while not complete(self.streams.get(stream_id, [])):
                    event.clear()
                    await event.wait()
        except TimeoutError:
            return False
        finally:
            self.changed.pop(stream_id, None)
        return True

    def take(self, stream_id: str) -> list[RequestTrace]:
        traces = self.streams.pop(stream_id, [])
        for trace in traces:
            self.by_id.pop(trace.request_id, None)
        return traces


# --- event handlers --------------------------------------------------------------------

Handler = Callable[[NetworkLog, RequestTrace, dict[str, Any], int], None]


def _will_be_sent(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    request = p["request"]
    trace.url, trace.method = request["url"], request["method"]
    post = request.get("postData")
    if post is not None and not trace.body_bytes:
        trace.body_bytes = len(post.encode())
    log.attach(trace, stream_of_request(trace.url, trace.method, post))


def _extra_info(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    # may come before requestWillBeSent: the head is rebuilt once both are in (_with_head)
    trace.sent_headers = p.get("headers", {})


def _response_extra(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    text = p.get("headersText")
    if text is not None:
        trace.response_head = len(text.encode("latin-1", "replace"))


def _response(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    response = p["response"]
    trace.status = response.get("status")
    timing = response.get("timing")
    if timing and timing.get("receiveHeadersEnd", -1) >= 0:
        # requestTime (s) and its offsets (ms) come from the network process's load timing
        network_ns = mono_ns(timing["requestTime"]) + round(timing["receiveHeadersEnd"] * 1e6)
        trace.head_network_ns = network_ns
        trace.head_gap_ns = mono_ns(p["timestamp"]) - network_ns
    protocol = response.get("protocol") or ""
    trace.protocol = {"http/1.1": "HTTP/1.1", "h2": "HTTP/2", "h3": "HTTP/3"}.get(
        protocol, protocol or None
    )


def _data(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.encoded += p.get("encodedDataLength", 0)
    if p["dataLength"] > 0:
        trace.reads.append(Arrival(mono_ns(p["timestamp"]), seen, p["dataLength"]))
        trace.read_ends.append((trace.read_ends[-1] if trace.read_ends else 0) + p["dataLength"])


def _event_source(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.events.append(Arrival(mono_ns(p["timestamp"]), seen, data=p.get("data", "")))


def _finished(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.finished = Arrival(mono_ns(p["timestamp"]), seen)
    trace.total_received = p.get("encodedDataLength")


def _failed(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.failed = p.get("errorText") or "failed"


def _ws_created(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.websocket, trace.url, trace.method = True, p.get("url", ""), "GET"


def _ws_handshake(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.websocket = True
    trace.request_head = request_head_bytes("GET", trace.url, p["request"].get("headers", {}))


def _ws_response(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    response = p["response"]
    trace.status = response.get("status")
    text = response.get("headersText")
    if text is not None:
        trace.response_head = len(text.encode("latin-1", "replace"))
    extensions = {k.lower(): v for k, v in response.get("headers", {}).items()}
    trace.deflate = "permessage-deflate" in extensions.get("sec-websocket-extensions", "")


def _ws_sent(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    payload = p["response"].get("payloadData", "")
    trace.frames_out.append(Arrival(mono_ns(p["timestamp"]), seen, len(payload.encode())))
    if len(trace.frames_out) == 1:
        log.attach(trace, stream_of_message(payload))


def _ws_received(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    payload = p["response"].get("payloadData", "")
    arrival = Arrival(mono_ns(p["timestamp"]), seen, len(payload.encode()), payload)
    trace.frames_in.append(arrival)


def _ws_closed(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.finished = Arrival(mono_ns(p["timestamp"]), seen)


def _ws_error(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
    trace.failed = p.get("errorMessage") or "frame error"


def _with_head(handler: Handler) -> Handler:
    """Rebuild the request head once both requestWillBeSent (method, URL) and its
    ExtraInfo (the headers actually sent) are in, whichever came first."""

    def wrapped(log: NetworkLog, trace: RequestTrace, p: dict[str, Any], seen: int) -> None:
        handler(log, trace, p, seen)
        if trace.sent_headers is not None and trace.method and not trace.request_head:
            trace.request_head = request_head_bytes(trace.method, trace.url, trace.sent_headers)

    return wrapped


HANDLERS: dict[str, Handler] = {
    "Network.requestWillBeSent": _with_head(_will_be_sent),
    "Network.requestWillBeSentExtraInfo": _with_head(_extra_info),
    "Network.responseReceived": _response,
    "Network.responseReceivedExtraInfo": _response_extra,
    "Network.dataReceived": _data,
    "Network.eventSourceMessageReceived": _event_source,
    "Network.loadingFinished": _finished,
    "Network.loadingFailed": _failed,
    "Network.webSocketCreated": _ws_created,
    "Network.webSocketWillSendHandshakeRequest": _ws_handshake,
    "Network.webSocketHandshakeResponseReceived": _ws_response,
    "Network.webSocketFrameSent": _ws_sent,
    "Network.webSocketFrameReceived": _ws_received,
    "Network.webSocketClosed": _ws_closed,
    "Network.webSocketFrameError": _ws_error,
}
