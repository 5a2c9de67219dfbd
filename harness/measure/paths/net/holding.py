"""A buffering CDN's hold on responses (pure): what the `cdn-buffer` layer lets through,
read by read, on one relayed connection.

The model, and what it rests on:

- A response is held at the edge and released when `hold_bytes` of its body have arrived
  (then the next `hold_bytes`, and so on) or when it ends. Cloudflare documents this kind
  of hold: with Response Buffering on, it "may buffer the whole payload to deliver it at
  once to the client", and features that inspect a response body "can hold part of a
  response at the edge ... The amount of data held depends on the feature and response"
  (developers.cloudflare.com, Response body inspection).
- A response that says `X-Accel-Buffering: no` is not held: nginx's documented switch
  (proxy_buffering, "Buffering can also be enabled or disabled by passing yes or no in the
  X-Accel-Buffering response header field"), which CDNs and platforms in front of nginx
  honour.
- Nor is one that says `Cache-Control: no-transform`: RFC 9111 section 5.2.2.6 forbids an
  intermediary to transform its content, and a CDN that buffers to compress or rewrite a
  body leaves it alone (Cloudflare does not compress a no-transform response).
- Only answers that carry a body are held; a 101 (a WebSocket) switches the connection to
  bytes passed straight through, as CDNs proxy WebSockets.

Requests are parsed too (h11, server side), so that each response is read against its
request (a HEAD answer has no body). One request at a time, as browsers and the
benchmark's clients send them on HTTP/1.1; a parse error switches the connection to
passing bytes through unchanged, so the layer never breaks what it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11

DEFAULT_HOLD_KIB = 64


def exempt(headers: list[tuple[bytes, bytes]]) -> bool:
    """The response asks not to be buffered (X-Accel-Buffering: no) or transformed
    (Cache-Control: no-transform)."""
    for name, value in headers:
        key, text = name.lower(), value.lower()
        if key == b"x-accel-buffering" and text.strip() == b"no":
            return True
        if key == b"cache-control" and b"no-transform" in [d.strip() for d in text.split(b",")]:
            return True
    return False


@dataclass
class HoldStats:
    responses: int = 0
    held: int = 0  # responses held (not exempt, with a body)
    releases: int = 0  # lumps let through while holding


class ResponseHold:
    """One connection's requests (`from_client`) and responses (`from_origin`): the bytes
    to pass on now, the framing untouched."""

    def __init__(self, hold_bytes: int, stats: HoldStats | None = None) -> None:
        self.hold_bytes = hold_bytes
        self.stats = stats or HoldStats()
        self._requests = h11.Connection(our_role=h11.SERVER)
        self._responses = h11.Connection(our_role=h11.CLIENT)
        self._waiting: list[h11.Request | h11.Data | h11.EndOfMessage] = []
        self._through = False  # passing bytes straight through from now on
        self._holding = False  # the current response is held
        self._held = bytearray()
        self._body = 0  # body bytes held since the last release

    def from_client(self, data: bytes) -> None:
        """Bytes the client sent (passed on unchanged by the relay)."""
        if self._through:
            return
        try:
            self._requests.receive_data(data)
            self._read_requests()
        except h11.ProtocolError:
            self._through = True

    def _read_requests(self) -> None:
        while True:
            event = self._requests.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                break
            if isinstance(event, h11.Request | h11.Data | h11.EndOfMessage):
                self._waiting.append(event)
        self._send_waiting()

    def _send_waiting(self) -> None:
        """Requests into the response parser, once it is ready for each."""
        while self._waiting and self._responses.our_state in (h11.IDLE, h11.SEND_BODY):
            self._responses.send(self._waiting.pop(0))

    def from_origin(self, data: bytes) -> bytes:
        """Bytes the origin sent: what to pass on now (b"" while holding). b"" is the end of
        the connection: everything held goes."""
        if self._through:
            return self._release(data)
        self._held += data
        try:
            self._responses.receive_data(data)
            return self._events()
        except h11.ProtocolError:
            self._through = True
            return self._release()

    def _events(self) -> bytes:
        out = bytearray()
        while True:
            event = self._responses.next_event()
            if event is h11.NEED_DATA:
                break
            if event is h11.PAUSED:  # a 101: the connection carries bytes from now on
                self._through = True
                break
            if isinstance(event, h11.Response):
                self.stats.responses += 1
                body = event.status_code not in (204, 304)
                self._holding = body and not exempt(list(event.headers))
                self.stats.held += self._holding
                self._body = 0
            elif isinstance(event, h11.Data):
                self._body += len(event.data)
                if self._holding and self._body >= self.hold_bytes:
                    out += self._release()
            elif isinstance(event, h11.EndOfMessage):
                out += self._release()
                self._holding = False
                self._next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                out += self._release()
                break
        if not self._holding:
            out += self._release()
        return bytes(out)

    def _next_cycle(self) -> None:
        if self._responses.our_state is h11.DONE and self._responses.their_state is h11.DONE:
            self._responses.start_next_cycle()
            if self._requests.their_state is h11.DONE:
                self._finish_request_cycle()
            self._send_waiting()

    def _finish_request_cycle(self) -> None:
        """The request parser's side of the cycle: it never answers, so it is told the
        response ended (a minimal one) before it reads the next request."""
        conn = self._requests
        try:
            if conn.our_state is h11.SEND_RESPONSE:
                conn.send(h11.Response(status_code=204, headers=[]))
            if conn.our_state is h11.SEND_BODY:
                conn.send(h11.EndOfMessage())
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                self._read_requests()  # a next request that came meanwhile
        except h11.ProtocolError:
            self._through = True

    def _release(self, extra: bytes = b"") -> bytes:
        held, self._held = bytes(self._held) + extra, bytearray()
        if held and self._holding:
            self.stats.releases += 1
        self._body = 0
        return held
