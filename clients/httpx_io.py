"""What both drivers share of httpx: client options, error mapping and the accounting of
each HTTP exchange (requests, head bytes, wire bytes). Thin: no transport logic here."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import httpx

from clients.exchange import ExchangeLogic, HTTPCall, Reply
from clients.interface import ClientSettings, StreamResult, bearer_headers
from clients.wirebytes import ByteMeter
from errors import ConnectFailed, StreamIncomplete, StreamTimedOut, TransportError, UsageError


def http_client_options(settings: ClientSettings, *, asynchronous: bool) -> dict[str, Any]:
    """Pool and timeouts of one client, sized so no stream waits for a connection. HTTP/2
    to a plain `http://` URL is cleartext h2c by prior knowledge (no HTTP/1.1 to fall back
    to); HTTP/3 is a transport of the asyncio driver's own (`clients.h3_io`)."""
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
    )
    options = {
        "base_url": settings.base_url,
        "limits": limits,
        "timeout": httpx.Timeout(settings.stream_timeout_s, connect=10.0),
        "headers": bearer_headers(settings.token),
        "http2": settings.http2,
        "http1": not (settings.http2 and settings.base_url.startswith("http://")),
        "verify": tls_context(settings),
        "trust_env": False,  # never route loopback benchmarks through an environment proxy
    }
    if settings.http3:
        if not asynchronous:
            raise UsageError(
                "HTTP/3 is read by the asyncio driver only; the blocking clients (locust) "
                "speak HTTP/1.1 and HTTP/2"
            )
        from clients.h3_io import H3Transport  # aioquic, only when HTTP/3 is asked for

        options["transport"] = H3Transport(settings)
    return options


def tls_context(settings: ClientSettings) -> ssl.SSLContext | bool:
    """Certificate checks as usual; a path's self-signed certificate is trusted by name."""
    if settings.ca_file is None:
        return True
    return ssl.create_default_context(cafile=settings.ca_file)


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


def charge_bytes(meter: ByteMeter | None, result: StreamResult, response: httpx.Response) -> None:
    """The bytes the exchange's connection moved since the meter last looked at it. A
    connection the library has already closed (a read that failed, was cancelled or was
    killed mid-body) has no counters left to read: nothing is charged then; nor without a
    meter (the connection is charged from a probe of its own)."""
    quic = response.extensions.get("quic_counters")  # HTTP/3: the QUIC connection's own
    if quic is not None:
        result.add_bytes(quic.charge())
        base = response.extensions.pop("losses_at_request", None)  # once per exchange
        if base is not None:  # reordered packets can fill a gap later: never below 0
            result.packets_lost = (result.packets_lost or 0) + max(0, quic.lost - base)
        return
    if meter is None:
        return
    network = response.extensions.get("network_stream")
    sock = None if network is None else network.get_extra_info("socket")
    if sock is not None and sock.fileno() != -1:
        result.add_bytes(meter.charge(sock))


def count_exchange(result: StreamResult, response: httpx.Response, meter: ByteMeter | None) -> None:
    """An exchange's request and its heads, as soon as the response head is in (and its
    connection, when the meter has not seen it before; without a meter, whoever probes the
    connection counts it)."""
    network = response.extensions.get("network_stream")
    sock = None if network is None else network.get_extra_info("socket")
    if meter is not None and sock is not None and sock.fileno() != -1 and meter.is_new(sock):
        result.connections += 1
    quic = response.extensions.get("quic_counters")
    if quic is not None and not quic.opened:  # a new QUIC connection, begun with TLS
        quic.opened = True
        result.connections += 1
        result.tls_handshakes += 1
    result.requests += 1
    result.header_bytes += exchange_head_bytes(response)
    result.http_version = response.http_version


def reply_of(response: httpx.Response, body: bytes, now_ns: int) -> Reply:
    return Reply(response.status_code, response.headers, body, response.url.path, now_ns)


def unexpected(response: httpx.Response, call: HTTPCall) -> bool:
    """A streamed response whose status is not the expected one is read whole, to explain."""
    return response.status_code != call.expected_status


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Map httpx exceptions to the error tree, at the boundary. A plain context manager,
    so both drivers share it (`with`, not `async with`)."""
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


def complete_exchange(
    meter: ByteMeter | None, result: StreamResult, response: httpx.Response, now_ns: int
) -> Reply:
    """A fetched exchange, body read: count it, charge its bytes, hand back the reply."""
    count_exchange(result, response, meter)
    charge_bytes(meter, result, response)
    return reply_of(response, response.content, now_ns)


Pool = TypeVar("Pool", httpx.AsyncClient, httpx.Client)


class PooledClient(Generic[Pool]):
    """What both drivers' clients hold: the transport's name and exchange logic, the
    settings, the byte meter and one pooled httpx client made on first use (WebSocket
    streams open connections of their own and never make one)."""

    def __init__(
        self,
        transport: str,
        logic: ExchangeLogic,
        settings: ClientSettings,
        pool: Callable[..., Pool],
    ) -> None:
        self.transport = transport
        self.logic = logic
        self.settings = settings
        self.meter = ByteMeter()
        self._make_pool: Callable[..., Pool] = pool
        self._pool: Pool | None = None

    @property
    def http(self) -> Pool:
        if self._pool is None:
            asynchronous = self._make_pool is httpx.AsyncClient
            self._pool = self._make_pool(
                **http_client_options(self.settings, asynchronous=asynchronous)
            )
        return self._pool
