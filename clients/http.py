"""What the httpx-based clients share: one pooled client, error mapping, byte metering and
the read loop for a streamed response body. Thin: parsing lives in `wire/`."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

import httpx

from clients.base import ClientSettings, StreamResult
from clients.errors import (
    ConnectFailed,
    HTTPStatusFailed,
    ProtocolViolation,
    StreamIncomplete,
    StreamTimedOut,
    TransportError,
)
from clients.wirebytes import ByteMeter
from wire.framing import Framing, get_framing
from wire.messages import WireError


class PayloadDecoder(Protocol):
    def feed(self, data: bytes) -> list[str]: ...
    def close(self) -> list[str]: ...


def make_http_client(settings: ClientSettings) -> httpx.AsyncClient:
    """One pooled client per shard of streams, sized so no stream waits for a connection."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )
    return httpx.AsyncClient(
        base_url=settings.base_url,
        limits=limits,
        timeout=httpx.Timeout(settings.stream_timeout_s, connect=10.0),
        trust_env=False,  # never route loopback benchmarks through an environment proxy
    )


def head_bytes(start_line: str, headers: Iterable[tuple[bytes, bytes]]) -> int:
    """Size of an HTTP/1.1 message head as serialised on the wire: start line, one
    `name: value` line per header, and the blank line. Reconstructed from what the
    libraries parsed, which is exact for HTTP/1.1 (header order and case do not change sizes)."""
    return len(start_line) + 2 + sum(len(k) + 2 + len(v) + 2 for k, v in headers) + 2


def exchange_head_bytes(response: httpx.Response) -> int:
    """Request head plus response head of one HTTP exchange."""
    request = response.request
    target = request.url.raw_path.decode()
    request_line = f"{request.method} {target} {response.http_version}"
    status_line = f"{response.http_version} {response.status_code} {response.reason_phrase}"
    return head_bytes(request_line, request.headers.raw) + head_bytes(
        status_line, response.headers.raw
    )


def socket_of(response: httpx.Response) -> socket.socket:
    sock = response.extensions["network_stream"].get_extra_info("socket")
    if sock is None:
        raise TransportError("the HTTP connection exposes no socket to count bytes on")
    return sock  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def mapped_errors() -> AsyncIterator[None]:
    """Map httpx and framing exceptions to the client error tree, at the boundary."""
    try:
        yield
    except httpx.ConnectError as exc:
        raise ConnectFailed(f"cannot connect: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise StreamTimedOut(f"timed out: {type(exc).__name__}") from exc
    except httpx.RemoteProtocolError as exc:
        raise StreamIncomplete(f"connection ended early: {exc}") from exc
    except httpx.HTTPError as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc
    except (WireError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(str(exc)) from exc


async def check_status(response: httpx.Response, expected: int = 200) -> None:
    if response.status_code != expected:
        body = (await response.aread())[:300].decode(errors="replace")
        raise HTTPStatusFailed(f"HTTP {response.status_code} from {response.url.path}: {body}")


class HTTPStreamingClient:
    """A client whose stream is one streamed HTTP response (SSE and chunked)."""

    transport = "http"
    path = "/"
    media_type = ""

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.framing: Framing = get_framing(settings.framing)
        self.http = make_http_client(settings)
        self.meter = ByteMeter()

    def decoder(self) -> PayloadDecoder:
        raise NotImplementedError

    def request_headers(self) -> dict[str, str]:
        return {"accept": self.media_type}

    async def stream(self, request: Any, scheduled_ns: int) -> StreamResult:
        result = StreamResult(self.transport, request.stream_id or "", scheduled_ns)
        try:
            async with mapped_errors():
                await self._read(request, result)
        except TransportError as exc:
            result.fail(exc)
        return result

    async def _read(self, request: Any, result: StreamResult) -> None:
        async with self.http.stream(
            "POST",
            self.path,
            params={"framing": self.framing.name},
            json=request.to_json(),
            headers=self.request_headers(),
        ) as response:
            result.requests += 1
            result.header_bytes += exchange_head_bytes(response)
            try:
                await check_status(response)
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith(self.media_type):
                    raise ProtocolViolation(
                        f"expected Content-Type {self.media_type}, got {content_type!r}"
                    )
                decoder = self.decoder()
                async for raw in response.aiter_raw():
                    now = time.perf_counter_ns()
                    payloads = decoder.feed(raw)
                    if payloads:
                        result.take([self.framing.decode(p) for p in payloads], now)
                tail = decoder.close()
                if tail:
                    result.take([self.framing.decode(p) for p in tail])
            finally:
                result.add_bytes(self.meter.charge(socket_of(response)))
        if result.end_ns is None:
            raise StreamIncomplete("the response ended without a terminal message")

    async def aclose(self) -> None:
        await self.http.aclose()
