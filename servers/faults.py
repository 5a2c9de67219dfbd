"""Server faults for the failure lab: the streaming mistakes users ship, each in one place.

Every fault is a realistic bug, switched on with `--fault NAME` (repeatable), so that a run
or `bench.py probe` can show what it does to a stream (docs/failures.md):

- `nagle`: no TCP_NODELAY on the connection (`servers.connection_guard`), and the head
  written just before the first body chunk, in a write of its own, as WSGI servers write
  a streamed response. On a reused keep-alive connection the client delays its ACK of
  the head (Linux: up to 40 ms, while the connection is in ping-pong mode), and Nagle
  holds the first token's small write until that ACK. Measured with a bare socket server
  on this kernel: token 0 late by 40 ms minus the gap since the head, on every request
  but a connection's first; nothing with TCP_NODELAY.
- `headers_late`: the response head held back until the body's first bytes exist, as
  Starlette's GZip responders do (they wait for the first body to choose the encoding).
- `buffer_body`: a middleware that reads the whole body and sends it with a Content-Length.
- `gzip_noflush`: gzip without a flush per chunk, as Starlette's GZipMiddleware did before
  1.5.0 (kludex/starlette#3419 added the flush; #2871, in 0.46, left `text/event-stream`
  out) and Express's `compression` does without `res.flush()`: bytes leave only when
  zlib's buffer fills (about 32 KiB of input at level 6), or at the end.
- `no_terminal`: push streams end without their framing's end message
  (`servers.request_parsing.framing_named`), and SSE ignores `Last-Event-ID`
  (`servers.sse`), as a naive server does: an EventSource reconnects into a new answer.
- `no_data_prefix`: SSE events written as bare payloads, without `data:` and without the
  blank line (`servers.sse`), as lanarky once did.

The HTTP-level ones (`HTTP_FAULTS`) are an ASGI middleware, `FaultyResponses`, outermost on
the FastAPI app; they run on fastapi@uvicorn (`STACK`), where `nagle` can reach the socket.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from errors import ServerSettingsError

if TYPE_CHECKING:  # the harness reads FAULTS without the server's packages installed
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

FAULTS: dict[str, str] = {
    "nagle": "no TCP_NODELAY, and the head written in its own write just before the first token",
    "headers_late": "the response head held back until the first body bytes",
    "buffer_body": "a middleware reads the whole body, then sends it with a Content-Length",
    "gzip_noflush": "gzip on streamed responses without a flush per chunk",
    "no_terminal": "push streams end without their end message; SSE ignores Last-Event-ID",
    "no_data_prefix": "SSE events written as bare payloads, without data: and the blank line",
}
HTTP_FAULTS = ("gzip_noflush", "buffer_body", "headers_late", "nagle")  # innermost first
# the response layer each HTTP fault adds (`nagle`'s other half is the socket option)
LAYERS = {
    "gzip_noflush": "gzip",
    "buffer_body": "buffered",
    "headers_late": "late",
    "nagle": "late",
}
STACK = "fastapi@uvicorn"  # the stack the faults are modelled on
COMPRESSIBLE = ("text/", "application/json", "application/x-ndjson")


def load_faults(given: list[str] | None) -> tuple[str, ...]:
    """`--fault NAME` texts (each may be NAME,NAME or NAME+NAME) as fault names, in order."""
    names = [n.strip() for text in given or () for n in text.replace("+", ",").split(",")]
    names = [n for n in names if n and n != "none"]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ServerSettingsError(
            f"unknown server fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}"
        )
    return tuple(dict.fromkeys(names))


def dump_faults(faults: tuple[str, ...]) -> tuple[str, ...]:
    return faults


def refuse_other_stack(faults: tuple[str, ...], stack: str) -> None:
    """Faults run on the stack they are modelled on only (ServerSettingsError otherwise)."""
    if faults and stack != STACK:
        raise ServerSettingsError(
            f"server faults are modelled on {STACK} (where `nagle` can reach the socket): "
            f"drop stack {stack} or the faults ({', '.join(faults)})"
        )


def _header(message: Message, name: bytes) -> bytes | None:
    return next((v for k, v in message.get("headers", []) if k.lower() == name), None)


def _without(headers: list[tuple[bytes, bytes]], *names: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in names]


class _Gzip:
    """gzip over the whole body, written as zlib gives it out: no flush until the end."""

    def __init__(self, send: Send, accepts_gzip: bool) -> None:
        self._send, self._accepts = send, accepts_gzip
        self._zip: Any = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            kind = (_header(message, b"content-type") or b"").decode("latin-1")
            if self._accepts and kind.startswith(COMPRESSIBLE):
                self._zip = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip wrapper
                headers = _without(list(message.get("headers", [])), b"content-length")
                headers += [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
                message = {**message, "headers": headers}
            await self._send(message)
            return
        if self._zip is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        more = message.get("more_body", False)
        out = self._zip.compress(message.get("body", b""))
        if not more:
            out += self._zip.flush()
        if out or not more:
            await self._send({**message, "body": out})


class _Buffered:
    """The whole body read first, then sent at once with its length."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if self._start is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        self._body += message.get("body", b"")
        if message.get("more_body", False):
            return
        headers = _without(list(self._start.get("headers", [])), b"content-length")
        headers.append((b"content-length", str(len(self._body)).encode()))
        await self._send({**self._start, "headers": headers})
        self._start = None
        await self._send({"type": "http.response.body", "body": bytes(self._body)})


class _HeadersLate:
    """The head held until the body has bytes (or ends)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if self._start is not None and message["type"] == "http.response.body":
            if not message.get("body") and message.get("more_body", False):
                return
            start, self._start = self._start, None
            await self._send(start)
        await self._send(message)


class FaultyResponses:
    """ASGI middleware: the HTTP-level faults in `faults` on every HTTP response."""

    def __init__(self, app: ASGIApp, faults: tuple[str, ...]) -> None:
        self.app = app
        self.layers = tuple(dict.fromkeys(LAYERS[f] for f in HTTP_FAULTS if f in faults))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.layers:
            await self.app(scope, receive, send)
            return
        wrapped = send
        for layer in reversed(self.layers):  # the outermost wraps the socket's send first
            wrapped = self._layer(layer, wrapped, scope)
        await self.app(scope, receive, wrapped)

    @staticmethod
    def _layer(layer: str, send: Send, scope: Scope) -> Send:
        if layer == "gzip":
            accepted = dict(scope.get("headers", [])).get(b"accept-encoding", b"")
            return _Gzip(send, b"gzip" in accepted.lower())
        if layer == "buffered":
            return _Buffered(send)
        return _HeadersLate(send)
