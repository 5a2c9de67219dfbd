"""WebSocket client (the `websockets` library): one connection per stream, the request as
the first message, one message per token, the framing's terminal message last."""

from __future__ import annotations

import socket
import time

import websockets
from websockets.asyncio.client import ClientConnection, connect

from clients.base import ClientSettings, StreamResult
from clients.errors import (
    ConnectFailed,
    HTTPStatusFailed,
    ProtocolViolation,
    StreamIncomplete,
    StreamTimedOut,
    TransportError,
)
from clients.http import head_bytes
from clients.wirebytes import connection_bytes
from wire.framing import get_framing
from wire.messages import GenerationRequest, WireError, dumps


def upgrade_head_bytes(ws: ClientConnection) -> int:
    """The HTTP upgrade request and its 101 response, as sent on the wire."""
    request, response = ws.request, ws.response
    assert request is not None and response is not None
    request_line = f"GET {request.path} HTTP/1.1"
    status_line = f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
    encode = [(k.encode(), v.encode()) for k, v in request.headers.raw_items()]
    answer = [(k.encode(), v.encode()) for k, v in response.headers.raw_items()]
    return head_bytes(request_line, encode) + head_bytes(status_line, answer)


class WebSocketClient:
    transport = "websocket"

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.framing = get_framing(settings.framing)
        self.url = settings.base_url.replace("http://", "ws://", 1).rstrip("/") + "/v1/ws"

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult(self.transport, request.stream_id or "", scheduled_ns)
        try:
            await self._run(request, result)
        except TransportError as exc:
            result.fail(exc)
        return result

    async def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        probe: socket.socket | None = None
        try:
            async with connect(
                self.url,
                open_timeout=10,
                ping_interval=None,  # keep-alive pings would count as transport bytes
                max_size=None,
                compression=None,  # like the HTTP transports: no compression unless asked
                proxy=None,
            ) as ws:
                result.requests += 1  # the upgrade request
                result.header_bytes += upgrade_head_bytes(ws)
                # A duplicate descriptor keeps the counters readable after the library
                # closes the connection, so the close handshake is counted too.
                probe = ws.transport.get_extra_info("socket").dup()
                await ws.send(dumps({**request.to_json(), "framing": self.framing.name}))
                await self._receive(ws, result)
        except websockets.InvalidStatus as exc:
            raise HTTPStatusFailed(f"WebSocket upgrade refused: {exc}") from exc
        except (OSError, websockets.InvalidHandshake) as exc:
            raise ConnectFailed(f"cannot open WebSocket: {exc}") from exc
        except TimeoutError as exc:
            raise StreamTimedOut("WebSocket timed out") from exc
        except websockets.ConnectionClosedError as exc:
            raise StreamIncomplete(f"WebSocket closed before the end: {exc}") from exc
        except WireError as exc:
            raise ProtocolViolation(str(exc)) from exc
        finally:
            if probe is not None:
                with probe:
                    result.add_bytes(connection_bytes(probe))

    async def _receive(self, ws: ClientConnection, result: StreamResult) -> None:
        async for message in ws:
            now = time.perf_counter_ns()
            if not isinstance(message, str):
                raise ProtocolViolation("expected text messages, got a binary one")
            if result.take([self.framing.decode(message)], now):
                return
        raise StreamIncomplete("the server closed the WebSocket without a terminal message")

    async def aclose(self) -> None:
        return None
