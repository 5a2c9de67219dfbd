"""HTTP/3 for the asyncio driver: an httpx transport over one QUIC connection (aioquic).

The driver's httpx client takes it as its `transport`, so every exchange's logic, its
accounting and its error mapping are the ones HTTP/1.1 and HTTP/2 use; only the bytes
underneath move over QUIC. One connection per pooled client, opened on the first request
and shared by every stream of the client, as HTTP/2's one connection is: the streams are
QUIC streams of it, so a lost packet holds back only the streams whose data it carried.
The connection goes to the URL's host and port over UDP (the server answers HTTP/3 on the
UDP port of its TCP port's number) and trusts `ca_file`, the server's throwaway certificate.

Accounting: the QUIC packets' bytes above UDP (their headers, encryption and ACK frames
included, as TCP_INFO's counts include TLS records), charged to the stream that looks
next, as one HTTP/2 connection's counters are; packets lost, from the connection's own
view (`LossCounter`): gaps in the packet numbers it received, and its own packets the
recovery declared lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset
from aioquic.quic.logger import QuicLogger, QuicLoggerTrace

from clients.interface import ClientSettings

CONNECT_TIMEOUT_S = 10.0
# the client's own sender (requests, ACKs) as Linux's TCP; the tokens' sender is the
# server's, whose congestion control is the server's choice (hypercorn: aioquic's Reno)
CONGESTION_CONTROL = "cubic"
ONE_RTT = "1RTT"  # the packet type of application data in aioquic's qlog names
# a PING this often while requests are open: the server's idle timeout (hypercorn: aioquic's
# 60 s) would otherwise close a connection whose streams are silent that long, as a TCP
# connection's would not be
KEEPALIVE_S = 15.0


class LossTrace(QuicLoggerTrace):
    """Keeps only what loss needs of the connection's qlog events: the application (1-RTT)
    packets received, by number, and this side's application packets its recovery declared
    lost (a probe timeout's included). Why a trace and not aioquic's own fields: the
    received numbers are not kept once acknowledged. aioquic numbers a connection's
    packets with one counter across its packet spaces, so the handshake's packets come
    before the first 1-RTT number and are not counted as gaps."""

    def __init__(self, *, is_client: bool, odcid: bytes) -> None:
        super().__init__(is_client=is_client, odcid=odcid)
        self.received: set[int] = set()
        self.first: int | None = None
        self.largest = -1
        self.sent_lost = 0

    def log_event(self, *, category: str, event: str, data: dict[str, Any]) -> None:
        if event == "packet_received":
            header = data.get("header", {})
            number = header.get("packet_number")
            if header.get("packet_type") == ONE_RTT and number is not None:
                self.received.add(number)
                self.largest = max(self.largest, number)
                self.first = number if self.first is None else min(self.first, number)
        elif event == "packet_lost" and data.get("type") == ONE_RTT:
            self.sent_lost += 1

    @property
    def missing(self) -> int:
        """Application packets never received, between the first and the largest."""
        if self.first is None:
            return 0
        return self.largest + 1 - self.first - len(self.received)

    @property
    def lost(self) -> int:
        """Packets lost either way so far: those never received, and this side's own
        declared lost."""
        return self.missing + self.sent_lost


class LossLogger(QuicLogger):
    """One connection's logger: it keeps the trace its connection started."""

    def __init__(self) -> None:
        super().__init__()
        self.trace: LossTrace | None = None

    def start_trace(self, is_client: bool, odcid: bytes) -> QuicLoggerTrace:
        self.trace = LossTrace(is_client=is_client, odcid=odcid)
        return self.trace

    def end_trace(self, trace: QuicLoggerTrace) -> None:
        pass


@dataclass
class QuicCounters:
    """A QUIC connection's bytes above UDP and its losses, charged by growth since the last
    look (`charge`), as `clients.wirebytes.ByteMeter` charges a TCP connection."""

    sent: int = 0
    received: int = 0
    trace: LossTrace | None = None
    _charged: tuple[int, int] = (0, 0)
    opened: bool = field(default=False)  # counted as a connection once

    def charge(self) -> tuple[int, int]:
        sent, received = self.sent - self._charged[0], self.received - self._charged[1]
        self._charged = (self.sent, self.received)
        return sent, received

    @property
    def lost(self) -> int:
        return 0 if self.trace is None else self.trace.lost


class CountingSender:
    """The connection's datagram transport, each datagram sent counted on its way."""

    def __init__(self, transport: asyncio.BaseTransport, counters: QuicCounters) -> None:
        self.transport = transport
        self.counters = counters

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.counters.sent += len(data)
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class H3Protocol(QuicConnectionProtocol):
    """One QUIC connection speaking HTTP/3: each request a stream, its events queued."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.counters = QuicCounters()
        self.queues: dict[int, deque[H3Event | BaseException]] = {}
        self.ready: dict[int, asyncio.Event] = {}
        self.ended: str | None = None  # why the connection ended, once it has
        self.keepalive: asyncio.TimerHandle | None = None

    def keep_alive(self) -> None:
        """A PING now if requests are open, and again `KEEPALIVE_S` later, until the end."""
        if self.ended is not None:
            return
        if self.queues:
            self._quic.send_ping(0)
            self.transmit()
        self.keepalive = self._loop.call_later(KEEPALIVE_S, self.keep_alive)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.counters.received += len(data)
        super().datagram_received(data, addr)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(CountingSender(transport, self.counters))  # type: ignore[arg-type]

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.ended = f"the QUIC connection closed: {event.reason_phrase or event.error_code}"
            if self.keepalive is not None:
                self.keepalive.cancel()
            for stream_id in list(self.queues):
                self._push(stream_id, httpx.RemoteProtocolError(self.ended))
            return
        if isinstance(event, StreamReset) and event.stream_id in self.queues:
            self._push(
                event.stream_id,
                httpx.RemoteProtocolError(f"the server reset the stream ({event.error_code})"),
            )
            return
        for h3_event in self.h3.handle_event(event):
            if not isinstance(h3_event, HeadersReceived | DataReceived):
                continue
            if h3_event.stream_id in self.queues:
                self._push(h3_event.stream_id, h3_event)

    def _push(self, stream_id: int, item: H3Event | BaseException) -> None:
        self.queues[stream_id].append(item)
        self.ready[stream_id].set()

    async def next_event(self, stream_id: int) -> H3Event:
        queue = self.queues[stream_id]
        if not queue:
            await self.ready[stream_id].wait()
        item = queue.popleft()
        if not queue:
            self.ready[stream_id].clear()
        if isinstance(item, BaseException):
            raise item
        return item

    def open_request(self, request: httpx.Request, body: bytes) -> int:
        if self.ended is not None:
            raise httpx.ConnectError(self.ended)
        stream_id = self._quic.get_next_available_stream_id()
        self.queues[stream_id] = deque()
        self.ready[stream_id] = asyncio.Event()
        self.h3.send_headers(stream_id, request_headers(request), end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        self.transmit()
        return stream_id

    def forget(self, stream_id: int, cancel: bool) -> None:
        """The stream's response is closed: without its end, the request is cancelled
        (RESET_STREAM and STOP_SENDING, as an HTTP/2 client sends RST_STREAM; what the
        server's application hears of it is the server's business)."""
        self.queues.pop(stream_id, None)
        self.ready.pop(stream_id, None)
        if cancel and self.ended is None:
            with contextlib.suppress(Exception):  # the stream may have ended meanwhile
                self._quic.reset_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                self._quic.stop_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
            self.transmit()


def request_headers(request: httpx.Request) -> list[tuple[bytes, bytes]]:
    """The request's HTTP/3 header list: pseudo-headers first, connection headers dropped."""
    pseudo = [
        (b":method", request.method.encode()),
        (b":scheme", b"https"),
        (b":authority", request.url.netloc),
        (b":path", request.url.raw_path),
    ]
    dropped = {b"connection", b"host", b"keep-alive", b"transfer-encoding", b"upgrade"}
    return pseudo + [(k.lower(), v) for k, v in request.headers.raw if k.lower() not in dropped]


class H3Body(httpx.AsyncByteStream):
    """A response body as it arrives, a piece per DATA frame's worth of a read."""

    def __init__(self, protocol: H3Protocol, stream_id: int, ended: bool) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.ended = ended

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.ended:
            event = await self.protocol.next_event(self.stream_id)
            if isinstance(event, DataReceived):
                self.ended = event.stream_ended
                yield event.data
            elif isinstance(event, HeadersReceived):  # trailers
                self.ended = event.stream_ended

    async def aclose(self) -> None:
        self.protocol.forget(self.stream_id, cancel=not self.ended)


def client_configuration(settings: ClientSettings, host: str) -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        server_name=host,
        congestion_control_algorithm=CONGESTION_CONTROL,
        quic_logger=LossLogger(),
        idle_timeout=max(60.0, settings.stream_timeout_s),  # the smaller side's applies
    )
    if settings.ca_file is not None:
        configuration.load_verify_locations(cafile=settings.ca_file)
    return configuration


class H3Transport(httpx.AsyncBaseTransport):
    """httpx's transport for one pooled client: its QUIC connection, opened on first use
    (and again if it ended, the ended one closed), closed with the client."""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.protocol: H3Protocol | None = None
        self.opened: contextlib.AsyncExitStack | None = None  # the connection's
        self.lock = asyncio.Lock()
        self.failure: tuple[float, str] | None = None  # the last failed handshake: when, why

    async def connection(self, url: httpx.URL) -> H3Protocol:
        asked = asyncio.get_running_loop().time()
        async with self.lock:
            if self.protocol is not None and self.protocol.ended is None:
                return self.protocol
            if self.failure is not None and self.failure[0] >= asked:
                # it failed while this request waited: the same answer, not another wait
                raise httpx.ConnectError(self.failure[1])
            await self.aclose()  # an ended connection's socket goes first
            host, port = url.host, url.port or 443
            try:
                protocol = await asyncio.wait_for(self._open(host, port), CONNECT_TIMEOUT_S)
            except httpx.ConnectError as exc:
                self.failure = (asyncio.get_running_loop().time(), str(exc))
                raise
            except TimeoutError:
                why = (
                    f"no QUIC handshake with {host}:{port} (UDP) within {CONNECT_TIMEOUT_S:g} "
                    "s: does the server answer HTTP/3 there?"
                )
                self.failure = (asyncio.get_running_loop().time(), why)
                raise httpx.ConnectError(why) from None
            protocol.keep_alive()
            self.protocol = protocol
            return protocol

    async def _open(self, host: str, port: int) -> H3Protocol:
        opened = contextlib.AsyncExitStack()
        try:
            configuration = client_configuration(self.settings, host)
            opening = connect(host, port, configuration=configuration, create_protocol=H3Protocol)
            protocol = await opened.enter_async_context(opening)
        except BaseException as exc:
            await opened.aclose()
            if isinstance(exc, ConnectionError | OSError | ssl.SSLError | ValueError):
                raise httpx.ConnectError(f"QUIC connection to {host}:{port}: {exc}") from exc
            raise
        assert isinstance(protocol, H3Protocol)
        logger = configuration.quic_logger
        protocol.counters.trace = logger.trace if isinstance(logger, LossLogger) else None
        self.opened = opened
        return protocol

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        protocol = await self.connection(request.url)
        body = await request.aread()
        losses_before = protocol.counters.lost
        stream_id = protocol.open_request(request, body)
        try:
            while True:
                event = await protocol.next_event(stream_id)
                if not isinstance(event, HeadersReceived):
                    continue
                status = 0
                headers = []
                for name, value in event.headers:
                    if name == b":status":
                        status = int(value)
                    else:
                        headers.append((name, value))
                if status >= 200:  # interim (1xx) answers precede the final one
                    break
        except BaseException:  # cancelled or failed before the head: the stream goes too
            protocol.forget(stream_id, cancel=True)
            raise
        return httpx.Response(
            status,
            headers=headers,
            stream=H3Body(protocol, stream_id, event.stream_ended),
            extensions={
                "http_version": b"HTTP/3",
                "quic_counters": protocol.counters,
                "losses_at_request": losses_before,  # clients.httpx_io charges the growth
            },
        )

    async def aclose(self) -> None:
        if self.protocol is not None and self.protocol.keepalive is not None:
            self.protocol.keepalive.cancel()
        self.protocol = None
        if self.opened is not None:
            opened, self.opened = self.opened, None
            await opened.aclose()
