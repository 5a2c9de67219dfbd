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
from typing import cast

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK

from clients import exchange as effects
from clients import h1_io, httpx_io, websockets_io, ws_io, wt_io
from clients.callbacks_asyncio import AsyncMailbox, AsyncReceiver
from clients.callbacks_http import count_callback
from clients.interface import ClientSettings, StreamResult, Turn, failures_recorded
from clients.sessions import WSSession
from clients.wirebytes import ByteMeter
from wire.messages import GenerationRequest


class AsyncStreamClient(httpx_io.PooledClient[httpx.AsyncClient]):
    """Any transport's asyncio client: its exchange logic over one pooled httpx client (made
    on first use; WebSocket streams open their own connections)."""

    def __init__(
        self, transport: str, logic: effects.ExchangeLogic, settings: ClientSettings
    ) -> None:
        super().__init__(transport, logic, settings, httpx.AsyncClient)
        self._receiver: AsyncReceiver | None = None
        # plain HTTP/1.1: the lean clients (clients.h1_io, clients.ws_io); TLS and HTTP/2:
        # httpx and the websockets library
        self.h1 = h1_io.H1Pool(settings) if settings.lean_http and h1_io.usable(settings) else None
        self.lean_ws = settings.lean_http and ws_io.usable(settings)
        self.ws_sessions: dict[str, WSSession] = {}  # conversations' open WebSockets
        self.wt_closing: set[asyncio.Task[None]] = set()  # WebTransport's closing periods

    async def callback_receiver(self) -> AsyncReceiver:
        """This client's callback receiver, started on first use."""
        if self._receiver is None:
            self._receiver = AsyncReceiver()
        await self._receiver.start()
        return self._receiver

    async def stream(
        self, request: GenerationRequest, scheduled_ns: int, turn: Turn | None = None
    ) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        result.turn = turn
        with failures_recorded(result):
            async with AsyncIO(self, result) as io:
                await io.run(self.logic(self.settings, request, result))
        if self.settings.base_url.startswith("https://"):  # every connection begins with TLS
            result.tls_handshakes = result.connections
        return result

    async def aclose(self) -> None:
        for session in self.ws_sessions.values():
            await session.close(StreamResult(self.transport, "", 0))
        self.ws_sessions.clear()
        if self.h1 is not None:
            self.h1.close()
        if self._pool is not None:
            await self._pool.aclose()
        if self._receiver is not None:
            await self._receiver.aclose()
        if self.wt_closing:
            await asyncio.gather(*self.wt_closing)


class AsyncIO:
    """Performs one stream's effects; what it opened is closed (and charged) at exit."""

    def __init__(self, client: AsyncStreamClient, result: StreamResult) -> None:
        self.client = client
        self.result = result
        self.stack = contextlib.AsyncExitStack()
        self.response: httpx.Response | None = None  # the open streamed response
        self.reads: AsyncIterator[bytes] | None = None
        self.ws: ClientConnection | None = None
        self.probes: list[socket.socket] = []  # one per WebSocket connection (or per request
        self.probing = False  # of a turn without keep-alive over httpx), charged at exit
        self.mailbox: AsyncMailbox | None = None  # this stream's callbacks
        self.h1: h1_io.H1Connection | None = None  # the lean client's open streamed response
        self.wsc: ws_io.WSConnection | None = None  # the lean client's open WebSocket
        self.wt: wt_io.WTConnection | None = None  # the open WebTransport stream

    async def __aenter__(self) -> AsyncIO:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with httpx_io.mapped_errors(), websockets_io.mapped_ws_errors():
            await self.stack.aclose()

    async def run(self, exchange: effects.Exchange) -> None:
        steps = effects.Steps(exchange)
        try:
            effect = steps.send(None)
            while effect is not None:
                if self.h1 is not None and isinstance(effect, effects.ReadBody):
                    # the lean clients step the exchange read by read themselves
                    effect = await self.h1.pump(steps, self._h1_body_ended)
                    continue
                if self.wsc is not None and isinstance(effect, effects.ReceiveMessage):
                    effect = await self.wsc.pump(steps)
                    continue
                reply = await getattr(self, effects.HANDLERS[type(effect)])(effect)
                effect = steps.send(reply)
        finally:
            steps.close()

    def _h1_body_ended(self) -> None:
        assert self.h1 is not None and self.client.h1 is not None
        h1_io.end_stream(self.client.h1, self.h1, self.result)
        self.h1 = None

    def _h1_exit(self, conn: h1_io.H1Connection) -> None:
        if conn is self.h1:  # left mid-body (an error, a timeout): the connection goes
            assert self.client.h1 is not None  # the connection came from its pool
            self.client.h1.charge(conn, self.result)
            conn.abort()
            self.h1 = None

    @property
    def closing(self) -> bool:
        """A conversation's turn without keep-alive: a new connection for every request."""
        turn = self.result.turn
        return turn is not None and not turn.keepalive

    @property
    def meter(self) -> ByteMeter | None:
        """The pooled client's byte meter; None without keep-alive, where each connection's
        whole-life bytes are charged from its probe instead (`http`)."""
        return None if self.closing else self.client.meter

    async def http(self) -> httpx.AsyncClient:
        """The pooled httpx client; without keep-alive, a client of the request's own (HTTP/2
        has no `Connection: close`), closed when the stream ends. Its one connection closes
        with its response, so it is counted, and its bytes read from a duplicate of its
        socket (a probe), as its response head comes in."""
        if not self.closing:
            return self.client.http
        options = httpx_io.http_client_options(self.client.settings, asynchronous=True)
        options["limits"] = httpx.Limits(max_connections=1, max_keepalive_connections=0)
        options["event_hooks"] = {"response": [self._probe_connection]}
        if not self.probing:  # charged once the clients below have closed (last in, first out)
            self.probing = True
            self.stack.callback(websockets_io.charge_probes, self.result, self.probes)
        return await self.stack.enter_async_context(httpx.AsyncClient(**options))

    async def _probe_connection(self, response: httpx.Response) -> None:
        network = response.extensions.get("network_stream")
        sock = None if network is None else network.get_extra_info("socket")
        if sock is not None:
            self.result.connections += 1
            self.probes.append(sock.dup())

    async def fetch(self, effect: effects.Fetch) -> effects.Reply:
        call = effect.call
        if self.client.h1 is not None:
            call = h1_io.closing(call) if self.closing else call
            return await h1_io.fetch(self.client.h1, self.result, call, self.closing)
        http = await self.http()
        with httpx_io.mapped_errors():
            response = await http.request(call.method, call.url, **call.kwargs())
        return httpx_io.complete_exchange(self.meter, self.result, response, time.perf_counter_ns())

    async def open_stream(self, effect: effects.OpenStream) -> effects.Reply:
        call = effect.call
        if self.client.h1 is not None:
            call = h1_io.closing(call) if self.closing else call
            conn, reply = await h1_io.open_stream(self.client.h1, self.result, call, self.closing)
            self.h1 = conn
            self.stack.callback(self._h1_exit, conn)
            return reply
        opening = (await self.http()).stream(call.method, call.url, **call.kwargs())
        with httpx_io.mapped_errors():
            response = await self.stack.enter_async_context(opening)
            self.stack.callback(httpx_io.charge_bytes, self.meter, self.result, response)
            httpx_io.count_exchange(self.result, response, self.meter)
            body = await response.aread() if httpx_io.unexpected(response, call) else b""
        # the raw body, read as `aiter_raw` reads it, but not closed at its end: the end is
        # charged first, while a connection the peer closes (`Connection: close`) still has
        # its counters (closing it would release it, and the pool would close the socket);
        # an AsyncClient's response stream is an asynchronous one
        stream = cast(httpx.AsyncByteStream, response.stream)
        self.response, self.reads = response, aiter(stream)
        return httpx_io.reply_of(response, body, time.perf_counter_ns())

    async def read_body(self, effect: effects.ReadBody) -> effects.Arrival | None:
        assert self.reads is not None, "ReadBody before OpenStream"
        with httpx_io.mapped_errors():
            data = await anext(self.reads, None)
            while data == b"":  # aiter_raw skips empty pieces too
                data = await anext(self.reads, None)
        if data is None:
            assert self.response is not None
            httpx_io.charge_bytes(self.meter, self.result, self.response)
            return None
        return effects.Arrival(data, time.perf_counter_ns())

    async def sleep(self, effect: effects.Sleep) -> None:
        await asyncio.sleep(effect.seconds)

    async def open_websocket(self, effect: effects.OpenWebSocket) -> None:
        turn = self.result.turn
        if turn is not None:
            await self._open_session(effect, turn)
            return
        self.result.connections += 1
        if self.client.lean_ws:
            self.wsc = await ws_io.open_websocket(self.client.settings, effect.path, self.result)
            self.stack.push_async_callback(ws_io.close_and_charge, self.wsc, self.result)
            return
        if not self.probes:  # charged after every close handshake (the stack unwinds last-in first)
            self.stack.callback(websockets_io.charge_probes, self.result, self.probes)
        url = websockets_io.ws_url(self.client.settings.base_url, effect.path)
        with websockets_io.mapped_ws_errors():
            self.ws = await self.stack.enter_async_context(
                connect(url, **websockets_io.connect_options(self.client.settings))
            )
        sock = self.ws.transport.get_extra_info("socket")
        self.probes.append(websockets_io.count_upgrade(self.result, self.ws, sock))

    async def _open_session(self, effect: effects.OpenWebSocket, turn: Turn) -> None:
        """A conversation's WebSocket: the one its previous turn left open, else a new one;
        kept open after this turn unless it is the last or it failed."""
        sessions = self.client.ws_sessions
        session = sessions.pop(turn.conversation, None)
        if session is not None and not session.usable:
            await session.close(self.result)
            session = None
        if session is None:
            session = WSSession()
            self.result.connections += 1
            if self.client.lean_ws:
                session.lean = await ws_io.open_websocket(
                    self.client.settings, effect.path, self.result
                )
            else:
                url = websockets_io.ws_url(self.client.settings.base_url, effect.path)
                with websockets_io.mapped_ws_errors():
                    ws = await connect(url, **websockets_io.connect_options(self.client.settings))
                session.library = ws
                sock = ws.transport.get_extra_info("socket")
                session.probe = websockets_io.count_upgrade(self.result, ws, sock)
        self.wsc, self.ws = session.lean, session.library
        self.stack.push_async_callback(self._end_turn, session, turn)

    async def _end_turn(self, session: WSSession, turn: Turn) -> None:
        if turn.last or self.result.end_ns is None or self.result.error is not None:
            await session.close(self.result)
        else:
            session.charge(self.result)
            self.client.ws_sessions[turn.conversation] = session
        self.wsc = self.ws = None

    async def open_webtransport(self, effect: effects.OpenWebTransport) -> None:
        self.wt = await wt_io.open_webtransport(self.client.settings, effect.path, self.result)
        self.stack.push_async_callback(self._close_webtransport, self.wt)

    async def _close_webtransport(self, wt: wt_io.WTConnection) -> None:
        await wt.close(self.result, lingering=self.client.wt_closing)
        if self.wt is wt:
            self.wt = None

    async def send_text(self, effect: effects.SendText) -> None:
        if self.wt is not None:
            self.wt.protocol.send_text(effect.text)
            return
        if self.wsc is not None:
            self.wsc.send_text(effect.text)
            return
        assert self.ws is not None, "SendText before OpenWebSocket"
        with websockets_io.mapped_ws_errors():
            await self.ws.send(effect.text)

    async def receive(self, effect: effects.ReceiveMessage) -> effects.Arrival | None:
        if self.wt is not None:
            return await self.wt.protocol.receive()
        assert self.ws is not None, "ReceiveMessage before OpenWebSocket"
        with websockets_io.mapped_ws_errors(), contextlib.suppress(ConnectionClosedOK):
            return effects.Arrival(await self.ws.recv(), time.perf_counter_ns())
        return None

    async def drop(self, effect: effects.Drop) -> int:
        dropped_ns = time.perf_counter_ns()
        if self.h1 is not None:
            self._h1_exit(self.h1)
        if self.wt is not None:  # closed with an error: the server waits for a resume
            wt, self.wt = self.wt, None
            await wt.close(self.result, wt_io.DROPPED_CODE, self.client.wt_closing)
        if self.wsc is not None:
            self.wsc.abort()  # no close frame; its bytes are charged once it has closed
            self.wsc = None
        if self.ws is not None:
            self.ws.transport.abort()  # no close frame: the peer sees the connection vanish
            self.ws = None
        if self.response is not None:
            httpx_io.charge_bytes(self.meter, self.result, self.response)
            await self.response.aclose()  # unread body: httpx closes the connection
            self.response = self.reads = None
        return dropped_ns

    async def listen_for_callbacks(self, effect: effects.ListenForCallbacks) -> str:
        receiver = await self.client.callback_receiver()
        self.mailbox = receiver.open()
        self.stack.callback(self.mailbox.close)  # later callbacks: 410 Gone
        return self.mailbox.url

    async def receive_callback(self, effect: effects.ReceiveCallback) -> effects.Callback | None:
        assert self.mailbox is not None, "ReceiveCallback before ListenForCallbacks"
        inbound = await self.mailbox.next(effect.timeout_s)
        if inbound is None:
            return None
        count_callback(self.result, inbound)
        return inbound.callback

    async def answer_callback(self, effect: effects.AnswerCallback) -> None:
        assert self.mailbox is not None, "AnswerCallback before ListenForCallbacks"
        self.result.header_bytes += self.mailbox.answer(effect.status, effect.body)
