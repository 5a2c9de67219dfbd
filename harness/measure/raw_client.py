"""The floor the harness's own client is held to: a minimal raw asyncio socket client.

It sends the same requests the benchmark's clients send, over the same kind of connections
(HTTP/1.1 keep-alive for SSE and chunked, one WebSocket per stream), on the same event loop
(uvloop), and does nothing else: it counts token messages (JSON-framed tokens start with
`{"i":`; on a WebSocket, every text message but the last) and finds each response's end; it
decodes nothing, stamps nothing and records no token. Run in the same benchmark against the
same server (`raw_client = true` in a scenario), its CPU per token is the floor the
harness's client is compared with: the harness also decodes every token, stamps it and keeps
it for the metrics, and scenarios/scale-1000.toml holds it to within 1.3x of this floor.
Its HTTP is by hand (a head skipped at its blank line, a chunked body's end found by its
last chunk), not httptools: parsing is part of the cost this floor leaves out.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from errors import ScenarioError
from transports import TRANSPORTS
from wire.messages import GenerationRequest, dumps

TOKEN_MARK = b'{"i":'
CHUNKED_END = b"0\r\n\r\n"  # the last chunk of a chunked body: the response is over
TAIL = max(len(TOKEN_MARK), len(CHUNKED_END)) - 1


@dataclass(frozen=True, slots=True)
class RawRun:
    """What the raw client did: streams finished, token messages counted, the CPU its
    event-loop thread spent and the wall time it took."""

    streams: int
    tokens: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_us_per_token(self) -> float | None:
        return None if not self.tokens else self.cpu_s / self.tokens * 1e6


def http_request(host: str, path: str, request: GenerationRequest) -> bytes:
    body = dumps(request.to_json()).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Counting(asyncio.Protocol):
    """Counts token marks in what arrives; `ended` resolves at each response's end."""

    def __init__(self, end: bytes | None) -> None:
        self.end = end
        self.tokens = 0
        self.tail = b""  # the last bytes of the previous read: a mark may straddle reads
        self.ended: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def expect(self) -> asyncio.Future[None]:
        self.ended = asyncio.get_running_loop().create_future()
        self.tail = b""
        return self.ended

    def data_received(self, data: bytes) -> None:
        seen = self.tail + data  # the tail is shorter than a mark: none is counted twice
        self.tokens += seen.count(TOKEN_MARK)
        self.tail = seen[-TAIL:]
        # JSON lines and SSE events never start with CRLF, so a body's bytes can end in
        # CHUNKED_END only where the last chunk ends the response
        if self.end is not None and seen.endswith(self.end):
            self._end()

    def _end(self) -> None:
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ended is not None and not self.ended.done():
            self.ended.set_exception(ConnectionError("the server closed the connection"))


class WebSocketCounting(Counting):
    """A WebSocket's frames, told apart by their headers only (no extension is negotiated,
    as the harness's client negotiates none): every text message but the terminal one is a
    token (JSON framing sends no start message); a close frame ends the stream."""

    def __init__(self) -> None:
        super().__init__(None)
        self.buffer = b""
        self.upgraded = False
        self.messages = 0

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.upgraded:
            head, sep, buffer = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = head
                return
            self.upgraded = True
            self._end()  # the upgrade is complete
        at = 0
        while len(buffer) - at >= 2:
            opcode, length = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                length, start = int.from_bytes(buffer[at + 2 : at + 4]), at + 4
            elif length == 127:
                length, start = int.from_bytes(buffer[at + 2 : at + 10]), at + 10
            if len(buffer) < start + length:
                break
            if opcode == 0x1:
                self.messages += 1
            elif opcode == 0x8:
                self.tokens += max(self.messages - 1, 0)
                self._end()
            at = start + length
        self.buffer = buffer[at:]


def masked_text_frame(text: str) -> bytes:
    """A client's text frame, masked with a zero key (allowed: the payload stays as is)."""
    payload = text.encode()
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2)
    return b"\x81" + size + b"\0\0\0\0" + payload


async def _http_worker(
    host: str,
    port: int,
    path: str,
    requests: Sequence[GenerationRequest],
    counts: list[int],
    delay_s: float,
) -> None:
    await asyncio.sleep(delay_s)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(lambda: Counting(CHUNKED_END), host, port)
    try:
        for request in requests:
            ended = protocol.expect()
            transport.write(http_request(f"{host}:{port}", path, request))
            await ended
    finally:
        transport.close()
    counts.append(protocol.tokens)


async def _websocket_worker(
    host: str,
    port: int,
    path: str,
    requests: Sequence[GenerationRequest],
    counts: list[int],
    delay_s: float,
) -> None:
    await asyncio.sleep(delay_s)
    loop = asyncio.get_running_loop()
    for request in requests:
        transport, protocol = await loop.create_connection(WebSocketCounting, host, port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            upgraded = protocol.expect()
            transport.write(
                f"GET {path} HTTP/1.1\r\nhost: {host}:{port}\r\nupgrade: websocket\r\n"
                f"connection: Upgrade\r\nsec-websocket-key: {key}\r\n"
                "sec-websocket-version: 13\r\n\r\n".encode()
            )
            await upgraded
            ended = protocol.expect()
            transport.write(masked_text_frame(dumps(request.to_json())))
            await ended
        finally:
            transport.abort()
        counts.append(protocol.tokens)


async def run_raw(
    transport: str,
    base_urls: str | Sequence[str],
    requests: Sequence[GenerationRequest],
    concurrency: int,
    ramp_s: float = 0.0,
) -> RawRun:
    """`requests` through `concurrency` workers (closed loop), counted only; worker w talks
    to server w % N of `base_urls`, as the driver's shards do, and starts `w * ramp_s /
    workers` seconds in, as the driver's workers do (`run_jobs`)."""
    readable = TRANSPORTS.raw_readable()
    if transport not in readable:
        raise ScenarioError(
            f"the raw client reads {', '.join(readable)}, not {transport}: leave "
            "raw_client off for it"
        )
    entry = TRANSPORTS.get(transport)
    servers = []
    for url in [base_urls] if isinstance(base_urls, str) else base_urls:
        parts = urlsplit(url)
        servers.append((parts.hostname or "127.0.0.1", parts.port or 80))
    workers = max(1, min(concurrency, len(requests)))
    shares = [requests[w::workers] for w in range(workers)]
    counts: list[int] = []
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for w, share in enumerate(shares):
            host, port = servers[w % len(servers)]
            delay = w * ramp_s / workers
            if entry.raw_path is not None:
                path = entry.raw_path
                group.create_task(_http_worker(host, port, path, share, counts, delay))
            else:
                assert entry.upgrade_path is not None
                path = entry.upgrade_path
                group.create_task(_websocket_worker(host, port, path, share, counts, delay))
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    return RawRun(len(requests), sum(counts), cpu, wall)
