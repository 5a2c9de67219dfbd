"""HTTP/1.1 for the probe: the request's bytes and an incremental response parser (pure).

h11 does the parsing (status line, headers, chunked transfer decoding, Content-Length and
close-delimited bodies), so the probe's reader only moves bytes and stamps them. Why h11
here and httptools everywhere else (server, lean client, callback receiver): this parses
somebody else's endpoint, and httptools has no end-of-input call, so at the connection's
close it cannot tell a close-delimited body's end from a truncated chunked body, and it
refuses bare-LF line ends and obs-folded headers that h11 accepts (measured with httptools
0.9.0 and h11 0.16.0).

Content decoding (gzip, deflate) is not done here: `decode.py` does it, because whether a
compressed stream arrives event by event is one of the things the probe judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import h11

from errors import ProtocolError


@dataclass(frozen=True, slots=True)
class Head:
    """The response's status line and headers (names lower-cased, in order)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The header's value; repeated headers joined by ", " as RFC 9110 allows."""
        values = [v for k, v in self.headers if k == name.lower()]
        return ", ".join(values) if values else None

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ("" when absent)."""
        return (self.get("content-type") or "").split(";")[0].strip().lower()


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one network read completed: the head (once), body bytes, the end of the body."""

    head: Head | None
    body: bytes
    complete: bool


class ResponseParser:
    """One request/response exchange on one connection, client side."""

    def __init__(self) -> None:
        self._conn = h11.Connection(our_role=h11.CLIENT)
        self._head_seen = False

    def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes | None
    ) -> bytes:
        """The request's bytes (head and body)."""
        try:
            request = h11.Request(method=method, target=target, headers=list(headers))
            data = self._conn.send(request)
            if body:
                data += self._conn.send(h11.Data(data=body))
            data += self._conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise ProtocolError(f"cannot write this request: {exc}") from exc
        return data

    @property
    def reusable(self) -> bool:
        """The exchange ended cleanly and the connection may carry another (keep-alive)."""
        conn = self._conn
        done = conn.our_state is h11.DONE and conn.their_state is h11.DONE
        return done and not conn.trailing_data[0]

    def feed(self, data: bytes) -> Parsed:
        """Bytes from one read (b"" at the end of the connection)."""
        try:
            self._conn.receive_data(data)
            return self._events()
        except h11.RemoteProtocolError as exc:
            raise ProtocolError(f"malformed HTTP response: {exc}") from exc

    def _events(self) -> Parsed:
        head: Head | None = None
        body = bytearray()
        while True:
            event = self._conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return Parsed(head, bytes(body), False)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                head = Head(
                    event.status_code,
                    event.reason.decode("latin-1"),
                    tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers),
                )
                self._head_seen = True
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return Parsed(head, bytes(body), True)
            elif isinstance(event, h11.ConnectionClosed):
                if not self._head_seen:
                    raise ProtocolError("the server closed the connection without a response")
                return Parsed(head, bytes(body), False)


def parse_response(reads: Sequence[bytes]) -> tuple[Head | None, list[bytes], bool]:
    """Whole raw reads parsed at once (for tests and replays): the head, the body bytes of
    each read, and whether the body ended. The last read may be b"" (end of connection)."""
    parser = ResponseParser()
    parser.request("GET", "/", [("Host", "probe")], None)
    head: Head | None = None
    bodies: list[bytes] = []
    complete = False
    for data in reads:
        parsed = parser.feed(data)
        head = head or parsed.head
        bodies.append(parsed.body)
        if parsed.complete:
            complete = True
            break
    return head, bodies, complete
