"""What both drivers share of the `websockets` library: connection options, the upgrade's
byte count, the probe that keeps a closed connection's counters readable, error mapping."""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import Any, Protocol

import websockets
from websockets.http11 import Request, Response

from clients.httpx_io import head_bytes
from clients.interface import ClientSettings, StreamResult, bearer_headers
from clients.wirebytes import connection_bytes
from errors import ConnectFailed, HTTPStatusFailed, StreamIncomplete, StreamTimedOut

CONNECT_OPTIONS: dict[str, Any] = {
    "open_timeout": 10,
    "ping_interval": None,  # keep-alive pings would count as transport bytes
    "max_size": None,
    "compression": None,  # like the HTTP transports: no compression unless asked
    "proxy": None,
}


def connect_options(settings: ClientSettings) -> dict[str, Any]:
    """`CONNECT_OPTIONS`, plus the server token's header on the upgrade when there is one,
    and a path's self-signed certificate to trust over TLS (wss://)."""
    options = dict(CONNECT_OPTIONS)
    headers = bearer_headers(settings.token)
    if headers:
        options["additional_headers"] = headers
    if settings.ca_file is not None and settings.base_url.startswith("https://"):
        options["ssl"] = ssl.create_default_context(cafile=settings.ca_file)
    return options


class Handshake(Protocol):
    """What both websockets connection classes (asyncio and sync) expose of the upgrade."""

    request: Request | None
    response: Response | None


def ws_url(base_url: str, path: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest.rstrip("/") + path


def upgrade_head_bytes(ws: Handshake) -> int:
    """The HTTP upgrade request and its 101 response, as sent on the wire."""
    request, response = ws.request, ws.response
    assert request is not None and response is not None
    request_line = f"GET {request.path} HTTP/1.1"
    status_line = f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
    encode = [(k.encode(), v.encode()) for k, v in request.headers.raw_items()]
    answer = [(k.encode(), v.encode()) for k, v in response.headers.raw_items()]
    return head_bytes(request_line, encode) + head_bytes(status_line, answer)


def count_upgrade(result: StreamResult, ws: Handshake, sock: socket.socket) -> socket.socket:
    """Count the upgrade; return a duplicate descriptor of the connection (the probe), which
    keeps its counters readable after the library closes it, so the close handshake counts."""
    result.requests += 1
    result.header_bytes += upgrade_head_bytes(ws)
    return sock.dup()


def charge_probes(result: StreamResult, probes: list[socket.socket]) -> None:
    """Each WebSocket connection's whole-life bytes, read from its probe."""
    for probe in probes:
        with probe:
            result.add_bytes(connection_bytes(probe))


@contextlib.contextmanager
def mapped_ws_errors() -> Iterator[None]:
    """Map websockets exceptions to the error tree, at the boundary."""
    try:
        yield
    except websockets.InvalidStatus as exc:
        raise HTTPStatusFailed(f"WebSocket upgrade refused: {exc}") from exc
    except TimeoutError as exc:  # before OSError, of which it is a subclass
        raise StreamTimedOut("WebSocket timed out") from exc
    except (OSError, websockets.InvalidHandshake) as exc:
        raise ConnectFailed(f"cannot open WebSocket: {exc}") from exc
    except websockets.ConnectionClosedError as exc:
        raise StreamIncomplete(f"WebSocket closed before the end: {exc}") from exc
