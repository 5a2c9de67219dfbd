"""What the httpx-based clients share, async and sync alike: the I/O-free description of
each exchange (`HTTPCall`, `HTTPStream`), error mapping, byte metering, status checks and
the decoding of a streamed response body (`BodyReader`). Thin: parsing lives in `wire/`.
The async clients live here and in `clients/polling.py`; the blocking ones in `clients/sync.py`.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from clients.base import ClientSettings, StreamResult, failures_recorded
from clients.wirebytes import ByteMeter
from errors import (
    ConnectFailed,
    HTTPStatusFailed,
    ProtocolError,
    ProtocolViolation,
    StreamIncomplete,
    StreamTimedOut,
    TransportError,
)
from wire.framing import Framing, get_framing
from wire.messages import GenerationRequest


class PayloadDecoder(Protocol):
    def feed(self, data: bytes) -> list[str]: ...
    def close(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class HTTPCall:
    """One HTTP request, as both the async and the sync clients send it."""

    method: str
    url: str
    params: dict[str, str | int] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expected_status: int = 200

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `httpx.Client.request`/`.stream` (and their async twins)."""
        return {"params": self.params, "json": self.json, "headers": self.headers}


@dataclass(frozen=True, slots=True)
class HTTPStream:
    """A transport whose stream is one streamed HTTP response (SSE, chunked), without I/O:
    the request it sends and how its body decodes."""

    transport: str
    path: str
    media_type: str
    decoder: Callable[[], PayloadDecoder]
    headers: tuple[tuple[str, str], ...] = ()

    def call(self, framing: Framing, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(
            "POST",
            self.path,
            params={"framing": framing.name},
            json=request.to_json(),
            headers={"accept": self.media_type, **dict(self.headers)},
        )


def http_client_options(settings: ClientSettings) -> dict[str, Any]:
    """Pool and timeouts of one client, sized so no stream waits for a connection."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )
    return {
        "base_url": settings.base_url,
        "limits": limits,
        "timeout": httpx.Timeout(settings.stream_timeout_s, connect=10.0),
        "trust_env": False,  # never route loopback benchmarks through an environment proxy
    }


def make_http_client(settings: ClientSettings) -> httpx.AsyncClient:
    """One pooled client per shard of streams."""
    return httpx.AsyncClient(**http_client_options(settings))


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


def charge_bytes(meter: ByteMeter, result: StreamResult, response: httpx.Response) -> None:
    """The bytes the exchange's connection moved since the meter last looked at it. A
    connection the library has already closed (a read that failed, was cancelled or was
    killed mid-body) has no counters left to read: nothing is charged then."""
    sock = socket_of(response)
    if sock.fileno() != -1:
        result.add_bytes(meter.charge(sock))


def count_exchange(result: StreamResult, response: httpx.Response) -> None:
    """An exchange's request and its heads, as soon as the response head is in."""
    result.requests += 1
    result.header_bytes += exchange_head_bytes(response)


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Map httpx and framing exceptions to the client error tree, at the boundary.
    A plain context manager, so async and sync clients share it (`with`, not `async with`)."""
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
    except (ProtocolError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(str(exc)) from exc


def status_failure(response: httpx.Response, body: bytes) -> HTTPStatusFailed:
    text = body[:300].decode(errors="replace")
    return HTTPStatusFailed(f"HTTP {response.status_code} from {response.url.path}: {text}")


async def check_status(response: httpx.Response, expected: int = 200) -> None:
    if response.status_code != expected:
        raise status_failure(response, await response.aread())


def require_end(result: StreamResult) -> None:
    if result.end_ns is None:
        raise StreamIncomplete("the response ended without a terminal message")


class BodyReader:
    """One streamed response body into a `StreamResult`, network read by network read.
    `feed` gets each read's bytes with the stamp taken as they arrived."""

    def __init__(
        self, kind: HTTPStream, framing: Framing, result: StreamResult, content_type: str
    ) -> None:
        if not content_type.startswith(kind.media_type):
            raise ProtocolViolation(
                f"expected Content-Type {kind.media_type}, got {content_type!r}"
            )
        self._decoder = kind.decoder()
        self._framing = framing
        self._result = result

    def feed(self, raw: bytes, now_ns: int) -> None:
        payloads = self._decoder.feed(raw)
        if payloads:
            self._result.take([self._framing.decode(p) for p in payloads], now_ns)

    def close(self) -> None:
        """End of body: what the decoder still holds (stamped now)."""
        tail = self._decoder.close()
        if tail:
            self._result.take([self._framing.decode(p) for p in tail])


class HTTPStreamingClient:
    """The async client of an `HTTPStream` transport; subclasses name their `kind`."""

    kind: HTTPStream

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.transport = self.kind.transport
        self.framing: Framing = get_framing(settings.framing)
        self.http = make_http_client(settings)
        self.meter = ByteMeter()

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result), mapped_errors():
            await self._read(request, result)
        return result

    async def _read(self, request: GenerationRequest, result: StreamResult) -> None:
        call = self.kind.call(self.framing, request)
        async with self.http.stream(call.method, call.url, **call.kwargs()) as response:
            count_exchange(result, response)
            try:
                await check_status(response, call.expected_status)
                body = BodyReader(
                    self.kind, self.framing, result, response.headers.get("content-type", "")
                )
                async for raw in response.aiter_raw():
                    body.feed(raw, time.perf_counter_ns())
                body.close()
            finally:
                charge_bytes(self.meter, result, response)
        require_end(result)

    async def aclose(self) -> None:
        await self.http.aclose()
