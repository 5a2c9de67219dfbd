"""The server as a bare ASGI application, no framework: the Python floor.

Written as an ASGI app is written by hand: one callable that matches the path in a table,
reads the body from `receive`, and hands each push chunk straight to the server's `send`.
The routes, the generations and the access rules are the stack-neutral core's
(`servers.core`, `servers.access.AccessGuard`), so only the framework's share of the cost
is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from errors import RequestRefused
from servers import access
from servers.core import make_state, no_socket_here, routes, running
from servers.exchange import WEBSOCKET, Answer, Call, RouteTable, answered, refusal_answer
from servers.exchange import Message as Received
from servers.request_parsing import admit_body, drop_body, read_limited
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from servers.stacks.options import ServeOptions
from servers.state import ServerState
from servers.streaming import StreamAborted
from servers.websocket import GONE, POLICY_VIOLATION
from transports import TRANSPORTS, TransportRegistry

# ASGI 3's types, written out: no framework here
Scope = MutableMapping[str, Any]
Event = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Event]]
Send = Callable[[Event], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Disconnected(Exception):
    """The client left while its request was read or its answer written."""


def _headers(scope: Scope) -> dict[str, str]:
    """Header names in lower case, the first value of each (as `Call.headers` holds them)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"")
    assert isinstance(raw, bytes)
    found: dict[str, str] = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        found.setdefault(name, value)
    return found


async def until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class AsgiSocket:
    """An accepted ASGI WebSocket as a `SocketPeer`."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.closed = False

    async def receive(self) -> Received:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            return Received(closed=int(message.get("code", 1006)))
        return Received(text=message.get("text"))

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code})


class BareApp:
    """The ASGI callable (module docstring)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.table = RouteTable.of(routes(state.transports))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with running(self.state):
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
        await send({"type": "lifespan.shutdown.complete"})

    def seen_by(self, scope: Scope) -> ServerState:
        principal = scope.get(access.PRINCIPAL_KEY)
        if isinstance(principal, str):
            return replace(self.state, principal=principal)
        return self.state

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope["path"])
        method = str(scope["method"])
        matched = self.table.match(method, path)
        if isinstance(matched, RequestRefused):
            await self.reply(send, refusal_answer(path, matched))
            return
        route, params = matched
        state = self.seen_by(scope)
        headers = _headers(scope)
        body = b""
        try:
            if method == "POST":
                body = await self.read_body(headers, receive, state.settings)
        except RequestRefused as exc:
            await self.reply(send, refusal_answer(path, exc))
            return
        except Disconnected:
            return
        call = Call(state, method, path, params, _query(scope), headers, body)
        assert route.handler is not None
        await self.reply(send, await answered(route.handler, call), receive)

    async def read_body(
        self, headers: dict[str, str], receive: Receive, settings: ServerSettings
    ) -> bytes:
        """The body, within the limits; one refused by its head alone (415) is read and
        dropped first, so that the refusal reaches the client (`drop_body`)."""
        chunks = self.body_chunks(receive)
        try:
            admit_body(headers, settings, starts_work=False)
        except RequestRefused as refused:
            if refused.status == 415:
                await drop_body(chunks, settings)
            raise
        return await read_limited(chunks, settings)

    async def body_chunks(self, receive: Receive) -> AsyncIterator[bytes]:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            yield message.get("body", b"")
            if not message.get("more_body", False):
                return

    async def reply(self, send: Send, answer: Answer, receive: Receive | None = None) -> None:
        head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.head()]
        start = {"type": "http.response.start", "status": answer.status, "headers": head}
        if answer.chunks is None:
            await send(start)
            await send({"type": "http.response.body", "body": answer.body})
            return
        chunks = answer.chunks
        try:
            if receive is None:
                await self.pump(send, start, chunks)
                return
            # ASGI servers before spec 2.4 drop writes to a client that left without a word:
            # only `receive` tells, so it is watched while the stream is sent
            sender = asyncio.ensure_future(self.pump(send, start, chunks))
            watcher = asyncio.ensure_future(until_disconnect(receive))
            await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sender, watcher):
                task.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        finally:
            await chunks.aclose()

    @staticmethod
    async def pump(send: Send, start: Event, chunks: AsyncIterator[bytes]) -> None:
        try:
            await send(start)
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (StreamAborted, OSError):
            pass  # the client left, or the stream is cut short: the server closes the connection

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope["path"])
        matched = self.table.match(WEBSOCKET, path)
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        peer = AsgiSocket(receive, send)
        if isinstance(matched, RequestRefused) or matched[0].socket is None:
            try:
                await peer.send_text(no_socket_here(path))
                await peer.close(POLICY_VIOLATION)
            except GONE:
                pass
            return
        await matched[0].socket(self.seen_by(scope), peer)


def create_app(
    source: TokenSource,
    settings: ServerSettings | None = None,
    transports: TransportRegistry = TRANSPORTS,
) -> ASGIApp:
    """The bare app behind the access rules (and CORS, when origins are listed), as the
    FastAPI app has them."""
    state = make_state(source, settings, transports)
    app: ASGIApp = access.AccessGuard(BareApp(state), state.settings)
    if state.settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app = CORSMiddleware(
            app,
            allow_origins=state.settings.cors_origins,
            allow_methods=access.CORS_METHODS,
            allow_headers=access.CORS_REQUEST_HEADERS,
            expose_headers=access.CORS_EXPOSED_HEADERS,
        )
    return app


def serve_uvicorn(options: ServeOptions) -> None:
    """asgi@uvicorn: the bare app under uvicorn, as the FastAPI app is served."""
    from servers.run import freeze_startup_objects, serve_on_socket

    app = create_app(options.source, options.settings)
    freeze_startup_objects()
    serve_on_socket(app, options.sock, options.settings)
