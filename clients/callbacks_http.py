"""What both callback receivers (webhooks) share, pure: the HTTP/1.1 they speak, their own
answers and what a request hands its stream. The receivers are `callbacks_asyncio.py` and
`callbacks_blocking.py`: a small HTTP/1.1 server on loopback, one per client, made on first
use and closed with the client.

A stream opens a *mailbox* on its client's receiver (`ListenForCallbacks`): a path with an
unguessable key, `http://127.0.0.1:PORT/callbacks/<key>`, which the stream hands the server
as its callback URL. Each POST to it is read whole, stamped as the read that completed its
body returns (`perf_counter_ns` for tokens, `time.time()` for the signature's timestamp),
charged with its connection's TCP_INFO counter growth, and put in the mailbox; the request
is held open until the stream's exchange logic answers it (`ReceiveCallback`, then
`AnswerCallback`). Verifying, deduplicating and recording are the logic's (`clients/webhook.py`);
the receivers only move requests and answers. A request for a mailbox that is closed (its
stream ended) or never existed is answered `410 Gone`, which tells a webhook sender to
stop; any method but POST gets 405.

Two receivers with one behaviour: `AsyncReceiver` (asyncio streams; the benchmark's
driver) and `BlockingReceiver` (a thread per connection: plain threads, or greenlets under
gevent's monkey patching, as locust runs it). The HTTP/1.1 parsing and answers here are
shared: httptools parses requests (the parser the server runs under uvicorn and the lean
client uses for responses); bodies need a `Content-Length` (a chunked request gets 501),
heads are at most 16 KiB, bodies 16 MiB, keep-alive as HTTP/1.1 says. No TLS: the receiver
listens on 127.0.0.1 only.

Wire bytes: an accepted connection's counters start from zero; each request is charged
the growth since the previous one on its connection, read when its body is complete: the
request itself (received) and what the peer has acknowledged of earlier answers (sent). An
answer is acknowledged with the peer's next request, so it is charged to that request's
stream; the last answer on each connection is not charged.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar

import httptools
import orjson

from clients.exchange import Callback
from clients.interface import StreamResult

RECEIVER_HOST = "127.0.0.1"
CALLBACK_PREFIX = "/callbacks/"
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 16 << 20
READ_SIZE = 64 * 1024
ANSWER_WAIT_S = 60.0  # a request waits this long for its stream's answer, then gets 503
MAX_READS = 1 << 40  # bounds for the receivers' loops: never reached, a connection closes first
MAX_CONNECTIONS = 1 << 40
GONE = "no stream listens at this callback URL (it ended, or never did)"


# --- HTTP/1.1 -------------------------------------------------------------------------------


class BadRequest(Exception):
    """Bytes that are not a request the receiver takes: answered with `status`, then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """One complete request, body and all."""

    method: str
    target: str
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes
    head_bytes: int  # request line, headers and the blank line, as serialised
    keep_alive: bool


class RequestParser:
    """Feed bytes as they arrive; take complete requests out (HTTP/1.1 and 1.0). httptools
    parses; this class adds the receiver's limits and refusals, and counts each head as
    serialised (request line, `name: value` lines, the blank line: exact for the heads
    httpx writes, as `clients.httpx_io.head_size` counts them)."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._ready: collections.deque[ParsedRequest] = collections.deque()
        self._refused: BadRequest | None = None
        self._in_head = True  # between requests, or inside a head
        self._head_fed = 0  # bytes fed since the head began: bounds a head that never ends
        self._new_message()

    def _new_message(self) -> None:
        self._target = bytearray()
        self._headers: dict[str, str] = {}
        self._header_lines = 0  # bytes of the header lines, as serialised
        self._body = bytearray()
        self._method = ""
        self._head_bytes = 0
        self._keep_alive = False

    def feed(self, data: bytes) -> None:
        if self._refused is not None:
            return
        if self._in_head:
            self._head_fed += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self._refused is None:  # else a callback below refused, and said why
                self._refused = BadRequest(400, f"not an HTTP/1.x request: {exc}")
            return
        if self._in_head and self._head_fed > MAX_HEAD_BYTES:
            self._refused = BadRequest(431, f"the request head exceeds {MAX_HEAD_BYTES} bytes")

    def next_request(self) -> ParsedRequest | None:
        """The next complete request, or None until more bytes come; `BadRequest` for bytes
        that are not one (the connection is then answered and closed)."""
        if self._ready:
            return self._ready.popleft()
        if self._refused is not None:
            raise self._refused
        return None

    def _refuse(self, status: int, message: str) -> None:
        self._refused = BadRequest(status, message)
        raise self._refused  # stops the parser: `feed` keeps this refusal

    # --- httptools callbacks ----------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key == "transfer-encoding":
            self._refuse(501, "send the body with a Content-Length, not a transfer coding")
        self._headers[key] = value.decode("latin-1")
        self._header_lines += len(name) + len(value) + 4  # "name: value\r\n"

    def on_headers_complete(self) -> None:
        version = self._parser.get_http_version()
        if version not in ("1.0", "1.1"):
            self._refuse(400, f"not an HTTP/1.x request: HTTP/{version}")
        self._method = self._parser.get_method().decode("latin-1")
        request_line = len(self._method) + len(self._target) + len(" HTTP/1.1\r\n") + 1
        self._head_bytes = request_line + self._header_lines + 2
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, f"the request head exceeds {MAX_HEAD_BYTES} bytes")
        if int(self._headers.get("content-length", "0")) > MAX_BODY_BYTES:
            self._refuse(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
        self._keep_alive = self._parser.should_keep_alive()
        self._in_head = False

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self._ready.append(
            ParsedRequest(
                self._method,
                self._target.decode("latin-1"),
                self._headers,
                bytes(self._body),
                self._head_bytes,
                self._keep_alive,
            )
        )
        self._new_message()
        self._in_head = True
        self._head_fed = 0


def encode_answer(status: int, body: bytes, keep_alive: bool) -> tuple[bytes, int]:
    """An answer's bytes, and the size of its head."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}"]
    if body:
        lines.append("content-type: application/json")
    if not keep_alive:
        lines.append("connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body, len(head)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def gone(keep_alive: bool) -> bytes:
    """The answer to a request whose stream has ended (or never was): 410 Gone."""
    return encode_answer(410, error_body(GONE), keep_alive)[0]


def unanswered() -> bytes:
    """The answer to a request its stream did not answer within `ANSWER_WAIT_S`."""
    return encode_answer(503, error_body("the stream did not answer"), False)[0]


def mailbox_key(target: str) -> str | None:
    path = target.partition("?")[0]
    return path[len(CALLBACK_PREFIX) :] if path.startswith(CALLBACK_PREFIX) else None


# --- what a receiver hands a stream ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inbound:
    """A request a receiver took for a stream, with the accounting it brings."""

    callback: Callback
    head_bytes: int
    wire: tuple[int, int]  # (sent, received) on its connection since the previous request
    keep_alive: bool


def count_callback(result: StreamResult, inbound: Inbound) -> None:
    """A received callback is one of the stream's requests: its head, its wire bytes."""
    result.requests += 1
    result.header_bytes += inbound.head_bytes
    result.add_bytes(inbound.wire)


def inbound_of(
    request: ParsedRequest, wire: tuple[int, int], now_ns: int, wall_s: float
) -> Inbound:
    callback = Callback(
        request.method, request.target, request.headers, request.body, now_ns, wall_s
    )
    return Inbound(callback, request.head_bytes, wire, request.keep_alive)


def refusal(request: ParsedRequest, known: bool) -> bytes | None:
    """The receiver's own answer to a request no stream takes (None: a stream takes it)."""
    if request.method != "POST":
        return encode_answer(405, error_body("callbacks are POSTs"), request.keep_alive)[0]
    if not known:
        return gone(request.keep_alive)
    return None


M = TypeVar("M")
A = TypeVar("A")


def answer_steps(
    parser: RequestParser,
    charge: Callable[[], tuple[int, int]],
    now_ns: int,
    wall_s: float,
    find: Callable[[str], M | None],
) -> Iterator[tuple[bytes | None, M | None, Inbound | None, bool]]:
    """Each complete request in `parser`, in order, as (the receiver's own answer, or None:
    deliver the inbound to the mailbox; the mailbox; the inbound; whether the connection
    stays open after it); `charge` reads the connection's wire bytes since the request
    before. A bad request ends the connection with its answer."""
    while True:
        try:
            request = parser.next_request()
        except BadRequest as exc:
            yield encode_answer(exc.status, error_body(exc.message), False)[0], None, None, False
            return
        if request is None:
            return
        mailbox = find(mailbox_key(request.target) or "")
        inbound = inbound_of(request, charge(), now_ns, wall_s)
        yield refusal(request, mailbox is not None), mailbox, inbound, request.keep_alive


def answer_taken(
    current: tuple[Inbound, A] | None, status: int, body: bytes
) -> tuple[A, bytes, int]:
    """The answer to the request a stream took last (`current`): where it goes, its bytes
    and the size of its head."""
    assert current is not None, "AnswerCallback before ReceiveCallback"
    inbound, answered = current
    data, head = encode_answer(status, body, inbound.keep_alive)
    return answered, data, head


def new_address(port: int) -> tuple[str, str]:
    """A new mailbox's unguessable key and its URL on the receiver at `port`."""
    key = secrets.token_urlsafe(16)
    return key, f"http://{RECEIVER_HOST}:{port}{CALLBACK_PREFIX}{key}"
