"""The server as a Flask app, written as Flask's users write streaming: a WSGI app whose
views return generator responses, and flask-sock for WebSocket. `flask_gunicorn` serves it.

WSGI is blocking and a request holds its thread until its response is written, so every
open push stream and every held long poll occupies a server thread for its whole life (a
short poll borrows one briefly). The core is asyncio, on its own loop (`loop_thread`);
views wait for it. Routes, limits, framing and access rules are the stack-neutral core's
(`servers.core`, `servers.access.Gate`), so only the stack's share of the cost differs.
"""

from __future__ import annotations

import errno
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from contextlib import suppress
from dataclasses import replace
from typing import Any

from flask import Flask, Response, g, request, stream_with_context
from flask_sock import Sock  # type: ignore[import-untyped]
from simple_websocket import ConnectionClosed  # type: ignore[import-untyped]
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from errors import ProtocolError, RequestRefused
from servers import access, websocket
from servers.core import no_socket_here, routes
from servers.exchange import WEBSOCKET, Answer, Call, Handler, RouteTable, answered, refusal_answer
from servers.request_parsing import admit_body
from servers.settings import ServerSettings
from servers.stacks.loop_thread import CoreLoop, CoreStopped
from servers.state import ServerState
from servers.streaming import StreamAborted, framed_batches
from wire.messages import dumps

# environ key: a callable that makes the server end the connection after this answer, with
# `Connection: close` (the app's own Connection header is hop-by-hop: WSGI servers drop it)
CLOSE_AFTER = "tokenwire.close_after"


class WakingEvent(threading.Event):
    """simple-websocket's `ws.event` (its `event_class`): its reader thread sets it on each
    message and when the connection ends; `wake`, when set, then runs too."""

    wake: Callable[[], None] | None = None

    def set(self) -> None:
        super().set()
        if self.wake is not None:
            self.wake()


async def opening(state: ServerState, text: str | None) -> websocket.Opened:
    return websocket.open_stream(state, text)  # on the loop: it starts the generation


async def left_for_good(opened: websocket.Opened) -> None:
    opened.gen.reader_left(0.0)


HANDSHAKE_INCOMPLETE = (
    "a WebSocket handshake needs a Sec-WebSocket-Key header and Sec-WebSocket-Version: 13"
)


def handshake_complete() -> bool:
    """The upgrade request carries what simple-websocket needs to accept it (RFC 6455, 4.2.1)."""
    key = request.headers.get("Sec-WebSocket-Key", "")
    return bool(key.strip()) and request.headers.get("Sec-WebSocket-Version") == "13"


def flask_path(path: str) -> str:
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def is_upgrade() -> bool:
    """A WebSocket upgrade, as werkzeug's router tells one."""
    upgrade = request.headers.get("Upgrade", "").strip().lower() == "websocket"
    return upgrade and "upgrade" in request.headers.get("Connection", "").lower()


def asked(upgrade: bool) -> access.Asked:
    """The request's head as the access rules read it (WSGI has merged repeated headers)."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "").split(",")
    return access.Asked(
        scheme=("ws" if upgrade else "http") + ("s" if request.is_secure else ""),
        http_version=request.environ.get("SERVER_PROTOCOL", "HTTP/1.1").removeprefix("HTTP/"),
        path=request.path,
        headers=tuple((k.lower(), v) for k, v in request.headers.items()),
        subprotocols=tuple(p.strip() for p in offered if p.strip()),
    )


def send_timeout(sock: socket.socket, seconds: float) -> None:
    """A send that makes no progress for `seconds` fails (OSError); receives still block
    without a limit, as the WebSocket's reader thread needs (a socket timeout would do both)."""
    whole, part = divmod(seconds, 1.0)
    packed = struct.pack("ll", int(whole), int(part * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, packed)


def let_go(sock: socket.socket | None) -> None:
    """End a connection whose client is gone (or stopped reading) at once. gunicorn closes
    every connection gracefully on its worker's main thread (RFC 9112, 9.6: half-close,
    then read on for up to 2 s until the peer closes); for a client that neither reads nor
    closes that is 2 s in which the worker dispatches no other request (measured: every
    other request waited). Shut both ways first, its graceful close returns at once."""
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def respond(core: CoreLoop, answer: Answer) -> Response:
    """An `Answer` as a Flask response: a push stream as a generator response."""
    sock = request.environ.get("gunicorn.socket")
    body = answer.body if answer.chunks is None else stream_with_context(pulled(core, answer, sock))
    response = Response(body, status=answer.status, headers=answer.head())
    if answer.media_type is None and "content-type" not in {k.lower() for k in answer.headers}:
        del response.headers["Content-Type"]  # werkzeug's default type; the core has none
    if answer.headers.get("Connection") == "close":
        request.environ.get(CLOSE_AFTER, lambda: None)()  # the server's own way to say it
    return response


def pulled(core: CoreLoop, answer: Answer, sock: socket.socket | None) -> Iterator[bytes]:
    """The push stream's chunks, each pulled from the core's loop by this request's thread."""
    chunks = answer.chunks
    assert chunks is not None
    ended = False
    with core.streaming():
        try:
            yield b""  # gunicorn writes the head now, before the first token, as uvicorn does
            while True:
                try:
                    yield core.call(chunks.__anext__())
                except StopAsyncIteration:
                    ended = True
                    return
                except (StreamAborted, CoreStopped, CancelledError):  # cut short: gunicorn
                    raise BrokenPipeError(errno.EPIPE, "stream cut short") from None  # drops it
        finally:  # the end, the client gone (gunicorn closes this generator) or cut short
            core.close_stream(chunks)
            if not ended:
                let_go(sock)


def read_body(core: CoreLoop, settings: ServerSettings, headers: dict[str, str]) -> bytes:
    """A POST's body, within max_body_bytes and request_timeout_s (worded as the core's).
    The time bounds the whole body: a socket timeout bounds each read only, and a client
    that trickles a byte now and then would hold the thread for ever; at the deadline the
    core's loop shuts the connection for reading, and the read ends."""
    if request.method != "POST":
        return b""
    admit_body(headers, settings, starts_work=False)
    sock = request.environ.get("gunicorn.socket")
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RD)

    cancel = core.later(settings.request_timeout_s, expire)
    try:
        body = request.get_data()
        if expired.is_set():  # what came before the deadline: a part, read as if whole
            raise TimeoutError
        return body
    except RequestEntityTooLarge:
        limit = settings.max_body_bytes
        raise RequestRefused(413, f"request body exceeds max_body_bytes ({limit})") from None
    except (TimeoutError, ClientDisconnected, OSError) as exc:
        timed_out = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
        if not (timed_out or expired.is_set()):
            raise  # the client left mid-body
        raise RequestRefused(
            408,
            "the request body did not arrive within request_timeout_s "
            f"({settings.request_timeout_s:g} s)",
        ) from None
    finally:
        cancel()


def create_app(state: ServerState, core: CoreLoop) -> Flask:
    """The Flask app over the core's routes, its access rules and its WebSocket."""
    settings = state.settings
    app = Flask(__name__)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = bool(settings.cors_origins)  # for preflights
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    bearers = [access.BEARER_SUBPROTOCOL_PREFIX + t for t in settings.tokens.values]
    app.config["SOCK_SERVER_OPTIONS"] = {
        "subprotocols": [access.SUBPROTOCOL, *bearers],  # the first the client offers wins
        "max_message_size": settings.max_body_bytes,
        "event_class": WakingEvent,
    }
    app.url_map.merge_slashes = False
    gate = access.Gate(settings)
    all_routes = routes(state.transports)
    table = RouteTable.of(all_routes)

    def seen() -> ServerState:
        principal = g.get("principal")
        return state if principal is None else replace(state, principal=principal)

    def view_of(by_method: dict[str, Handler]) -> Callable[..., Response]:
        def view(**params: str) -> Response:
            handler = by_method.get(request.method)
            if handler is None:  # werkzeug adds HEAD to every GET rule; the core does not
                refused = RequestRefused(405, "Method Not Allowed")
                return respond(core, refusal_answer(request.path, refused))
            headers: dict[str, str] = {}
            for name, value in request.headers.items():
                headers.setdefault(name.lower(), value)
            sock = request.environ.get("gunicorn.socket")
            if sock is not None:
                sock.settimeout(settings.request_timeout_s)  # for the body
            try:
                body = read_body(core, settings, headers)
            except RequestRefused as exc:
                return respond(core, refusal_answer(request.path, exc))
            if sock is not None:
                sock.settimeout(settings.write_timeout_s)  # a client that stops reading
            query = request.args.to_dict(flat=True)
            call = Call(seen(), request.method, request.path, params, query, headers, body)
            return respond(core, core.call(answered(handler, call)))

        return view

    by_path: dict[str, dict[str, Handler]] = {}
    for route in all_routes:
        if route.method != WEBSOCKET and route.handler is not None:
            by_path.setdefault(route.path, {})[route.method] = route.handler
    for path, by_method in by_path.items():
        app.add_url_rule(flask_path(path), path, view_of(by_method), methods=list(by_method))

    @app.before_request
    def admit() -> Response | None:
        preflight = "Access-Control-Request-Method" in request.headers
        if settings.cors_origins and request.method == "OPTIONS" and preflight:
            return None  # flask-cors answers it, before the access rules (as the asgi stack)
        upgrade = is_upgrade()
        verdict = gate.admit_socket(asked(True)) if upgrade else gate.admit(asked(False))
        if isinstance(verdict, access.Refused):
            answer = refusal_answer(request.path, verdict.refusal, verdict.headers)
            return respond(core, answer)
        if upgrade and not handshake_complete():  # else simple-websocket raises: a 500
            refused = RequestRefused(400, HANDSHAKE_INCOMPLETE)
            return respond(core, refusal_answer(request.path, refused, {"Connection": "close"}))
        g.principal = verdict.principal
        return None

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        """The router's refusals as the core's route table words them (404, 405)."""
        matched = table.match(WEBSOCKET if is_upgrade() else request.method, request.path)
        if isinstance(matched, RequestRefused) and exc.code in (400, 404, 405):
            return respond(core, refusal_answer(request.path, matched))
        refused = RequestRefused(exc.code or 500, exc.name)
        return respond(core, refusal_answer(request.path, refused))

    sock = Sock(app)
    for route in all_routes:
        if route.method == WEBSOCKET and route.socket is not websocket.session:
            raise RuntimeError(f"flask@gunicorn serves {route.path} only with websocket.session")
    for path in sorted({r.path for r in all_routes if r.method == WEBSOCKET}):
        sock.route(path, endpoint=f"ws {path}")(lambda ws: socket_session(core, seen(), ws))

    def nowhere(ws: Any, rest: str = "") -> None:
        with suppress(ConnectionClosed, OSError):
            ws.send(no_socket_here(request.path))
            ws.close(websocket.POLICY_VIOLATION)

    sock.route("/", endpoint="ws /")(nowhere)  # upgrades to a path without a WebSocket
    sock.route("/<path:rest>", endpoint="ws /*")(nowhere)
    if settings.cors_origins:
        from flask_cors import CORS  # type: ignore[import-untyped]

        CORS(
            app,
            origins=list(settings.cors_origins),
            methods=list(access.CORS_METHODS),
            allow_headers=list(access.CORS_REQUEST_HEADERS),
            expose_headers=list(access.CORS_EXPOSED_HEADERS),
        )
    return app


def socket_session(core: CoreLoop, state: ServerState, ws: Any) -> None:
    """`servers.websocket.session`, written for a thread: the first message opens the stream;
    this thread sends each message and is held until the stream ends. The connection's
    reader thread (simple-websocket's) wakes it when the client leaves mid-wait. A request
    that keeps the connection open is followed by the next one, within `idle_timeout_s`."""
    timeout_s = state.settings.request_timeout_s
    text = ws.receive(timeout=timeout_s)  # ConnectionClosed: the client left (flask-sock)
    if text is None:
        refuse(ws, f"no request within request_timeout_s ({timeout_s:g} s)")
        return
    while True:
        try:
            opened = core.call(opening(state, text if isinstance(text, str) else None))
        except (ProtocolError, RequestRefused) as exc:
            refuse(ws, str(exc))
            return
        if not stream_one(core, state, ws, opened) or not opened.keep_open:
            return
        try:
            text = ws.receive(timeout=state.settings.idle_timeout_s)
        except ConnectionClosed:
            return
        if text is None:  # nothing more within idle_timeout_s: closed, as uvicorn's does
            with suppress(ConnectionClosed, OSError):
                ws.close()
            return


def refuse(ws: Any, message: str) -> None:
    with suppress(ConnectionClosed, OSError):
        ws.send(dumps({"error": message}))
        ws.close(websocket.POLICY_VIOLATION)


def stream_one(core: CoreLoop, state: ServerState, ws: Any, opened: websocket.Opened) -> bool:
    """One stream on the connection; closed after it unless the request keeps it open.
    False when the connection ended (the client left, or the stream was cut short)."""
    grace, model = state.settings.resume_grace_s, state.source.model
    batches = framed_batches(opened.gen, opened.framing, model, opened.start, grace, opened.resumed)
    pull: Future[Any] | None = None

    def wake() -> None:
        if not ws.connected and pull is not None:
            pull.cancel()  # the client left while this thread waits for a token

    ws.event.wake = wake
    with suppress(OSError):  # a client already gone: the first send says so
        send_timeout(ws.sock, state.settings.write_timeout_s)
    gone = ended = False
    with core.streaming():
        try:
            while True:
                pull = core.submit(batches.__anext__())
                if not ws.connected:  # it left before `wake` could see this pull
                    pull.cancel()
                try:
                    batch = pull.result()
                except StopAsyncIteration:
                    break
                for message in batch:  # one WebSocket message each
                    ws.send(message.payload)
            if not opened.keep_open:
                ws.close()
            ended = True
        except (CancelledError, ConnectionClosed, OSError):
            gone = True
            let_go(ws.sock)
        except (StreamAborted, CoreStopped):  # cut short: dropped, as uvicorn drops it
            let_go(ws.sock)
        finally:
            ws.event.wake = None
            core.close_stream(batches)  # a reader that left is counted out (resume grace)
    if gone and ws.close_reason in websocket.CLOSED_BY_CLIENT:  # a close frame: for good
        with suppress(CoreStopped):
            core.call(left_for_good(opened))
    return ended
