"""What both drivers share to receive callbacks (webhooks): a small HTTP/1.1 server on
loopback, one per client, made on first use and closed with the client.

A stream opens a *mailbox* on its client's receiver (`ListenForCallbacks`): a path with an
unguessable key, `http://127.0.0.1:PORT/callbacks/<key>`, which the stream hands the server
as its callback URL. Each POST to it is read whole, stamped as the read that completed its
body returns (`perf_counter_ns` for tokens, `time.time()` for the signature's timestamp),
charged with its connection's TCP_INFO counter growth, and put in the mailbox; the request
is held open until the stream's exchange logic answers it (`ReceiveCallback`, then
`AnswerCallback`). Verifying, deduplicating and recording are the logic's (`clients/webhook.py`);
this module only moves requests and answers. A request for a mailbox that is closed (its
stream ended) or never existed is answered `410 Gone` here, which tells a webhook sender to
stop; any method but POST gets 405.

Two receivers with one behaviour: `AsyncReceiver` (asyncio streams; the benchmark's
driver) and `BlockingReceiver` (a thread per connection: plain threads, or greenlets under
gevent's monkey patching, as locust runs it). The HTTP/1.1 parsing and answers are shared
and pure (`RequestParser`, `encode_answer`): bodies need a `Content-Length` (a
chunked request gets 501), heads are at most 16 KiB, bodies 16 MiB, keep-alive as HTTP/1.1
says. No TLS: the receiver listens on 127.0.0.1 only.

Wire bytes: an accepted connection's counters start from zero; each request is charged
the growth since the previous one on its connection, read when its body is complete: the
request itself (received) and what the peer has acknowledged of earlier answers (sent). An
answer is acknowledged with the peer's next request, so it is charged to that request's
stream; the last answer on each connection is not charged.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TypeVar

import orjson

from clients.exchange import Callback
from clients.interface import StreamResult
from clients.wirebytes import tcp_counters

RECEIVER_HOST = "127.0.0.1"
CALLBACK_PREFIX = "/callbacks/"
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 16 << 20
READ_SIZE = 64 * 1024
ANSWER_WAIT_S = 60.0  # a request waits this long for its stream's answer, then gets 503
MAX_READS = 1 << 40  # bounds for the loops below: never reached, a connection closes first
MAX_CONNECTIONS = 1 << 40
GONE = "no stream listens at this callback URL (it ended, or never did)"


# --- HTTP/1.1, pure -------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    method: str
    target: str
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes
    head_bytes: int  # request line, headers and the blank line, as received
    keep_alive: bool


class RequestParser:
    """Feed bytes as they arrive; take complete requests out (HTTP/1.1 and 1.0)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_request(self) -> ParsedRequest | None:
        """The next complete request, or None until more bytes come; `BadRequest` for bytes
        that are not one (the connection is then answered and closed)."""
        while self._buffer.startswith(b"\r\n"):  # stray line breaks between requests
            del self._buffer[:2]
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise BadRequest(431, f"the request head exceeds {MAX_HEAD_BYTES} bytes")
            return None
        if end > MAX_HEAD_BYTES:
            raise BadRequest(431, f"the request head exceeds {MAX_HEAD_BYTES} bytes")
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1]:
            raise BadRequest(400, f"not an HTTP/1.x request line: {lines[0][:100]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(400, f"malformed header line: {line[:100]!r}")
            headers[name.lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise BadRequest(501, "send the body with a Content-Length, not a transfer coding")
        declared = headers.get("content-length", "0")
        if not declared.isdigit():
            raise BadRequest(400, f"bad Content-Length {declared[:40]!r}")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise BadRequest(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
        total = end + 4 + length
        if len(self._buffer) < total:
            return None
        body = bytes(self._buffer[end + 4 : total])
        del self._buffer[:total]
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (
            version == "HTTP/1.1" or "keep-alive" in connection
        )
        return ParsedRequest(method, target, headers, body, end + 4, keep_alive)


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


# An accepted connection's counters read (0, 0) before any data moves (the active side's
# read (1, 0): its SYN counts as acknowledged, `clients.wirebytes.FRESH`). Not read at
# accept: by then the first request may already be in, and counted.
ACCEPTED_FRESH = (0, 0)


class Counters:
    """An accepted connection's TCP_INFO counters, charged request by request."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        try:
            tcp_counters(sock)
            self.last: tuple[int, int] | None = ACCEPTED_FRESH
        except OSError:  # no TCP_INFO byte counters (not Linux): no wire bytes
            self.last = None

    def charge(self) -> tuple[int, int]:
        if self.last is None:
            return 0, 0
        try:
            now = tcp_counters(self.sock)
        except OSError:
            return 0, 0
        sent, received = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return sent, received


def inbound_of(request: ParsedRequest, counters: Counters, now_ns: int, wall_s: float) -> Inbound:
    callback = Callback(
        request.method, request.target, request.headers, request.body, now_ns, wall_s
    )
    return Inbound(callback, request.head_bytes, counters.charge(), request.keep_alive)


def refusal(request: ParsedRequest, known: bool) -> bytes | None:
    """The receiver's own answer to a request no stream takes (None: a stream takes it)."""
    if request.method != "POST":
        return encode_answer(405, error_body("callbacks are POSTs"), request.keep_alive)[0]
    if not known:
        return encode_answer(410, error_body(GONE), request.keep_alive)[0]
    return None


M = TypeVar("M")
A = TypeVar("A")


def answer_steps(
    parser: RequestParser,
    counters: Counters,
    now_ns: int,
    wall_s: float,
    find: Callable[[str], M | None],
) -> Iterator[tuple[bytes | None, M | None, Inbound | None, bool]]:
    """Each complete request in `parser`, in order, as (the receiver's own answer, or None:
    deliver the inbound to the mailbox; the mailbox; the inbound; whether the connection
    stays open after it). A bad request ends the connection with its answer."""
    while True:
        try:
            request = parser.next_request()
        except BadRequest as exc:
            yield encode_answer(exc.status, error_body(exc.message), False)[0], None, None, False
            return
        if request is None:
            return
        mailbox = find(mailbox_key(request.target) or "")
        inbound = inbound_of(request, counters, now_ns, wall_s)
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


def new_key() -> str:
    return secrets.token_urlsafe(16)


def url_for(port: int, key: str) -> str:
    return f"http://{RECEIVER_HOST}:{port}{CALLBACK_PREFIX}{key}"


# --- asyncio --------------------------------------------------------------------------------


@dataclass(eq=False)
class AsyncMailbox:
    receiver: AsyncReceiver
    key: str
    url: str
    inbox: asyncio.Queue[tuple[Inbound, asyncio.Future[bytes]]] = field(
        default_factory=asyncio.Queue
    )
    current: tuple[Inbound, asyncio.Future[bytes]] | None = None

    async def deliver(self, inbound: Inbound) -> bytes:
        """The connection's side: hand the request over, wait for the stream's answer."""
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.inbox.put_nowait((inbound, answered))
        try:
            async with asyncio.timeout(ANSWER_WAIT_S):
                return await answered
        except TimeoutError:
            return encode_answer(503, error_body("the stream did not answer"), False)[0]

    async def next(self, timeout_s: float) -> Inbound | None:
        try:
            async with asyncio.timeout(timeout_s):
                self.current = await self.inbox.get()
        except TimeoutError:
            return None
        return self.current[0]

    def answer(self, status: int, body: bytes) -> int:
        """Answer the request taken last; the size of the answer's head."""
        current, self.current = self.current, None
        answered, data, head = answer_taken(current, status, body)
        if not answered.done():
            answered.set_result(data)
        return head

    def close(self) -> None:
        """The stream ended: requests still waiting (and later ones) get 410 Gone."""
        self.receiver.mailboxes.pop(self.key, None)
        waiting = [self.current] if self.current is not None else []
        self.current = None
        while not self.inbox.empty():
            waiting.append(self.inbox.get_nowait())
        for inbound, answered in waiting:
            if not answered.done():
                answered.set_result(encode_answer(410, error_body(GONE), inbound.keep_alive)[0])


class AsyncReceiver:
    """The asyncio client's callback receiver (started on first use)."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, AsyncMailbox] = {}
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.serving: set[asyncio.Task[object]] = set()  # one per connection
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        async with self._starting:
            if self.server is None:
                self.server = await asyncio.start_server(
                    self._serve, RECEIVER_HOST, 0, backlog=1024, limit=READ_SIZE
                )
                self.port = self.server.sockets[0].getsockname()[1]

    def open(self) -> AsyncMailbox:
        key = new_key()
        mailbox = AsyncMailbox(self, key, url_for(self.port, key))
        self.mailboxes[key] = mailbox
        return mailbox

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.serving.add(task)
        self.writers.add(writer)
        counters = Counters(writer.get_extra_info("socket"))
        parser = RequestParser()
        try:
            for _ in range(MAX_READS):
                data = await reader.read(READ_SIZE)
                now_ns, wall_s = time.perf_counter_ns(), time.time()
                if not data:
                    return
                parser.feed(data)
                if not await self._answer_all(parser, counters, writer, now_ns, wall_s):
                    return
        except (ConnectionError, OSError):
            pass  # the peer went away
        finally:
            self.writers.discard(writer)
            writer.close()
            self.serving.discard(task)  # type: ignore[arg-type]

    async def _answer_all(
        self,
        parser: RequestParser,
        counters: Counters,
        writer: asyncio.StreamWriter,
        now_ns: int,
        wall_s: float,
    ) -> bool:
        """Answer every complete request; False once the connection is to close."""
        steps = answer_steps(parser, counters, now_ns, wall_s, self.mailboxes.get)
        for answer, mailbox, inbound, keep_alive in steps:
            if answer is None:
                assert mailbox is not None and inbound is not None
                answer = await mailbox.deliver(inbound)
            writer.write(answer)
            await writer.drain()
            if not keep_alive:
                return False
        return True

    async def aclose(self) -> None:
        for mailbox in list(self.mailboxes.values()):
            mailbox.close()
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()  # its connection's reader sees the end, its task returns
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                if self.serving:
                    await asyncio.gather(*self.serving, return_exceptions=True)
                if self.server is not None:
                    await self.server.wait_closed()


# --- blocking (threads, or greenlets under gevent) ------------------------------------------


@dataclass(eq=False)
class Answered:
    """A request's answer, from the stream's thread to the connection's."""

    done: threading.Event = field(default_factory=threading.Event)
    data: bytes = b""

    def set(self, data: bytes) -> None:
        if not self.done.is_set():
            self.data = data
            self.done.set()


@dataclass(eq=False)
class BlockingMailbox:
    receiver: BlockingReceiver
    key: str
    url: str
    inbox: queue.Queue[tuple[Inbound, Answered]] = field(default_factory=queue.Queue)
    current: tuple[Inbound, Answered] | None = None
    closed: bool = False

    def deliver(self, inbound: Inbound) -> bytes:
        answered = Answered()
        self.inbox.put((inbound, answered))
        if self.closed:  # closed (by the stream's thread) since the receiver looked it up
            self._answer_waiting()
        if answered.done.wait(ANSWER_WAIT_S):
            return answered.data
        return encode_answer(503, error_body("the stream did not answer"), False)[0]

    def next(self, timeout_s: float) -> Inbound | None:
        try:
            self.current = self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None
        return self.current[0]

    def answer(self, status: int, body: bytes) -> int:
        current, self.current = self.current, None
        answered, data, head = answer_taken(current, status, body)
        answered.set(data)
        return head

    def close(self) -> None:
        with self.receiver.lock:
            self.receiver.mailboxes.pop(self.key, None)
        self.closed = True
        self._answer_waiting()

    def _answer_waiting(self) -> None:
        """Requests still waiting (and later ones) get 410 Gone."""
        waiting = [self.current] if self.current is not None else []
        self.current = None
        with contextlib.suppress(queue.Empty):
            for _ in range(self.inbox.qsize() + 1):
                waiting.append(self.inbox.get_nowait())
        for inbound, answered in waiting:
            answered.set(encode_answer(410, error_body(GONE), inbound.keep_alive)[0])


class BlockingReceiver:
    """The blocking client's callback receiver: an accepting thread and one thread per
    connection (greenlets under gevent), started when made."""

    def __init__(self) -> None:
        self.mailboxes: dict[str, BlockingMailbox] = {}
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        self.closed = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.bind((RECEIVER_HOST, 0))
            self.sock.listen(1024)
        except OSError:
            self.sock.close()
            raise
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept_all, name="tokenwire-callbacks", daemon=True).start()

    def open(self) -> BlockingMailbox:
        key = new_key()
        mailbox = BlockingMailbox(self, key, url_for(self.port, key))
        with self.lock:
            self.mailboxes[key] = mailbox
        return mailbox

    def _accept_all(self) -> None:
        for _ in range(MAX_CONNECTIONS):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with self.lock:
                if self.closed:
                    conn.close()
                    return
                self.connections.add(conn)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        counters = Counters(conn)
        parser = RequestParser()
        try:
            for _ in range(MAX_READS):
                data = conn.recv(READ_SIZE)
                now_ns, wall_s = time.perf_counter_ns(), time.time()
                if not data:
                    return
                parser.feed(data)
                if not self._answer_all(parser, counters, conn, now_ns, wall_s):
                    return
        except OSError:
            pass  # the peer went away, or the receiver closed
        finally:
            with self.lock:
                self.connections.discard(conn)
            conn.close()

    def _answer_all(
        self,
        parser: RequestParser,
        counters: Counters,
        conn: socket.socket,
        now_ns: int,
        wall_s: float,
    ) -> bool:
        for answer, mailbox, inbound, keep_alive in answer_steps(
            parser, counters, now_ns, wall_s, self._mailbox
        ):
            if answer is None:
                assert mailbox is not None and inbound is not None
                answer = mailbox.deliver(inbound)
            conn.sendall(answer)
            if not keep_alive:
                return False
        return True

    def _mailbox(self, key: str) -> BlockingMailbox | None:
        with self.lock:
            return self.mailboxes.get(key)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            mailboxes = list(self.mailboxes.values())
            connections = list(self.connections)
        for mailbox in mailboxes:
            mailbox.close()
        for sock in (self.sock, *connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept or recv
            sock.close()
