"""Small misbehaving HTTP and WebSocket servers for `bench.py probe` tests: hand-written
responses from `asyncio.start_server` on 127.0.0.1 (port 0), in a thread of their own so
the probe's own event loop (in `bench.main`) runs beside them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


class ScriptedServer:
    """`with ScriptedServer(handler) as server:` serves `handler` for every connection (one
    request each) until the block ends; `server.requests` lists what came in."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(5)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            first, *lines = head.split("\r\n")
            method, target, _ = first.split(" ", 2)
            headers = {}
            for line in lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            request = Request(method, target, headers, body)
            self.requests.append(request)
            await self.handler(request, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


# --- response pieces ----------------------------------------------------------------------


def head(status: str = "200 OK", *headers: str) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


LAST_CHUNK = b"0\r\n\r\n"
CHUNKED = "Transfer-Encoding: chunked"
SSE_HEADERS = (
    "Content-Type: text/event-stream",
    "Cache-Control: no-cache",
    "X-Accel-Buffering: no",
)
SENTENCE = "Streaming is how every token gets to the user as soon as the model makes it"
WORDS = SENTENCE.split(" ")


def sse_events(n: int = 20) -> list[bytes]:
    """`n` JSON token events with ids, then a terminal event."""
    events = [f'id: {i}\ndata: {{"t": " {WORDS[i % len(WORDS)]}"}}\n\n'.encode() for i in range(n)]
    return [*events, b'data: {"done": true}\n\n']


async def streamed(
    writer: asyncio.StreamWriter, pieces: Iterator[bytes] | list[bytes], gap_s: float
) -> None:
    """Each piece as its own HTTP chunk, `gap_s` apart, then the last chunk."""
    for piece in pieces:
        writer.write(chunk(piece))
        await writer.drain()
        await asyncio.sleep(gap_s)
    writer.write(LAST_CHUNK)


# --- handlers -----------------------------------------------------------------------------


async def good_sse(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(head("200 OK", *SSE_HEADERS, CHUNKED))
    await streamed(writer, sse_events(), 0.01)


async def buffering_sse(request: Request, writer: asyncio.StreamWriter) -> None:
    """Generates for 0.3 s, then sends everything at once (a full-body middleware)."""
    await asyncio.sleep(0.3)
    body = b"".join(sse_events())
    writer.write(head("200 OK", "Content-Type: text/event-stream", f"Content-Length: {len(body)}"))
    writer.write(body)


async def sse_without_data(request: Request, writer: asyncio.StreamWriter) -> None:
    """Streams JSON lines separated by blank lines, but without the `data:` field name."""
    writer.write(head("200 OK", *SSE_HEADERS, CHUNKED))
    lines = [f'{{"t": " {w}"}}\n\n'.encode() for w in WORDS[:10]]
    await streamed(writer, [*lines, b'{"done": true}\n\n'], 0.01)


async def regenerating_sse(request: Request, writer: asyncio.StreamWriter) -> None:
    """No terminal event, and every request (a reconnect with Last-Event-ID included)
    generates the answer again from the start."""
    writer.write(head("200 OK", *SSE_HEADERS, CHUNKED))
    events = [f"id: {i}\ndata: {w}\n\n".encode() for i, w in enumerate(WORDS[:8])]
    await streamed(writer, events, 0.01)


async def gzip_sse(request: Request, writer: asyncio.StreamWriter, flush: bool = False) -> None:
    """gzip over an SSE stream; without `flush` the compressor holds every event until the
    end (as gzip middleware does), with it each event is flushed (Z_SYNC_FLUSH)."""
    writer.write(head("200 OK", *SSE_HEADERS, "Content-Encoding: gzip", CHUNKED))
    compressor = zlib.compressobj(wbits=31)
    for event in sse_events():
        out = compressor.compress(event)
        if flush:
            out += compressor.flush(zlib.Z_SYNC_FLUSH)
        writer.write(chunk(out))
        await writer.drain()
        await asyncio.sleep(0.01)
    writer.write(chunk(compressor.flush()) + LAST_CHUNK)


async def gzip_sse_flushed(request: Request, writer: asyncio.StreamWriter) -> None:
    await gzip_sse(request, writer, flush=True)


async def flask_text(request: Request, writer: asyncio.StreamWriter) -> None:
    """What Flask sends for `Response(generate(), mimetype="text/plain")`: one chunk per
    yielded word, no cache headers."""
    writer.write(head("200 OK", "Content-Type: text/plain; charset=utf-8", CHUNKED))
    await streamed(writer, [f"{w} ".encode() for w in WORDS], 0.01)


async def buffered_text(request: Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.3)
    body = " ".join(WORDS).encode()
    writer.write(head("200 OK", "Content-Type: text/plain", f"Content-Length: {len(body)}"))
    writer.write(body)


async def sse_as_text_plain(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(head("200 OK", "Content-Type: text/plain", "Cache-Control: no-cache", CHUNKED))
    await streamed(writer, sse_events(), 0.01)


def openai_chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = "{}" if content is None else f'{{"content": "{content}"}}'
    finish_json = "null" if finish is None else f'"{finish}"'
    return (
        'data: {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": '
        f'{delta}, "finish_reason": {finish_json}}}]}}\n\n'
    ).encode()


async def truncated_openai(request: Request, writer: asyncio.StreamWriter) -> None:
    """Content chunks, then the connection ends: no finish_reason, no [DONE]."""
    writer.write(head("200 OK", *SSE_HEADERS, CHUNKED))
    await streamed(writer, [openai_chunk(f" {w}") for w in WORDS[:8]], 0.01)


async def echo_authorization(request: Request, writer: asyncio.StreamWriter) -> None:
    """A text stream that (badly) echoes the Authorization header it got."""
    writer.write(head("200 OK", "Content-Type: text/plain", CHUNKED))
    echoed = request.headers.get("authorization", "none").encode()
    await streamed(writer, [b"you sent ", echoed, *[f" {w}".encode() for w in WORDS[:6]]], 0.01)


async def not_found(request: Request, writer: asyncio.StreamWriter) -> None:
    body = b'{"error": "no such route"}'
    writer.write(
        head("404 Not Found", "Content-Type: application/json", f"Content-Length: {len(body)}")
    )
    writer.write(body)


# --- WebSocket ----------------------------------------------------------------------------


def ws_frame(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, len(payload)]) + payload


async def ws_without_close_frame(request: Request, writer: asyncio.StreamWriter) -> None:
    """Accepts the upgrade, sends a few messages, then drops the TCP connection without a
    close frame."""
    key = request.headers["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    writer.write(
        head(
            "101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept}",
        )
    )
    await writer.drain()
    for word in WORDS[:6]:
        writer.write(ws_frame(f'{{"t": " {word}"}}'))
        await writer.drain()
        await asyncio.sleep(0.01)
