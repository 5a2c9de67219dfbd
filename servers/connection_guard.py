"""uvicorn's HTTP and WebSocket protocols, with the bounds a server facing careless or
hostile clients needs and uvicorn does not apply (each a `ServerSettings` field):

- `request_timeout_s`: uvicorn times out idle keep-alive connections between requests, but
  not a connection that sends nothing, only part of a request head, or a body that never
  ends (its keep-alive timer restarts at every byte). A timer starts when a connection opens
  and whenever a new request begins, and closes the connection if the request (head and
  body) is not complete when it fires. Endpoints that read a body answer 408 first
  (`servers.request_parsing.read_body`).
- `max_head_bytes`: uvicorn (with httptools) keeps a request head whole however large it
  is (measured: one 64 MB header added 66 MB of RSS). The bytes of each head are counted
  as they arrive; past the bound the answer is 431, the rest of what the client sends is
  read and dropped for a moment (so the client sees the answer, not a reset), and the
  connection is closed. Memory stays bounded whatever the header size.
- `write_timeout_s`: a client that never reads keeps a push response (or a WebSocket) in
  flight for ever, its tokens queued in the kernel. The transport tells its protocol when
  its buffer is full (`pause_writing`: the kernel accepts nothing more) and when it drains
  again; if it stays full for `write_timeout_s` the connection is dropped. The push stream
  then ends as after any drop (`servers.streaming`: a resume grace, then cancellation).
  Nothing is done per token.
- WebSocket control frames: uvicorn answers every ping straight into the transport's
  buffer, whether or not the client reads (measured: 100 MB of pings from a client that
  never read added 100 MB of RSS). More than `ws_max_control_frames_per_s` pings and pongs
  in a second, or more than `ws_max_queue_bytes` waiting to be written, close the
  connection with 1008 (policy violation); 1009 (too big) stays for messages over
  `max_body_bytes`, as uvicorn's `ws_max_size` sends it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from servers.access import transfer_codings, unsupported_codings, unsupported_codings_message
from servers.settings import ServerSettings
from wire.messages import dumps

BODY_ANSWER_GRACE_S = 1.0  # after the request timeout, before a body-less connection closes
LINGER_S = 1.0  # reading and dropping what follows a refused head, so the answer is seen
POLICY_VIOLATION = 1008


def closing_answer(status_line: bytes, message: str) -> bytes:
    """A whole JSON error response that ends the connection, written by the protocol where
    no request exists for the app."""
    body = dumps({"error": message}).encode()
    return (
        b"HTTP/1.1 " + status_line + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


def head_too_large_answer(limit: int) -> bytes:
    message = f"the request head exceeds max_head_bytes ({limit}): send fewer, shorter headers"
    return closing_answer(b"431 Request Header Fields Too Large", message)


def unsupported_coding_answer(codings: list[str]) -> bytes:
    """501 for a transfer coding the server does not implement (RFC 9112, 6.1), the same
    answer whether the parser or `servers.access` saw it first."""
    return closing_answer(b"501 Not Implemented", unsupported_codings_message(codings))


class WriteTimeout(asyncio.BaseProtocol):
    """A mixin for an asyncio protocol: drops the connection when its transport stayed
    paused for writing `write_timeout_s` (the kernel accepted nothing meanwhile). It comes
    first among the bases, so that the protocol's own `pause_writing`, `resume_writing` and
    `connection_lost` (next in the method order) still run."""

    transport: asyncio.Transport
    write_timeout_s: float = 30.0
    _write_timer: asyncio.TimerHandle | None = None

    def _stop_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None and self.write_timeout_s > 0:
            loop = asyncio.get_running_loop()
            self._write_timer = loop.call_later(self.write_timeout_s, self.transport.abort)

    def resume_writing(self) -> None:
        self._stop_write_timer()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_write_timer()
        super().connection_lost(exc)


def guarded_protocol(settings: ServerSettings) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn's `http=`, with these settings' bounds."""
    request_timeout_s = settings.request_timeout_s
    max_head = settings.max_head_bytes
    nagle = "nagle" in settings.faults

    class GuardedHttpProtocol(WriteTimeout, HttpToolsProtocol):
        write_timeout_s = settings.write_timeout_s
        _request_timer: asyncio.TimerHandle | None = None
        _head_done = False  # the app has the request: it may still answer (408) in time
        _head_bytes = 0  # of the head being received
        _in_head = True  # bytes now arriving belong to a request head
        _heads = 0  # request heads completed on this connection
        _refused = False  # a head was too large: what follows is dropped

        def _arm(self, delay_s: float = request_timeout_s) -> None:
            if self._request_timer is None:
                self._request_timer = self.loop.call_later(delay_s, self._request_overdue)

        def _disarm(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_overdue(self) -> None:
            self._request_timer = None
            if self._head_done:  # the endpoint times the body too: let its 408 go out first
                self._head_done = False
                self._arm(BODY_ANSWER_GRACE_S)
            elif not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(cast(asyncio.Transport, transport))  # always a stream one
            if nagle:  # the failure lab's `nagle` fault (servers/faults.py): asyncio sets it
                sock = transport.get_extra_info("socket")
                if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if not self._in_head:
                super().data_received(data)
                return
            room = max_head - self._head_bytes
            if len(data) <= room:
                self._head_bytes += len(data)
                super().data_received(data)
                return
            heads = self._heads
            if room > 0:  # the head may end within its bound: feed that much, then see
                self._head_bytes += room
                super().data_received(data[:room])
            if self._heads == heads:  # still the same head, and past its bound
                self._refuse_head()
            elif self.transport.get_protocol() is self and not self._refused:
                self.data_received(data[room:])  # the rest: a body, or the next request

        def _refuse_head(self) -> None:
            self._refused = True
            self._disarm()
            self.transport.write(head_too_large_answer(max_head))
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.abort)

        def send_400_response(self, msg: str) -> None:
            """The parser refused the request: with a transfer coding other than chunked
            among its headers, that is why (llhttp refuses `identity`, `chunked, chunked`)."""
            values = [v.decode("latin-1") for n, v in self.headers if n == b"transfer-encoding"]
            codings = transfer_codings(values)
            if unsupported_codings(codings):
                self.transport.write(unsupported_coding_answer(codings))
                self.transport.close()
                return
            super().send_400_response(msg)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_done = False
            self._arm()

        def on_headers_complete(self) -> None:
            self._head_done = True
            self._in_head = False
            self._heads += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_head = True
            self._head_bytes = 0
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpProtocol


def guarded_ws_protocol(settings: ServerSettings) -> type[WebSocketsSansIOProtocol]:
    """The protocol class to pass as uvicorn's `ws=`, with these settings' bounds."""
    max_control = settings.ws_max_control_frames_per_s
    max_queue = settings.ws_max_queue_bytes

    class GuardedWebSocketProtocol(WriteTimeout, WebSocketsSansIOProtocol):
        write_timeout_s = settings.write_timeout_s
        _window_start = 0.0
        _control_frames = 0  # in the second that began at _window_start
        _violated = False

        def _count_control_frame(self) -> bool:
            """Count one ping or pong; False once the client sent too many this second."""
            now = self.loop.time()
            if now - self._window_start >= 1.0:
                self._window_start, self._control_frames = now, 0
            self._control_frames += 1
            return self._control_frames <= max_control

        def _violation(self, reason: str) -> None:
            """Close with 1008: the close frame is written if the client still reads; if it
            does not within LINGER_S, the connection is dropped anyway."""
            self._violated = True
            self.conn.send_close(POLICY_VIOLATION, reason)
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": POLICY_VIOLATION, "reason": reason}
            )
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()
            self.loop.call_later(LINGER_S, self.transport.abort)

        def handle_ping(self) -> None:
            if self._violated:
                return
            if not self._count_control_frame():
                self._violation(f"more than ws_max_control_frames_per_s ({max_control}) pings")
            elif self.transport.get_write_buffer_size() > max_queue:
                self._violation(f"the client reads nothing: over ws_max_queue_bytes ({max_queue})")
            else:
                super().handle_ping()

        def handle_pong(self, event: Frame) -> None:
            if self._violated:
                return
            if not self._count_control_frame():
                self._violation(f"more than ws_max_control_frames_per_s ({max_control}) pongs")
                return
            super().handle_pong(event)

    return GuardedWebSocketProtocol
