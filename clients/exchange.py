"""One exchange logic per transport, written once and run by both drivers.

A transport's client logic (what to send, how to read, when the stream ends) is a generator
that yields I/O *effects* and receives their replies, the way httpx's `Auth.auth_flow` is
one generator that both its sync and async clients drive. The asyncio driver
(`clients.asyncio_io`) and the blocking driver used by locust (`clients.blocking_io`)
perform the effects with their own libraries; neither knows which transport it runs.

    def exchange(settings, request, result):          # an `ExchangeLogic`
        reply = yield Fetch(HTTPCall("POST", "/v1/streams", json=...))
        ...
        arrival = yield READ_BODY                     # None once the body has ended

Accounting that belongs to the I/O (requests, HTTP head bytes, wire bytes from the
socket's TCP_INFO counters) is done by the drivers as they perform each effect, into the
same `StreamResult` the logic records tokens in. Clock reads happen in the drivers, at the
I/O boundary: every `Reply`, `Arrival` and `Callback` carries the `perf_counter_ns()` of
its arrival, and a `Drop`'s reply is its stamp. Exchange logic never reads the clock (h11's
rule: the driver hands it the time with each event), so the scripted driver
(`clients.scripted_io`) can run it from canned replies, time included. The fault plan's
drop, leave and resume is written once, in `clients.resume`.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clients.interface import ClientSettings, StreamResult
from errors import HTTPStatusFailed, ProtocolError, ProtocolViolation
from wire.messages import GenerationRequest


@dataclass(frozen=True, slots=True)
class HTTPCall:
    """One HTTP request, without I/O. `url` is relative to the client's base URL."""

    method: str
    url: str
    params: dict[str, str | int] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expected_status: int = 200

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `httpx.Client.request`/`.stream` (and their async twins)."""
        return {"params": self.params, "json": self.json, "headers": self.headers}


# --- effects: what an exchange asks its driver to do ------------------------------------


@dataclass(frozen=True, slots=True)
class Fetch:
    """Send one HTTP request and read its whole response. Reply: `Reply`."""

    call: HTTPCall


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Send one HTTP request and keep its body open for `ReadBody`. Reply: `Reply` (its body
    is empty unless the status is not the expected one: then it is read whole, to explain)."""

    call: HTTPCall


@dataclass(frozen=True, slots=True)
class ReadBody:
    """The next network read of the open body. Reply: `Arrival`, or None at its end."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait `seconds` (computed by the logic from the stamps it was given). Reply: None."""

    seconds: float


@dataclass(frozen=True, slots=True)
class OpenWebSocket:
    """Open a WebSocket to `path` on the client's base URL. Reply: None."""

    path: str


@dataclass(frozen=True, slots=True)
class OpenWebTransport:
    """Open a WebTransport session to `path` at the client's base URL's host, on the UDP
    port of its number, and one bidirectional stream on it, whose messages `SendText` and
    `ReceiveMessage` then carry (`wire.webtransport`). Reply: None."""

    path: str


@dataclass(frozen=True, slots=True)
class SendText:
    """Send one WebSocket (or WebTransport) text message. Reply: None."""

    text: str


@dataclass(frozen=True, slots=True)
class ReceiveMessage:
    """The next WebSocket (or WebTransport) message. Reply: `Arrival`, or None once the peer
    closed cleanly (ended the WebTransport stream)."""


@dataclass(frozen=True, slots=True)
class Drop:
    """Drop the open connection (the streamed body, or the WebSocket) without a word, as a
    network failure would: no close frame, nothing more read. Reply: the stamp of the drop
    (int, perf_counter_ns)."""


@dataclass(frozen=True, slots=True)
class ListenForCallbacks:
    """Open this stream's mailbox on the client's callback receiver, a small HTTP server on
    loopback that the driver starts on first use (one per client) and stops with the client.
    Reply: the callback URL (str) whose POSTs reach the mailbox, until the stream ends."""


@dataclass(frozen=True, slots=True)
class ReceiveCallback:
    """The next request that reached the stream's callback URL, held open until
    `AnswerCallback`. Reply: `Callback`, or None when none came within `timeout_s`."""

    timeout_s: float


@dataclass(frozen=True, slots=True)
class AnswerCallback:
    """Answer the callback received last: `status`, and `body` as JSON. Reply: None."""

    status: int
    body: bytes = b""


Effect = (
    Fetch
    | OpenStream
    | ReadBody
    | Sleep
    | OpenWebSocket
    | OpenWebTransport
    | SendText
    | ReceiveMessage
    | Drop
    | ListenForCallbacks
    | ReceiveCallback
    | AnswerCallback
)
READ_BODY = ReadBody()
RECEIVE = ReceiveMessage()
DROP = Drop()
LISTEN = ListenForCallbacks()

# The driver method that performs each effect (both drivers name them alike).
HANDLERS: dict[type[Effect], str] = {
    Fetch: "fetch",
    OpenStream: "open_stream",
    ReadBody: "read_body",
    Sleep: "sleep",
    OpenWebSocket: "open_websocket",
    OpenWebTransport: "open_webtransport",
    SendText: "send_text",
    ReceiveMessage: "receive",
    Drop: "drop",
    ListenForCallbacks: "listen_for_callbacks",
    ReceiveCallback: "receive_callback",
    AnswerCallback: "answer_callback",
}


# --- replies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP response head (and body, for `Fetch`), stamped when it was complete."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    path: str
    now_ns: int


@dataclass(frozen=True, slots=True)
class Arrival:
    """One network read of a body (bytes) or one WebSocket message (str or bytes)."""

    data: bytes | str
    now_ns: int


@dataclass(frozen=True, slots=True)
class Callback:
    """One HTTP request a callback receiver took for the stream, stamped as the read that
    completed its body returned: `now_ns` (perf_counter_ns, for tokens) and `wall_s`
    (Unix time, to judge a signature's timestamp). Header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    now_ns: int
    wall_s: float


Exchange = Generator[Effect, Any, None]


class ExchangeLogic(Protocol):
    """A transport's client logic: one stream from request to terminal message."""

    def __call__(
        self, settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange: ...


def require_status(reply: Reply, call: HTTPCall) -> None:
    if reply.status != call.expected_status:
        text = reply.body[:300].decode(errors="replace")
        raise HTTPStatusFailed(f"HTTP {reply.status} from {reply.path}: {text}")


class Steps:
    """Steps an exchange for a driver: `first()`, then `send(reply)` until it returns None
    (the exchange finished). Exceptions the logic raises propagate, codec errors mapped."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def send(self, reply: object) -> Effect | None:
        # codec errors inside an exchange are the peer's protocol violations (mapped here,
        # not by a context manager: one per network read cost about a microsecond per token
        # at 1,000 streams, py-spy)
        try:
            return self._exchange.send(reply)
        except StopIteration:
            return None
        except (ProtocolError, UnicodeDecodeError) as exc:
            raise ProtocolViolation(str(exc)) from exc

    def close(self) -> None:
        self._exchange.close()
