"""WebSocket client (the `websockets` library): one connection per stream, the request as
the first message, one message per token, the framing's terminal message last.

The connection options, the upgrade's byte count, the message handling and the error mapping
are shared with the blocking client in `clients/sync.py` (websockets' sync API)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.http11 import Request, Response

from clients.base import ClientSettings, StreamResult, failures_recorded
from clients.http import head_bytes
from clients.wirebytes import connection_bytes
from errors import (
    ConnectFailed,
    HTTPStatusFailed,
    ProtocolError,
    ProtocolViolation,
    StreamIncomplete,
    StreamTimedOut,
)
from wire.framing import Framing, get_framing
from wire.messages import GenerationRequest, dumps

CONNECT_OPTIONS: dict[str, Any] = {
    "open_timeout": 10,
    "ping_interval": None,  # keep-alive pings would count as transport bytes
    "max_size": None,
    "compression": None,  # like the HTTP transports: no compression unless asked
    "proxy": None,
}


class Handshake(Protocol):
    """What both websockets connection classes (asyncio and sync) expose of the upgrade."""

    request: Request | None
    response: Response | None


def ws_url(settings: ClientSettings) -> str:
    return settings.base_url.replace("http://", "ws://", 1).rstrip("/") + "/v1/ws"


def upgrade_head_bytes(ws: Handshake) -> int:
    """The HTTP upgrade request and its 101 response, as sent on the wire."""
    request, response = ws.request, ws.response
    assert request is not None and response is not None
    request_line = f"GET {request.path} HTTP/1.1"
    status_line = f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
    encode = [(k.encode(), v.encode()) for k, v in request.headers.raw_items()]
    answer = [(k.encode(), v.encode()) for k, v in response.headers.raw_items()]
    return head_bytes(request_line, encode) + head_bytes(status_line, answer)


def first_message(framing: Framing, request: GenerationRequest) -> str:
    return dumps({**request.to_json(), "framing": framing.name})


def take_message(result: StreamResult, framing: Framing, message: object, now_ns: int) -> bool:
    """Record one received message; True once it was the terminal one."""
    if not isinstance(message, str):
        raise ProtocolViolation("expected text messages, got a binary one")
    return result.take([framing.decode(message)], now_ns)


def closed_early() -> StreamIncomplete:
    return StreamIncomplete("the server closed the WebSocket without a terminal message")


def charge_probe(result: StreamResult, probe: socket.socket | None) -> None:
    """A duplicate descriptor keeps the counters readable after the library closes the
    connection, so the close handshake is counted too."""
    if probe is not None:
        with probe:
            result.add_bytes(connection_bytes(probe))


@contextlib.contextmanager
def mapped_ws_errors() -> Iterator[None]:
    """Map websockets and framing exceptions to the client error tree, at the boundary."""
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
    except ProtocolError as exc:
        raise ProtocolViolation(str(exc)) from exc


class WebSocketClient:
    transport = "websocket"

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.framing = get_framing(settings.framing)
        self.url = ws_url(settings)

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result):
            await self._run(request, result)
        return result

    async def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        probe: socket.socket | None = None
        try:
            with mapped_ws_errors():
                async with connect(self.url, **CONNECT_OPTIONS) as ws:
                    result.requests += 1  # the upgrade request
                    result.header_bytes += upgrade_head_bytes(ws)
                    probe = ws.transport.get_extra_info("socket").dup()
                    await ws.send(first_message(self.framing, request))
                    await self._receive(ws, result)
        finally:
            charge_probe(result, probe)

    async def _receive(self, ws: ClientConnection, result: StreamResult) -> None:
        async for message in ws:
            if take_message(result, self.framing, message, time.perf_counter_ns()):
                return
        raise closed_early()

    async def aclose(self) -> None:
        return None
