"""The asyncio driver: runs any transport's exchange logic (`clients.exchange`) with
httpx's `AsyncClient` and the `websockets` asyncio client. The benchmark's driver uses it.

Stamps (`time.perf_counter_ns()`, CLOCK_MONOTONIC on Linux, shared with the server
process) are taken as each network read returns, before anything is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from types import TracebackType

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from clients.exchange import (
    HANDLERS,
    Arrival,
    Exchange,
    ExchangeLogic,
    Fetch,
    OpenStream,
    OpenWebSocket,
    ReadBody,
    ReceiveMessage,
    Reply,
    SendText,
    Sleep,
    Steps,
)
from clients.httpx_io import (
    charge_bytes,
    complete_exchange,
    count_exchange,
    http_client_options,
    mapped_errors,
    reply_of,
    unexpected,
)
from clients.interface import ClientSettings, StreamResult, failures_recorded
from clients.websockets_io import (
    CONNECT_OPTIONS,
    charge_probe,
    count_upgrade,
    mapped_ws_errors,
    ws_url,
)
from clients.wirebytes import ByteMeter
from wire.messages import GenerationRequest


class AsyncStreamClient:
    """Any transport's asyncio client: its exchange logic over one pooled httpx client (made
    on first use; WebSocket streams open their own connections)."""

    def __init__(self, transport: str, logic: ExchangeLogic, settings: ClientSettings) -> None:
        self.transport = transport
        self.logic = logic
        self.settings = settings
        self.meter = ByteMeter()
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(**http_client_options(self.settings))
        return self._http

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result):
            async with AsyncIO(self, result) as io:
                await io.run(self.logic(self.settings, request, result))
        return result

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


class AsyncIO:
    """Performs one stream's effects; what it opened is closed (and charged) at exit."""

    def __init__(self, client: AsyncStreamClient, result: StreamResult) -> None:
        self.client = client
        self.result = result
        self.stack = contextlib.AsyncExitStack()
        self.reads: AsyncIterator[bytes] | None = None
        self.ws: ClientConnection | None = None
        self.probe: socket.socket | None = None

    async def __aenter__(self) -> AsyncIO:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with mapped_errors(), mapped_ws_errors():
            await self.stack.aclose()

    async def run(self, exchange: Exchange) -> None:
        steps, reply = Steps(exchange), None
        try:
            while (effect := steps.send(reply)) is not None:
                reply = await getattr(self, HANDLERS[type(effect)])(effect)
        finally:
            steps.close()

    async def fetch(self, effect: Fetch) -> Reply:
        call = effect.call
        with mapped_errors():
            response = await self.client.http.request(call.method, call.url, **call.kwargs())
        return complete_exchange(self.client.meter, self.result, response, time.perf_counter_ns())

    async def open_stream(self, effect: OpenStream) -> Reply:
        call = effect.call
        opening = self.client.http.stream(call.method, call.url, **call.kwargs())
        with mapped_errors():
            response = await self.stack.enter_async_context(opening)
            self.stack.callback(charge_bytes, self.client.meter, self.result, response)
            count_exchange(self.result, response)
            body = await response.aread() if unexpected(response, call) else b""
        self.reads = response.aiter_raw()
        return reply_of(response, body, time.perf_counter_ns())

    async def read_body(self, effect: ReadBody) -> Arrival | None:
        assert self.reads is not None, "ReadBody before OpenStream"
        with mapped_errors():
            data = await anext(self.reads, None)
        return None if data is None else Arrival(data, time.perf_counter_ns())

    async def sleep(self, effect: Sleep) -> None:
        await asyncio.sleep(effect.seconds)

    async def open_websocket(self, effect: OpenWebSocket) -> None:
        self.stack.callback(lambda: charge_probe(self.result, self.probe))  # after the close
        url = ws_url(self.client.settings.base_url, effect.path)
        with mapped_ws_errors():
            self.ws = await self.stack.enter_async_context(connect(url, **CONNECT_OPTIONS))
        self.probe = count_upgrade(self.result, self.ws, self.ws.transport.get_extra_info("socket"))

    async def send_text(self, effect: SendText) -> None:
        assert self.ws is not None, "SendText before OpenWebSocket"
        with mapped_ws_errors():
            await self.ws.send(effect.text)

    async def receive(self, effect: ReceiveMessage) -> Arrival | None:
        assert self.ws is not None, "ReceiveMessage before OpenWebSocket"
        with mapped_ws_errors(), contextlib.suppress(websockets.ConnectionClosedOK):
            return Arrival(await self.ws.recv(), time.perf_counter_ns())
        return None
