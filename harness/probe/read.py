"""The probe's only I/O: one request on a raw asyncio connection, every read stamped. An
HTTP request may reuse the connection an earlier one left open (`KeepAlive`).

Each `reader.read()` is stamped with `time.perf_counter_ns()` as it returns, before any
parsing, so the stamps are when the bytes left the kernel. HTTP/1.1 is parsed by h11
(`http1.py`); WebSocket framing by the `websockets` library's sans-I/O protocol, so
WebSocket messages carry the stamp of the read that completed them, like HTTP bodies.
Nothing here interprets the body: `analyse.py` does, from the `Exchange` returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.typing import BytesLike
from websockets.uri import parse_uri

from errors import ProtocolError, UsageError
from harness.probe.exchange import Ending, Exchange, WSMessage
from harness.probe.http1 import Head, ResponseParser
from harness.probe.request import ProbeRequest, http_headers

READ_SIZE = 65536
StopReading = Callable[[Head, bytes], bool]  # body bytes of one read -> seen enough?


async def fetch(
    request: ProbeRequest,
    extra_headers: tuple[tuple[str, str], ...] = (),
    stop: StopReading | None = None,
    keep_alive: KeepAlive | None = None,
) -> Exchange:
    if request.target.websocket:
        return await fetch_websocket(request)
    return await fetch_http(request, extra_headers, stop, keep_alive)


def _now() -> int:
    return time.perf_counter_ns()


def _failed(exchange: Exchange, ending: Ending, error: str) -> None:
    """The exchange ends now, as `ending`, for `error`."""
    exchange.ending, exchange.error, exchange.end_ns = ending, error, _now()


def _timed_out(exchange: Exchange, request: ProbeRequest) -> None:
    exchange.ending, exchange.end_ns = Ending.TIMEOUT, _now()
    exchange.error = f"no end within --timeout {request.timeout_s:g} s"


async def _connect(
    request: ProbeRequest, timeout_s: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The connection, or UsageError for a host that does not resolve (an unusable URL).
    Other failures (refused, reset, TLS, timeout) are raised as OSError/TimeoutError."""
    target = request.target
    ctx = ssl.create_default_context() if target.tls else None
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                target.host,
                target.port,
                ssl=ctx,
                server_hostname=target.host if ctx else None,
                limit=READ_SIZE,
            ),
            timeout_s,
        )
    except socket.gaierror as exc:
        raise UsageError(
            f"unusable URL {target.url!r}: cannot resolve host {target.host!r} ({exc.strerror})"
        ) from None


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out connecting"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _read(reader: asyncio.StreamReader, deadline: float) -> tuple[bytes, int]:
    """The next network read (b"" at EOF) and its stamp; TimeoutError past `deadline`."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        raise TimeoutError
    data = await asyncio.wait_for(reader.read(READ_SIZE), remaining)
    return data, _now()


async def _open(
    request: ProbeRequest, kind: str
) -> tuple[Exchange, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, float]:
    """A new exchange, its connection (None with the failure recorded in the exchange), and
    the loop time by which it must end (--timeout)."""
    deadline = asyncio.get_running_loop().time() + request.timeout_s
    exchange = Exchange(kind, t_sent_ns=_now())
    try:
        return exchange, await _connect(request, request.timeout_s), deadline
    except (OSError, TimeoutError) as exc:
        _failed(exchange, Ending.ERROR, _error_text(exc))
        return exchange, None, deadline


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KeepAlive:
    """The probe's HTTP/1.1 connection kept between requests, as browsers and SDK clients
    keep one: a response that ends cleanly leaves its connection here for the next."""

    def __init__(self) -> None:
        self._kept: Connection | None = None

    def take(self) -> Connection | None:
        kept, self._kept = self._kept, None
        return kept

    def keep(self, connection: Connection) -> None:
        self._kept = connection

    async def close(self) -> None:
        kept = self.take()
        if kept is not None:
            await _close(kept[1])


async def fetch_http(
    request: ProbeRequest,
    extra_headers: tuple[tuple[str, str], ...] = (),
    stop: StopReading | None = None,
    keep_alive: KeepAlive | None = None,
) -> Exchange:
    """One HTTP/1.1 request; the response read until its body ends, the peer closes, `stop`
    says so, or --timeout runs out. With `keep_alive`, on its kept connection when it has
    one (a new one if the server had closed it unused, as HTTP clients retry), and the
    connection kept for the next request when the response ends cleanly."""
    kept = keep_alive.take() if keep_alive is not None else None
    if kept is not None:
        deadline = asyncio.get_running_loop().time() + request.timeout_s
        exchange = Exchange("http", t_sent_ns=_now(), reused=True)
        await _exchange_http(request, extra_headers, stop, kept, exchange, deadline, keep_alive)
        if exchange.head is not None or exchange.reads or exchange.ending is not Ending.ERROR:
            return exchange
    exchange, connection, deadline = await _open(request, "http")
    if connection is not None:
        await _exchange_http(
            request, extra_headers, stop, connection, exchange, deadline, keep_alive
        )
    return exchange


async def _exchange_http(
    request: ProbeRequest,
    extra_headers: tuple[tuple[str, str], ...],
    stop: StopReading | None,
    connection: Connection,
    exchange: Exchange,
    deadline: float,
    keep_alive: KeepAlive | None,
) -> None:
    reader, writer = connection
    parser = ResponseParser()
    try:
        headers = http_headers(request, extra_headers)
        writer.write(parser.request(request.method, request.target.path, headers, request.body))
        await writer.drain()
        exchange.t_sent_ns = _now()
        while True:
            data, stamp = await _read(reader, deadline)
            exchange.wire_reads += bool(data)
            parsed = parser.feed(data)
            if parsed.head is not None:
                exchange.head, exchange.head_ns = parsed.head, stamp
            if parsed.body:
                exchange.reads.append((stamp, parsed.body))
            exchange.end_ns = stamp
            if parsed.complete:
                exchange.ending = Ending.COMPLETE
                break
            if not data:
                exchange.ending = Ending.EOF if exchange.head else Ending.ERROR
                exchange.error = "the server closed the connection before the response ended"
                break
            if stop and exchange.head and parsed.body and stop(exchange.head, parsed.body):
                exchange.ending = Ending.STOPPED
                break
    except TimeoutError:
        _timed_out(exchange, request)
    except (ProtocolError, OSError) as exc:
        error = str(exc) if isinstance(exc, ProtocolError) else _error_text(exc)
        _failed(exchange, Ending.EOF if exchange.head is not None else Ending.ERROR, error)
    if keep_alive is not None and exchange.ending is Ending.COMPLETE and parser.reusable:
        keep_alive.keep(connection)
    else:
        await _close(writer)


async def fetch_websocket(request: ProbeRequest) -> Exchange:
    """Open the WebSocket, send --data as the first text message, read every message until
    the server closes (with or without a close frame) or --timeout runs out."""
    exchange, connection, deadline = await _open(request, "websocket")
    if connection is None:
        return exchange
    reader, writer = connection
    protocol = ClientProtocol(parse_uri(request.target.url), max_size=None)
    handshake = protocol.connect()
    for name, value in request.headers:
        handshake.headers[name] = value
    protocol.send_request(handshake)
    fragments: list[BytesLike] = []
    read_no = -1
    try:
        await _flush(protocol, writer)
        while True:
            data, stamp = await _read(reader, deadline)
            exchange.end_ns = stamp
            if not data:
                protocol.receive_eof()
                if protocol.close_rcvd is None:
                    exchange.ending = Ending.EOF if exchange.head else Ending.ERROR
                    exchange.error = "the connection ended without a WebSocket close frame"
                break
            exchange.wire_reads += 1
            read_no += 1
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Response):
                    exchange.head = Head(
                        event.status_code,
                        event.reason_phrase,
                        tuple((k.lower(), v) for k, v in event.headers.raw_items()),
                    )
                    exchange.head_ns = stamp
                    if protocol.handshake_exc is not None:
                        exchange.reads.append((stamp, bytes(event.body or b"")))
                        exchange.ending = Ending.ERROR
                        exchange.error = f"WebSocket handshake refused: {protocol.handshake_exc}"
                        return exchange
                    if request.body is not None:
                        protocol.send_text(request.body)
                    await _flush(protocol, writer)
                    exchange.t_sent_ns = _now()
                elif isinstance(event, Request):
                    pass  # only a server is sent requests
                elif event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    fragments.append(event.data)
                    if event.fin:
                        payload = b"".join(fragments)
                        fragments.clear()
                        text = payload.decode("utf-8", errors="replace")
                        exchange.messages.append(WSMessage(stamp, read_no, text))
                elif event.opcode is Opcode.CLOSE and protocol.close_rcvd is not None:
                    exchange.close_code = int(protocol.close_rcvd.code)
                    exchange.close_reason = protocol.close_rcvd.reason
                    exchange.ending = Ending.COMPLETE
            await _flush(protocol, writer)
            if exchange.close_code is not None:
                break
    except TimeoutError:
        _timed_out(exchange, request)
    except OSError as exc:
        _failed(exchange, Ending.EOF, _error_text(exc))
    finally:
        await _close(writer)
    return exchange


async def _flush(protocol: ClientProtocol, writer: asyncio.StreamWriter) -> None:
    for data in protocol.data_to_send():
        if data:
            writer.write(data)
    await writer.drain()
