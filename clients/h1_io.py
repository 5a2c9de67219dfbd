"""A lean HTTP/1.1 client for the benchmark's asyncio driver (`clients.asyncio_io`).

One `asyncio.Protocol` per connection, httptools' C parser (the one uvicorn's server uses)
for response heads and chunked bodies, and a streamed body handed to the exchange logic
straight from the protocol's `data_received`: each network read steps the logic at once,
with no task woken per read. The logic is the same generator both drivers run; only the
I/O under it is leaner.

Why not httpx on this path: at 1,000 streams x 50 tokens/s (scenarios/scale-1000.toml) the
driver spent most of its CPU in httpcore's pool bookkeeping, h11 and anyio for every read
(the profile and the figures are in docs/scale.md). Plain `http://` only: TLS and HTTP/2
(the nginx-h2 path), the blocking driver (locust) and the browser keep their libraries.

Accounting matches the httpx path: one request per exchange, the request head as written
and the response head as received (`header_bytes`), wire bytes from the socket's TCP_INFO
counters charged when each exchange ends, `HTTP/1.1` as the version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlencode, urlsplit

import httptools
import httpx

from clients import exchange as effects
from clients.interface import ClientSettings, StreamResult, bearer_headers
from clients.pump import Pump
from clients.wirebytes import ByteMeter
from errors import ConnectFailed, StreamIncomplete
from wire.messages import dumps

CONNECT_TIMEOUT_S = 10.0


def usable(settings: ClientSettings) -> bool:
    """This client serves plain-HTTP/1.1 base URLs; anything else stays with httpx."""
    plain = not (settings.http2 or settings.http3)
    return plain and urlsplit(settings.base_url).scheme == "http"


def request_bytes(call: effects.HTTPCall, host: str, base_headers: dict[str, str]) -> bytes:
    """The request as it goes on the wire: request line, headers, JSON body if any."""
    target = call.url
    if call.params:
        target += "?" + urlencode(call.params)
    body = b"" if call.json is None else dumps(call.json).encode()
    headers = {"host": host, **base_headers}
    headers.update((k.lower(), v) for k, v in call.headers.items())
    if call.json is not None:
        headers["content-type"] = "application/json"
    if call.json is not None or call.method in ("POST", "PUT", "PATCH"):
        headers["content-length"] = str(len(body))
    lines = [f"{call.method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@functools.cache
def httpx_default_headers() -> tuple[tuple[str, str], ...]:
    """The headers httpx sends on every request (user-agent, accept-encoding, ...)."""
    with httpx.Client(trust_env=False) as client:
        return tuple((k.lower(), v) for k, v in client.headers.items())


class H1Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, its body either gathered whole
    (`fetch`) or fed to an exchange, read by read (`pump`)."""

    def __init__(self, pool: H1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._lost: BaseException | None = None
        self.last_bytes_ns = 0  # the request written or the response read last
        self.exchanges = 0  # requests sent on it (more than 0: a reused connection)
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: dict[str, str] = {}
        self.head_size = 0
        self.complete = False
        self.keep_alive = False  # the response lets the connection carry another exchange
        self._parts: list[bytes] = []  # body bytes parsed from the current read
        self._head: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self.reads = Pump(effects.ReadBody)
        if self._lost is not None:
            self.reads.fail(self._lost)

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        now = self.last_bytes_ns = time.perf_counter_ns()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(StreamIncomplete(f"malformed HTTP response: {exc}"))
            self.abort()
            return
        if self._head is not None and self._head.done() and self._done is None:
            body = b"".join(self._parts)
            self._parts.clear()
            if body:
                self.reads.arrive(effects.Arrival(body, now))
            if self.complete:
                self.reads.arrive(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if not self.complete:
            quiet_s = (time.perf_counter_ns() - self.last_bytes_ns) / 1e9
            self._fail(
                StreamIncomplete(
                    "connection ended early: closed by the server or something on the path, "
                    f"{quiet_s:.1f} s after the last bytes either way"
                    + (" (an idle timeout closes silent connections)" if quiet_s >= 1 else "")
                )
            )

    # --- httptools callbacks --------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # "HTTP/1.1 200 OK\r\n" ... "\r\n": the status line and the blank line
        self.head_size += len(f"HTTP/1.1 {self.status} ") + len(self.reason) + 2 + 2
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._parts.append(body)

    def on_message_complete(self) -> None:
        # asked here: once the message is over, httptools (0.9.0) answers False whatever
        # the response said, and every exchange then paid a new connection
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # --- exchanges ------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        self._lost = exc
        for future in (self._head, self._done):
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: a whole exchange awaits only `_done`
        self.reads.fail(exc)

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
        self.closed = True

    def send(self, request: bytes, whole: bool) -> asyncio.Future[None]:
        """Write one request; the future is done when its head is in (`whole`: its body)."""
        assert self.transport is not None
        self._reset()
        loop = asyncio.get_running_loop()
        self._head = waited = loop.create_future()
        if whole:
            self._done = waited = loop.create_future()
        self.transport.write(request)
        self.exchanges += 1
        self.last_bytes_ns = time.perf_counter_ns()
        return waited

    @property
    def answered(self) -> bool:
        """Some of the current response has arrived (its status line at least)."""
        return bool(self.status or self.reason or self.headers)

    def body(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data

    def read_rest(self) -> asyncio.Future[None]:
        """Gather the rest of the body (a response with an unexpected status, to explain)."""
        # a body's arrivals are bytes (only WebSocket messages may be text)
        self._parts[:0] = [cast(bytes, a.data) for a in self.reads.take_pending() if a is not None]
        self._done = asyncio.get_running_loop().create_future()
        if self.complete:
            self._done.set_result(None)
        return self._done

    def pump(
        self, steps: effects.Steps, on_end: Callable[[], None]
    ) -> asyncio.Future[effects.Effect | None]:
        """Feed each read of the body to the exchange as it arrives (`clients.pump`);
        `on_end` runs when the body has ended, before the exchange hears of it."""
        return self.reads.start(steps, on_end)


class H1Pool:
    """Keep-alive connections to one server, reused one exchange at a time. The driver
    sizes its shards so that no stream waits for a connection, so none is capped here."""

    def __init__(self, settings: ClientSettings) -> None:
        parts = urlsplit(settings.base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc
        self.base_path = parts.path.rstrip("/")
        # httpx's own default headers (user-agent, accept-encoding, ...): the bytes on the
        # wire are the same whichever driver runs, so their figures compare
        self.headers = dict(httpx_default_headers())
        self.headers.update((k.lower(), v) for k, v in bearer_headers(settings.token).items())
        self.meter = ByteMeter()
        self._idle: list[H1Connection] = []
        self._open: set[H1Connection] = set()
        self.connections_made = 0

    async def acquire(self, fresh: bool = False) -> H1Connection:
        """An idle keep-alive connection (unless `fresh`), else a new one."""
        while self._idle and not fresh:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                transport, conn = await loop.create_connection(
                    lambda: H1Connection(self), self.host, self.port
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.authority}: {exc}") from exc
        conn.transport = transport  # uvloop may tell connection_made only after this
        self._open.add(conn)
        self.connections_made += 1
        return conn

    def release(self, conn: H1Connection) -> None:
        """Back to the pool after a complete exchange the server keeps alive; else closed."""
        if conn.complete and not conn.closed and conn.keep_alive:
            self._idle.append(conn)
        else:
            conn.abort()

    def forget(self, conn: H1Connection) -> None:
        self._open.discard(conn)

    def charge(self, conn: H1Connection, result: StreamResult) -> None:
        """The bytes the connection moved since the meter last looked (none once closed)."""
        sock = None if conn.transport is None else conn.transport.get_extra_info("socket")
        if sock is not None and not conn.closed and sock.fileno() != -1:
            result.add_bytes(self.meter.charge(sock))

    def request(self, call: effects.HTTPCall) -> bytes:
        located = dataclasses.replace(call, url=self.base_path + call.url)
        return request_bytes(located, self.authority, self.headers)

    def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
        self._open.clear()


def closing(call: effects.HTTPCall) -> effects.HTTPCall:
    """The call with `Connection: close`: the server closes the connection after it (sent
    on a new connection: `fresh`)."""
    return dataclasses.replace(call, headers={**call.headers, "connection": "close"})


def count_exchange(result: StreamResult, request: bytes, conn: H1Connection) -> None:
    """One exchange, as soon as its response head is in: the request's head as written,
    the response's as received (and its connection, if it is the connection's first)."""
    result.requests += 1
    result.connections += conn.exchanges == 1
    result.header_bytes += request.index(b"\r\n\r\n") + 4 + conn.head_size
    result.http_version = "HTTP/1.1"


def reply(conn: H1Connection, call: effects.HTTPCall, body: bytes, now_ns: int) -> effects.Reply:
    return effects.Reply(conn.status, conn.headers, body, call.url, now_ns)


async def sent(pool: H1Pool, request: bytes, whole: bool, fresh: bool = False) -> H1Connection:
    """`request` sent on a pooled connection, its head (`whole`: its body) in. A reused
    connection that ends before any of the response (the server closed it while it was
    idle) is retried once on a new one, as browsers and httpx do: the server never read
    the request. `fresh`: on a new connection, whatever is idle."""
    conn = await pool.acquire(fresh)
    for retried in (False, True):
        reused = conn.exchanges > 0
        try:
            await conn.send(request, whole)
            return conn
        except StreamIncomplete:
            conn.abort()
            if retried or not reused or conn.answered:
                raise
        except BaseException:
            conn.abort()
            raise
        conn = await pool.acquire(fresh=True)
    raise AssertionError("unreachable")


async def fetch(
    pool: H1Pool, result: StreamResult, call: effects.HTTPCall, fresh: bool = False
) -> effects.Reply:
    """One whole exchange (`fresh`: on a new connection)."""
    request = pool.request(call)
    conn = await sent(pool, request, True, fresh)
    now = time.perf_counter_ns()
    count_exchange(result, request, conn)
    pool.charge(conn, result)
    body = conn.body()
    pool.release(conn)
    return reply(conn, call, body, now)


async def open_stream(
    pool: H1Pool, result: StreamResult, call: effects.HTTPCall, fresh: bool = False
) -> tuple[H1Connection, effects.Reply]:
    """Send the request and wait for the response head (a body with an unexpected status
    is read whole, to explain). The caller pumps the body and then ends the exchange."""
    request = pool.request(call)
    conn = await sent(pool, request, False, fresh)
    try:
        count_exchange(result, request, conn)
        body = b""
        if conn.status != call.expected_status:
            await conn.read_rest()
            body = conn.body()
    except BaseException:
        conn.abort()
        raise
    return conn, reply(conn, call, body, time.perf_counter_ns())


def end_stream(pool: H1Pool, conn: H1Connection, result: StreamResult) -> None:
    """The streamed exchange is over: charge its bytes, then reuse or close the connection."""
    pool.charge(conn, result)
    pool.release(conn)
