"""aiohttp, framework and server, written as aiohttp users write streaming code: the core's
routes on aiohttp's router (its `{name}` syntax is the core's), the access rules in a
`@web.middleware`, push answers as `web.StreamResponse` (one `write` per body chunk),
WebSockets as `web.WebSocketResponse`, `running` in `cleanup_ctx`. Routes, generations and
rules are the stack-neutral core's (`servers.core`, `access.Gate`): the other stacks' bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace

import uvloop
from aiohttp import WSMessage, WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler as Endpoint
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from errors import RequestRefused
from servers import access
from servers.core import make_state, no_socket_here, routes, running
from servers.exchange import WEBSOCKET, Answer, Call, Handler, SocketHandler, answered
from servers.exchange import Message as Received
from servers.exchange import refusal_answer as refusal
from servers.request_parsing import admit_body, read_limited
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from servers.stacks.aiohttp_cors import install_cors  # aiohttp-cors is not installed
from servers.stacks.options import ServeOptions
from servers.state import ServerState
from servers.streaming import StreamAborted
from servers.websocket import GONE, POLICY_VIOLATION
from transports import TRANSPORTS, TransportRegistry

STATE = web.AppKey("tokenwire.state", ServerState)
PRINCIPAL = web.RequestKey(access.PRINCIPAL_KEY, str)  # the caller's, when there are tokens
SUBPROTOCOL = web.RequestKey("tokenwire.subprotocol", str)  # a WebSocket's, to accept it with
SOCKET_ROUTE = "tokenwire_socket"  # set on a WebSocket endpoint's handler
Extra = dict[str, str] | None  # what a refusal's answer adds


def is_upgrade(request: web.Request) -> bool:  # a WebSocket handshake
    connection = (t.strip() for t in request.headers.get("connection", "").lower().split(","))
    return request.headers.get("upgrade", "").lower() == "websocket" and "upgrade" in connection


def head(request: web.Request) -> list[tuple[str, str]]:  # decoded as ASGI servers decode
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.raw_headers]


def whole(answer: Answer) -> web.Response:
    head_ = CIMultiDict(answer.head())
    response = web.Response(body=answer.body, status=answer.status, headers=head_)
    if head_.get("connection", "").lower() == "close":
        response.force_close()  # aiohttp keeps a connection unless told (a body is unread)
    return response


def refused(request: web.Request, exc: RequestRefused, headers: Extra = None) -> web.Response:
    return whole(refusal(request.path, exc, headers))


def seen_by(request: web.Request) -> ServerState:
    state, principal = request.app[STATE], request.get(PRINCIPAL)
    return state if principal is None else replace(state, principal=principal)


def guard_middleware(settings: ServerSettings) -> Middleware:
    """The access rules: a refused request, or upgrade (before any handshake), gets JSON."""
    gate = access.Gate(settings)

    @web.middleware
    async def guard(request: web.Request, handler: Endpoint) -> web.StreamResponse:
        socket = is_upgrade(request)
        offered = ",".join(request.headers.getall("sec-websocket-protocol", []))
        asked = access.Asked(
            scheme=("wss" if request.secure else "ws") if socket else request.scheme,
            http_version=f"{request.version.major}.{request.version.minor}",
            path=request.path,
            headers=tuple(head(request)),
            subprotocols=tuple(p.strip() for p in offered.split(",") if p.strip()),
        )
        verdict = gate.admit_socket(asked) if socket else gate.admit(asked)
        if isinstance(verdict, access.Refused):
            answer = refused(request, verdict.refusal, verdict.headers)
            if socket:
                answer.force_close()  # no handshake: the connection ends, as on uvicorn
            return answer
        if verdict.principal is not None:
            request[PRINCIPAL] = verdict.principal
        if verdict.subprotocol is not None:
            request[SUBPROTOCOL] = verdict.subprotocol
        return await handler(request)

    return guard


@web.middleware
async def routed(request: web.Request, handler: Endpoint) -> web.StreamResponse:
    """Upgrades reach WebSocket routes only (elsewhere: `no_socket_here`, 1008), requests HTTP
    routes only (405); the router's 404, 405 and other HTTP errors as `{"error": ...}`."""
    socket_route = getattr(request.match_info.handler, SOCKET_ROUTE, False)
    try:
        if is_upgrade(request) and not socket_route:
            return await no_socket(request)
        if socket_route and not is_upgrade(request):
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason if exc.status in (404, 405) else exc.text or exc.reason
        return refused(request, RequestRefused(exc.status, message))


def http_endpoint(handler: Handler) -> Endpoint:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        state = seen_by(request)
        headers = dict(reversed(head(request)))  # the first value of each
        body = b""
        if request.method == "POST":
            try:
                admit_body(headers, state.settings, starts_work=False)
                body = await read_limited(request.content.iter_any(), state.settings)
            except RequestRefused as exc:
                return refused(request, exc)
            except web.RequestPayloadError as exc:
                return refused(request, RequestRefused(400, str(exc)), {"Connection": "close"})
            except OSError:  # the client left: nobody to answer
                return web.Response(status=400)
        query = dict(reversed(list(request.query.items())))  # the first value of each
        params = dict(request.match_info)
        call = Call(state, request.method, request.path, params, query, headers, body)
        return await reply(request, await answered(handler, call))

    return endpoint


async def reply(request: web.Request, answer: Answer) -> web.StreamResponse:
    """One `write` per body chunk; aborted: cut short, no terminating chunk, closed."""
    if answer.chunks is None:
        return whole(answer)
    response = web.StreamResponse(status=answer.status, headers=CIMultiDict(answer.head()))
    try:
        await response.prepare(request)
        async for chunk in answer.chunks:
            await response.write(chunk)
        await response.write_eof()
    except (StreamAborted, OSError):  # cut short, or the client left
        response.force_close()
        if request.transport is not None:
            request.transport.close()
    finally:
        await answer.chunks.aclose()
    return response


@dataclass(slots=True)
class AiohttpSocket:
    """A prepared `web.WebSocketResponse` as a `SocketPeer`. A read still waiting when the
    server closes is cancelled first: aiohttp would otherwise close the connection right
    after its close frame, not waiting for the client's (uvicorn waits for it)."""

    ws: web.WebSocketResponse
    reading: asyncio.Future[WSMessage] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def receive(self) -> Received:
        self.reading = asyncio.ensure_future(self.ws.receive())  # pings answered in there
        try:
            message = await self.reading
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this reader is cancelled, not the read by `close`
            await self.closed.wait()
            return Received(closed=1006)
        if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return Received(text=message.data if message.type is WSMsgType.TEXT else None)
        if message.type is WSMsgType.CLOSE:
            return Received(closed=int(message.data))
        return Received(closed=1006)  # no close frame came: the connection dropped

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def close(self, code: int = 1000) -> None:
        if self.reading is not None and not self.reading.done():
            self.reading.cancel()
            await asyncio.wait([self.reading])
        try:
            await self.ws.close(code=code)  # then waits for the client's close frame
        finally:
            self.closed.set()


def accepted(request: web.Request) -> web.WebSocketResponse:
    """No pings of its own (they'd count as transport bytes), messages to max_body_bytes."""
    chosen = request.get(SUBPROTOCOL)  # by the access rules
    size = request.app[STATE].settings.max_body_bytes
    return web.WebSocketResponse(  # autoping: the client's pings are answered
        protocols=[chosen] if chosen else [], heartbeat=None, max_msg_size=size
    )


def socket_endpoint(socket: SocketHandler) -> Endpoint:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        ws = accepted(request)
        await ws.prepare(request)
        await socket(seen_by(request), AiohttpSocket(ws))
        return ws

    setattr(endpoint, SOCKET_ROUTE, True)
    return endpoint


async def no_socket(request: web.Request) -> web.StreamResponse:
    """A WebSocket to a path that has none: accepted, told so, closed with 1008."""
    ws = accepted(request)
    await ws.prepare(request)
    with contextlib.suppress(*GONE):
        await ws.send_str(no_socket_here(request.path))
        await ws.close(code=POLICY_VIOLATION)
    return ws


def create_app(
    source: TokenSource,
    settings: ServerSettings | None = None,
    transports: TransportRegistry = TRANSPORTS,
) -> web.Application:
    """The core's routes on aiohttp's router, behind the access rules (and CORS)."""
    state = make_state(source, settings, transports)
    app = web.Application(
        middlewares=[guard_middleware(state.settings), routed],
        client_max_size=state.settings.max_body_bytes,
    )
    app[STATE] = state
    if state.settings.cors_origins:
        install_cors(app, state.settings)
    for route in routes(transports):
        if route.method == WEBSOCKET:
            assert route.socket is not None
            app.router.add_route("GET", route.path, socket_endpoint(route.socket))
        else:
            assert route.handler is not None
            app.router.add_route(route.method, route.path, http_endpoint(route.handler))
    app.cleanup_ctx.append(lambda app: running(app[STATE]))  # the server's life
    return app


def quiet_parse_errors(record: logging.LogRecord) -> bool:
    """A request aiohttp's parser refused (its 400) is the client's fault, not the server's:
    one warning line without a traceback, as uvicorn logs it, not an error."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError):
        record.msg, record.args, record.exc_info = "Invalid HTTP request: %s", (exc.message,), None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def serve(options: ServeOptions) -> None:
    """aiohttp on the bound socket, on uvloop, without an access log."""
    from servers.run import freeze_startup_objects

    settings = options.settings
    app = create_app(options.source, settings)
    logging.getLogger("aiohttp.server").addFilter(quiet_parse_errors)
    freeze_startup_objects()
    web.run_app(
        app,
        sock=options.sock,
        loop=uvloop.new_event_loop(),
        print=None,
        access_log=None,
        backlog=2048,  # asyncio listens again on the bound socket: as uvicorn's default
        shutdown_timeout=5.0,  # streams still open at shutdown are cancelled after 5 s
        keepalive_timeout=30.0,  # as uvicorn's timeout_keep_alive on the other stacks
        lingering_time=1.0,  # an unread body is dropped for 1 s, then closed (10 s default)
        max_line_size=settings.max_head_bytes,  # per line: aiohttp bounds no whole head
        max_field_size=settings.max_head_bytes,
    )
