"""WebTransport: `https://HOST:PORT/v1/wt`, a WebTransport session over HTTP/3 (aioquic) on
the UDP port of the server's TCP port's number. The client opens one bidirectional stream
per request on the session and sends the request on it as one message; the server sends
one message per token, then the framing's terminal message(s), then ends the stream.
Messages are length-prefixed text (`wire/webtransport.py`). The stream's messages mean
what the WebSocket's mean (`servers/websocket.py` runs both): `{"resume": ID, "from": K}`
continues a generation, a bad first message gets `{"error": ..}`.

Leaving: a client that ends or resets its stream, or closes the session or the connection
without an error, left for good (the generation is cancelled now); a connection closed
with an error, or gone silent past the idle timeout, dropped (the generation waits
`resume_grace_s` for a resume, as after any drop).

No HTTP server stack speaks WebTransport to an application (hypercorn's HTTP/3 hands ASGI
no sessions), so this is a listener of the server's own, run beside any stack inside the
core's event loop (`servers.core.running`), on the same state: it is on when the server
is given a certificate (`--webtransport-cert`). The access rules are the HTTP ones, read
from the CONNECT request (Host, Origin, a bearer token in `authorization`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import weakref
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import (
    ConnectionTerminated,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)

from errors import ServerSettingsError
from servers.access import Asked, Gate, Refused, own_origin
from servers.exchange import Message
from servers.settings import ServerSettings, normal_origin
from servers.state import ServerState
from servers.websocket import session
from wire.webtransport import MessageDecoder, encode_message

NAME = "webtransport"  # as the registry names this transport
PATH = "/v1/wt"
ROUTES = ()  # no HTTP routes: the session is the listener's (`listening`)
LEFT = 1000  # what a peer's `closed` says of a client that left on purpose
DROPPED = 1006  # and of one whose connection went
IDLE_TIMEOUT_S = 60.0  # a silent connection is dropped after this (clients PING meanwhile)
MAX_DATAGRAM = 65536  # WebTransport over HTTP/3 needs datagrams offered (none are sent)
CLEAN = (0, ErrorCode.H3_NO_ERROR)  # connection-close codes of a client that left on purpose


class StreamPeer:
    """One bidirectional WebTransport stream as the neutral WebSocket endpoint's peer
    (`servers.exchange.SocketPeer`): messages in and out, its end as a close code."""

    def __init__(
        self, protocol: WebTransportProtocol, session_id: int, stream_id: int, max_bytes: int
    ) -> None:
        self.protocol = protocol
        self.session_id = session_id
        self.stream_id = stream_id
        self.decoder = MessageDecoder(max_bytes)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.ended = False  # this side's end was sent

    def feed(self, data: bytes, ended: bool) -> None:
        unreadable = self.decoder.error is not None
        for text in self.decoder.feed(data):
            self.inbox.put_nowait(Message(text=text))
        if self.decoder.error is not None and not unreadable:
            self.inbox.put_nowait(Message())  # unreadable: refused as a binary message is
        if ended:
            self.inbox.put_nowait(Message(closed=LEFT))

    def gone(self, code: int) -> None:
        self.ended = True
        self.inbox.put_nowait(Message(closed=code))

    async def receive(self) -> Message:
        return await self.inbox.get()

    async def send_text(self, text: str) -> None:
        if self.ended:
            raise ConnectionError("the WebTransport stream has ended")
        self.protocol.send(self.stream_id, encode_message(text), end=False)
        await asyncio.sleep(0)  # let the reads in between (a leaving client) be seen

    async def close(self, code: int = 1000) -> None:
        if not self.ended:
            self.ended = True
            with contextlib.suppress(ConnectionError):  # the stream or connection went
                self.protocol.send(self.stream_id, b"", end=True)


class WebTransportProtocol(QuicConnectionProtocol):
    """One QUIC connection: HTTP/3 with WebTransport; its sessions' streams each run the
    WebSocket endpoint's session on a `StreamPeer`."""

    def __init__(self, *args: Any, state: ServerState, gate: Gate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state = state
        self.gate = gate
        self.h3: H3Connection | None = None
        self.sessions: dict[int, ServerState] = {}  # accepted session id: its caller's state
        self.peers: dict[int, StreamPeer] = {}
        self.finished: set[int] = set()  # streams whose session ran: later data is ignored
        self.tasks: set[asyncio.Task[None]] = set()

    def send(self, stream_id: int, data: bytes, end: bool) -> None:
        """ConnectionError when the stream or the connection can take no more."""
        try:
            self._quic.send_stream_data(stream_id, data, end_stream=end)
        except (AssertionError, RuntimeError, ValueError) as exc:  # ended, reset, or closed
            raise ConnectionError(f"the WebTransport stream cannot be written: {exc}") from None
        self.transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if self.h3 is None:
            self.h3 = H3Connection(self._quic, enable_webtransport=True)
        if isinstance(event, ConnectionTerminated):
            code = LEFT if event.error_code in CLEAN else DROPPED
            for peer in self.peers.values():
                peer.gone(code)
            self.peers.clear()
            return
        if isinstance(event, StreamReset | StopSendingReceived):
            if event.stream_id in self.peers:  # the client reset its stream, or stopped it
                self.peers.pop(event.stream_id).gone(LEFT)
            elif event.stream_id in self.sessions:  # the session's CONNECT stream went
                self.session_closed(event.stream_id)
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, WebTransportStreamDataReceived):
                self.stream_data(h3_event)
            elif isinstance(h3_event, HeadersReceived) and h3_event.stream_id not in self.sessions:
                self.accept(h3_event.stream_id, h3_event.headers)
            elif isinstance(h3_event, HeadersReceived | DataReceived) and h3_event.stream_ended:
                self.session_closed(h3_event.stream_id)

    def session_closed(self, session_id: int) -> None:
        """The session's CONNECT stream ended (the client closed the session): its streams'
        clients left."""
        self.sessions.pop(session_id, None)
        for peer in [p for p in self.peers.values() if p.session_id == session_id]:
            self.peers.pop(peer.stream_id).gone(LEFT)

    def accept(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        """A request on the connection: a WebTransport CONNECT to `PATH` is accepted (200)
        when the access rules admit it; anything else is refused with its status."""
        fields = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        status, state = self.admitted(fields)
        assert self.h3 is not None
        response = [(b":status", str(status).encode())]
        if status == 200:
            response.append((b"sec-webtransport-http3-draft", b"draft02"))
            self.sessions[stream_id] = state
        self.h3.send_headers(stream_id, response, end_stream=status != 200)
        self.transmit()

    def admitted(self, fields: dict[str, str]) -> tuple[int, ServerState]:
        if fields.get(":method") != "CONNECT" or fields.get(":protocol") != "webtransport":
            return 405, self.state
        if fields.get(":path", "").partition("?")[0] != PATH:
            return 404, self.state
        host = fields.get(":authority", "")
        origin = fields.get("origin")
        if origin is not None and normal_origin(origin) == own_origin("http", host):
            del fields["origin"]  # a page of the server's own origin over TCP: its own
        others = tuple((k, v) for k, v in fields.items() if not k.startswith(":"))
        asked = Asked("https", "3", PATH, (("host", host), *others))
        verdict = self.gate.admit(asked)
        if isinstance(verdict, Refused):
            return verdict.refusal.status, self.state
        principal = verdict.principal
        return 200, self.state if principal is None else replace(self.state, principal=principal)

    def stream_data(self, event: WebTransportStreamDataReceived) -> None:
        if event.stream_id in self.finished or event.stream_id & 2:
            return  # a stream whose session ended, or a unidirectional one: no request here
        peer = self.peers.get(event.stream_id)
        if peer is None:
            state = self.sessions.get(event.session_id)
            if state is None:  # not a session this connection accepted
                self.finished.add(event.stream_id)
                with contextlib.suppress(ConnectionError):
                    self.send(event.stream_id, b"", end=True)
                return
            peer = StreamPeer(
                self, event.session_id, event.stream_id, state.settings.max_body_bytes
            )
            self.peers[event.stream_id] = peer
            task = asyncio.create_task(self.run(state, peer))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        peer.feed(event.data, event.stream_ended)

    async def run(self, state: ServerState, peer: StreamPeer) -> None:
        try:
            await session(state, peer, NAME)
        finally:
            await peer.close()
            self.peers.pop(peer.stream_id, None)
            self.finished.add(peer.stream_id)


def configuration(settings: ServerSettings) -> QuicConfiguration:
    """The listener's QUIC settings: HTTP/3's ALPN, datagrams on (a browser's WebTransport
    asks for them), the certificate the settings name."""
    config = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=MAX_DATAGRAM,
        idle_timeout=IDLE_TIMEOUT_S,
    )
    try:
        config.load_cert_chain(settings.webtransport_cert, settings.webtransport_key)
    except (OSError, ValueError) as exc:
        raise ServerSettingsError(
            f"cannot load --webtransport-cert {settings.webtransport_cert} with its key: {exc}"
        ) from None
    return config


def address(settings: ServerSettings) -> tuple[str, int]:
    """(host, port) of `--webtransport-address` (HOST:PORT, IPv6 in brackets)."""
    host, _, port = settings.webtransport_address.rpartition(":")
    if not host or not port.isdigit():
        raise ServerSettingsError(
            f"--webtransport-address {settings.webtransport_address!r} is not HOST:PORT"
        )
    return host.strip("[]"), int(port)


def taken(host: str, port: int, reason: object) -> ServerSettingsError:
    return ServerSettingsError(
        f"WebTransport answers on UDP port {port} of {host}, the TCP port's number, and that "
        f"port is taken ({reason}): serve on another port"
    )


def check_port(settings: ServerSettings) -> None:
    """A one-line ServerSettingsError, before the server starts, when WebTransport's UDP
    port is taken."""
    if not settings.webtransport_cert:
        return
    host, port = address(settings)
    with socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
    ) as udp:
        try:
            udp.bind((host, port))
        except OSError as exc:
            raise taken(host, port, exc.strerror or exc) from None


@contextlib.asynccontextmanager
async def listening(state: ServerState) -> AsyncIterator[None]:
    """The WebTransport listener while the server runs, when it has a certificate; a UDP
    port that is taken is a ServerSettingsError in one line."""
    settings = state.settings
    if not settings.webtransport_cert:
        yield
        return
    host, port = address(settings)
    gate = Gate(settings)

    protocols: weakref.WeakSet[WebTransportProtocol] = weakref.WeakSet()

    def protocol(*args: Any, **kwargs: Any) -> WebTransportProtocol:
        made = WebTransportProtocol(*args, state=state, gate=gate, **kwargs)
        protocols.add(made)
        return made

    try:
        server = await serve(
            host, port, configuration=configuration(settings), create_protocol=protocol
        )
    except OSError as exc:
        raise taken(host, port, exc.strerror or exc) from None
    try:
        yield
    finally:
        server.close()
        running = [task for p in protocols for task in p.tasks]
        for task in running:  # the sessions still open end with the server
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
