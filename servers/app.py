"""The tokenwire server: one FastAPI app with every transport mounted on it.

The transports' routers come from the registry (`transports.py`); `create_app` takes a
registry so that an extended one (a throwaway transport in a test) serves the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from errors import RequestRefused
from servers import access, openai_compat, openai_responses, responses_socket, timeline
from servers.core import health, index, make_state, no_socket_here, running
from servers.faults import HTTP_FAULTS, FaultyResponses
from servers.responses import http_error_handler, refused_request_handler, whole_response
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from transports import TRANSPORTS, TransportRegistry


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return JSONResponse({"error": problems}, status_code=422)


def create_app(
    source: TokenSource,
    settings: ServerSettings | None = None,
    transports: TransportRegistry = TRANSPORTS,
) -> FastAPI:
    state = make_state(source, settings, transports)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(state):
            yield

    app = FastAPI(
        title="tokenwire",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # no OpenTelemetry: its per-request provider lookups read os.environ each time
        # (about 3% of the server's CPU per request, measured with py-spy)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.tokenwire = state
    access.install(app, state.settings)  # Host, Origin, tokens, principals, CORS
    if any(f in HTTP_FAULTS for f in state.settings.faults):  # outermost: nearest the socket
        app.add_middleware(FaultyResponses, faults=state.settings.faults)
    app.add_exception_handler(RequestRefused, refused_request_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for router in transports.routers():
        app.include_router(router)
    app.include_router(timeline.router)
    app.include_router(openai_compat.router)
    app.include_router(openai_responses.router)
    app.include_router(responses_socket.router)

    @app.websocket("/{path:path}")
    async def no_websocket_here(websocket: WebSocket, path: str) -> None:
        """A WebSocket to a path that has none: accepted only to say so, then closed."""
        await websocket.accept()
        await websocket.send_text(no_socket_here(f"/{path}"))
        await websocket.close(code=1008)

    @app.get("/healthz")
    async def healthz() -> Response:
        return whole_response(health(state))

    app.head("/healthz", include_in_schema=False)(healthz)  # load balancers probe with HEAD

    @app.get("/")
    async def root() -> Response:
        return whole_response(index(state))

    return app
