"""A lean WebSocket client for the benchmark's asyncio driver (`clients.asyncio_io`).

One `asyncio.Protocol` per connection: the opening handshake as the `websockets` library
writes it (the same headers, so the same bytes), its answer parsed by httptools, then the
server's frames decoded by `wire.websocket_frames` and each text message handed to the
exchange logic straight from `data_received`, with no task woken per message (the same
pump as `clients.h1_io`). Why: at 1,000 streams x 50 tokens/s the library's asyncio client
cost about three times the raw client's CPU per token (docs/scale.md). Plain `ws://` only;
`wss://` (behind a TLS path) and the blocking driver keep the library.

Accounting matches the library path: one request per upgrade, its request and 101 heads as
`header_bytes`, and the connection's whole-life TCP_INFO byte counters, read once the
connection has closed (after the close handshake, when there is one).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import time
from typing import cast
from urllib.parse import urlsplit

import httptools
from websockets.http11 import USER_AGENT

from clients import exchange as effects
from clients.interface import ClientSettings, StreamResult, bearer_headers
from clients.pump import Pump
from clients.wirebytes import connection_bytes
from errors import (
    ConnectFailed,
    HTTPStatusFailed,
    ProtocolError,
    ProtocolViolation,
    StreamIncomplete,
)
from wire.websocket_frames import (
    BINARY,
    CLOSE,
    GUID,
    PING,
    PONG,
    TEXT,
    Message,
    MessageDecoder,
    client_frame,
)

CONNECT_TIMEOUT_S = 10.0
CLOSED_WAIT_S = 2.0  # after the close handshake: how long to wait for the server's TCP close


def usable(settings: ClientSettings) -> bool:
    return urlsplit(settings.base_url).scheme == "http"


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept a server must answer `key` with (RFC 6455, 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(host: str, path: str, key: str, token: str | None) -> bytes:
    """The opening handshake, header for header as `websockets` sends it."""
    headers = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
        *bearer_headers(token).items(),
        ("User-Agent", USER_AGENT),
    ]
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class WSConnection(asyncio.Protocol):
    """One WebSocket: the handshake, then messages pumped into an exchange."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.sock: socket.socket | None = None
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: dict[str, str] = {}
        self.head_size = 0
        self.refusal = b""  # the body of an answer that refused the upgrade
        self.decoder = MessageDecoder()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_received = False
        self.close_sent = False
        self.messages = Pump(effects.ReceiveMessage)

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        if self.parser is not None:
            try:
                self.parser.feed_data(data)
                return  # the head is not complete yet
            except httptools.HttpParserUpgrade as upgrade:
                data = data[upgrade.args[0] :]
                self.parser = None
                if not self._handshake_ok():
                    return
            except httptools.HttpParserError as exc:
                self._fail(ConnectFailed(f"cannot open WebSocket: bad answer: {exc}"))
                return
        try:
            messages = self.decoder.feed(data)
            for message in messages:
                self._message(message, now)
        except ProtocolError as exc:
            self.messages.fail(ProtocolViolation(str(exc)))
            self.abort()

    def _message(self, message: Message, now: int) -> None:
        if message.opcode == TEXT:
            self.messages.arrive(effects.Arrival(message.text, now))
        elif message.opcode == BINARY:
            self.messages.arrive(effects.Arrival(message.payload, now))
        elif message.opcode == PING:
            self._write(client_frame(PONG, message.payload, os.urandom(4)))
        elif message.opcode == CLOSE:
            self.close_received = True
            if not self.close_sent:  # echo it as it came, as the library does (RFC 6455, 5.5.1)
                self.close_sent = True
                self._write(client_frame(CLOSE, message.payload, os.urandom(4)))
            self.messages.arrive(None)

    def eof_received(self) -> None:
        """The server closed the TCP connection: close our side too (a FIN, as the library
        sends one), and the transport closes."""
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.upgraded.done():
            self._fail(ConnectFailed("cannot open WebSocket: the server closed the connection"))
        elif not self.close_received:
            self.messages.fail(StreamIncomplete("WebSocket closed before the end: no close frame"))

    # --- httptools callbacks (the 101 answer) ---------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()
        self.head_size += len(f"HTTP/1.1 {self.status} ") + len(self.reason) + 4

    def on_body(self, body: bytes) -> None:
        self.refusal += body

    def on_message_complete(self) -> None:
        """A whole answer that is no upgrade: the server refused the WebSocket."""
        if self.status == 101:
            return  # the upgrade: httptools raises HttpParserUpgrade next
        text = self.refusal[:300].decode(errors="replace")
        self._fail(HTTPStatusFailed(f"WebSocket upgrade refused: HTTP {self.status}: {text}"))

    # --- the handshake and the pump -------------------------------------------------------

    def _handshake_ok(self) -> bool:
        if self.status != 101:
            self._fail(HTTPStatusFailed(f"WebSocket upgrade refused: HTTP {self.status}"))
            return False
        if self.headers.get("sec-websocket-accept") != accept_key(self.key):
            self._fail(ConnectFailed("cannot open WebSocket: wrong Sec-WebSocket-Accept"))
            return False
        if self.upgraded.done():  # the opener gave up (its connect timeout): nobody reads it
            self.abort()
            return False
        self.upgraded.set_result(None)
        return True

    def _fail(self, exc: BaseException) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc)
        self.abort()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_text(self, text: str) -> None:
        self._write(client_frame(TEXT, text.encode(), os.urandom(4)))

    def close(self) -> None:
        """Begin the closing handshake (code 1000), as the library does when a client is
        done before the server has closed; the server answers and closes the connection."""
        if not self.close_sent:
            self.close_sent = True
            self._write(client_frame(CLOSE, (1000).to_bytes(2, "big"), os.urandom(4)))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pump(self, steps: effects.Steps) -> asyncio.Future[effects.Effect | None]:
        """Feed each message to the exchange as it arrives (`clients.pump`); None once the
        server closed cleanly."""
        return self.messages.start(steps)


async def open_websocket(settings: ClientSettings, path: str, result: StreamResult) -> WSConnection:
    """Connect and complete the handshake; the upgrade is counted as one request."""
    parts = urlsplit(settings.base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16)).decode()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            transport, conn = await loop.create_connection(lambda: WSConnection(key), host, port)
            conn.transport = transport
            request = upgrade_request(
                parts.netloc, parts.path.rstrip("/") + path, key, settings.token
            )
            transport.write(request)
            await conn.upgraded
    except TimeoutError as exc:  # before OSError, of which it is a subclass
        raise ConnectFailed(
            f"cannot open WebSocket: no handshake within {CONNECT_TIMEOUT_S:g} s"
        ) from exc
    except OSError as exc:
        raise ConnectFailed(f"cannot open WebSocket: {exc}") from exc
    sock = transport.get_extra_info("socket")
    conn.sock = sock.dup() if sock is not None else None  # counters readable after close
    result.requests += 1
    result.header_bytes += len(request) + conn.head_size
    return conn


async def close_and_charge(conn: WSConnection, result: StreamResult) -> None:
    """The connection's whole-life bytes, once it has closed: the closing handshake is
    completed (the exchange may end at the terminal message, before the server's close
    frame), then the server closes first; one that does not within `CLOSED_WAIT_S`, and a
    connection dropped on purpose, is aborted."""
    conn.close()
    try:
        async with asyncio.timeout(CLOSED_WAIT_S):
            await asyncio.shield(conn.closed)
    except TimeoutError:
        conn.abort()
    if conn.sock is not None:
        with conn.sock:
            result.add_bytes(connection_bytes(conn.sock))
        conn.sock = None
