"""WebTransport for the asyncio driver: one QUIC connection (aioquic) per stream, a
WebTransport session on it (an extended CONNECT to the path) and one bidirectional stream,
whose length-prefixed messages (`wire.webtransport`) are the exchange's messages.

One connection per stream, as a browser's `WebTransport` opens one per session unless
told it may pool. The connection goes to the base URL's host, on the UDP port of its port's
number, and trusts `ca_file` (the server's throwaway certificate). Accounting, as for
HTTP/3 (`clients.h3_io`): the QUIC packets' bytes above UDP, one connection and one TLS
handshake, the packets lost either way; `http_version` is HTTP/3.

Stamps are taken as each datagram is read, before it is parsed. Leaving: the normal end
closes the connection without an error (H3_NO_ERROR); a drop closes it with
`DROPPED_CODE`, which the server takes for a connection that went (it then waits its
resume grace), as a TCP connection torn down mid-stream is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamDataReceived, StreamReset

from clients.exchange import Arrival
from clients.h3_io import (
    CONNECT_TIMEOUT_S,
    KEEPALIVE_S,
    CountingSender,
    LossLogger,
    QuicCounters,
    client_configuration,
)
from clients.httpx_io import head_bytes
from clients.interface import ClientSettings, StreamResult, bearer_headers
from errors import (
    ConnectFailed,
    HTTPStatusFailed,
    ProtocolViolation,
    StreamIncomplete,
)
from wire.webtransport import MessageDecoder, encode_message

MAX_DATAGRAM = 65536  # the QUIC datagram frames each side may take (none are sent here)
LEFT_CODE = ErrorCode.H3_NO_ERROR  # the normal end's connection close
DROPPED_CODE = ErrorCode.H3_REQUEST_CANCELLED  # a drop's connection close (not H3_NO_ERROR)


class WTProtocol(QuicConnectionProtocol):
    """One QUIC connection with one WebTransport session and one stream on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=True)
        self.counters = QuicCounters()
        self.decoder = MessageDecoder()
        self.session_id = -1
        self.stream_id = -1
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.status.add_done_callback(_retrieved)  # a failure nobody waits for is no warning
        self.arrivals: deque[Arrival | BaseException | None] = deque()
        self.ready = asyncio.Event()
        self.read_ns = 0  # the stamp of the datagram being handled
        self.closed = False  # by this side
        self.keepalive: asyncio.TimerHandle | None = None
        self.request_head: list[tuple[bytes, bytes]] = []  # the CONNECT's fields, and the
        self.response_head: list[tuple[bytes, bytes]] = []  # answer's (no pseudo-fields)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(CountingSender(transport, self.counters))  # type: ignore[arg-type]

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.read_ns = time.perf_counter_ns()
        self.counters.received += len(data)
        super().datagram_received(data, addr)

    def keep_alive(self, ping: bool = False) -> None:
        """A PING every `KEEPALIVE_S` from now while the stream is open (the server's idle
        timeout)."""
        if self.closed:
            return
        if ping:
            self._quic.send_ping(0)
            self.transmit()
        self.keepalive = self._loop.call_later(KEEPALIVE_S, self.keep_alive, True)

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            why = f"the QUIC connection closed: {event.reason_phrase or event.error_code}"
            self.fail(StreamIncomplete(why))
            return
        if isinstance(event, StreamDataReceived) and event.stream_id == self.stream_id:
            # its bytes are the session's, read here: aioquic's HTTP/3 layer parses a
            # bidirectional stream the client opened as HTTP frames
            self.data(event.data, event.end_stream)
            return
        if isinstance(event, StreamReset) and event.stream_id == self.stream_id:
            self.fail(StreamIncomplete(f"the server reset the stream ({event.error_code})"))
            return
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_id == self.session_id:
                status = dict(h3_event.headers).get(b":status", b"0")
                self.response_head = [(k, v) for k, v in h3_event.headers if k != b":status"]
                if not self.status.done():
                    self.status.set_result(int(status))
            elif (
                isinstance(h3_event, DataReceived)
                and h3_event.stream_id == self.session_id
                and h3_event.stream_ended  # the server closed the session
            ):
                self.fail(StreamIncomplete("the server closed the WebTransport session"))

    def data(self, data: bytes, ended: bool) -> None:
        unreadable = self.decoder.error is not None
        for text in self.decoder.feed(data):
            self.arrivals.append(Arrival(text, self.read_ns))
        if self.decoder.error is not None and not unreadable:
            self.arrivals.append(ProtocolViolation(str(self.decoder.error)))
        if ended:
            self.arrivals.append(None)
        self.ready.set()

    def fail(self, exc: BaseException) -> None:
        if self.keepalive is not None:
            self.keepalive.cancel()
        if not self.status.done():
            self.status.set_exception(exc)
        if not self.closed:
            self.arrivals.append(exc)
            self.ready.set()

    def open_session(self, authority: str, path: str, headers: dict[str, str]) -> None:
        self.session_id = self._quic.get_next_available_stream_id()
        self.request_head = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        request = [
            (b":method", b"CONNECT"),
            (b":protocol", b"webtransport"),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            *self.request_head,
        ]
        self.h3.send_headers(self.session_id, request)
        self.transmit()

    def open_stream(self) -> None:
        self.stream_id = self.h3.create_webtransport_stream(self.session_id)

    def send_text(self, text: str) -> None:
        self._quic.send_stream_data(self.stream_id, encode_message(text))
        self.transmit()

    async def receive(self) -> Arrival | None:
        while not self.arrivals:
            self.ready.clear()
            await self.ready.wait()
        item = self.arrivals.popleft()
        if isinstance(item, BaseException):
            self.arrivals.appendleft(item)  # every later read fails alike
            raise item
        return item

    def leave(self, error_code: int) -> None:
        """Close the connection: without an error at the end, with one for a drop."""
        if self.closed:
            return
        self.closed = True
        if self.keepalive is not None:
            self.keepalive.cancel()
        self._quic.close(error_code=error_code)
        self.transmit()


def _retrieved(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()


class WTConnection:
    """A stream's WebTransport connection: opened by `open`, charged and closed by `close`."""

    def __init__(self, opened: contextlib.AsyncExitStack, protocol: WTProtocol) -> None:
        self.opened = opened
        self.protocol = protocol
        self.done = False

    async def close(
        self,
        result: StreamResult,
        error_code: int = LEFT_CODE,
        lingering: set[asyncio.Task[None]] | None = None,
    ) -> None:
        """Send the connection's close (CONNECTION_CLOSE with `error_code`) and charge its
        bytes and losses. aioquic then waits out the closing period (three probe timeouts)
        before its socket goes: with `lingering`, in a task added to it, so the stream's
        end is not held that long (its owner awaits them as it closes)."""
        if self.done:
            return
        self.done = True
        self.protocol.leave(error_code)
        result.add_bytes(self.protocol.counters.charge())
        trace = self.protocol.counters.trace
        if trace is not None:
            result.packets_lost = (result.packets_lost or 0) + trace.lost
        if lingering is None:
            await self.finish()
            return
        task = asyncio.create_task(self.finish())
        lingering.add(task)
        task.add_done_callback(lingering.discard)

    async def finish(self) -> None:
        with contextlib.suppress(Exception):
            await self.opened.aclose()


async def open_webtransport(
    settings: ClientSettings,
    path: str,
    result: StreamResult,
    headers: dict[str, str] | None = None,
) -> WTConnection:
    """A session at `path` (the CONNECT with `headers` besides the token's) and a stream on
    it; ConnectFailed or HTTPStatusFailed in one line when there is none."""
    url = urlsplit(settings.base_url)
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if url.scheme == "https" else 80)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    result.connections += 1
    result.tls_handshakes += 1
    result.requests += 1  # the CONNECT (its head is QPACK's, inside the QUIC bytes)
    result.http_version = "HTTP/3"
    opened = contextlib.AsyncExitStack()
    configuration = client_configuration(settings, host)
    configuration.max_datagram_frame_size = MAX_DATAGRAM  # WebTransport over HTTP/3 asks
    try:
        protocol = await asyncio.wait_for(
            opened.enter_async_context(
                connect(host, port, configuration=configuration, create_protocol=WTProtocol)
            ),
            CONNECT_TIMEOUT_S,
        )
        assert isinstance(protocol, WTProtocol)
        logger = configuration.quic_logger
        protocol.counters.trace = logger.trace if isinstance(logger, LossLogger) else None
        protocol.open_session(
            authority, path, {**bearer_headers(settings.token), **(headers or {})}
        )
        status = await asyncio.wait_for(protocol.status, CONNECT_TIMEOUT_S)
    except BaseException as exc:
        await opened.aclose()
        if isinstance(exc, TimeoutError):
            raise ConnectFailed(
                f"no WebTransport session at https://{authority}{path} (UDP) within "
                f"{CONNECT_TIMEOUT_S:g} s: does the server answer WebTransport there "
                "(servers.run --webtransport-cert)?"
            ) from None
        if isinstance(exc, StreamIncomplete | OSError | ssl.SSLError | ValueError):
            raise ConnectFailed(f"WebTransport to https://{authority}{path}: {exc}") from exc
        raise
    connection = WTConnection(opened, protocol)
    # the heads as HTTP/3 responses' are counted (clients.httpx_io): HTTP/1.1's size of them
    result.header_bytes += head_bytes(
        f"CONNECT {path} HTTP/3",
        [(b":protocol", b"webtransport"), (b"host", authority.encode()), *protocol.request_head],
    ) + head_bytes(f"HTTP/3 {status}", protocol.response_head)
    if status != 200:
        await connection.close(result)
        raise HTTPStatusFailed(f"HTTP {status} from WebTransport CONNECT {path}")
    protocol.open_stream()
    protocol.keep_alive()
    return connection
