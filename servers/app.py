"""The tokenwire server: one FastAPI app with every transport mounted on it.

Adding a transport means writing `servers/<name>.py` with a `router` and listing it in
`TRANSPORT_ROUTERS`; the client side registers itself in `clients/__init__.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from errors import RequestRefused
from servers import chunked, openai_compat, polling, sse, timeline, websocket
from servers.common import ServerState, api_error_handler
from servers.generation import Registry
from servers.polling import json_response
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource

TRANSPORT_ROUTERS = {
    "short_poll": polling.router,
    "long_poll": polling.router,
    "sse": sse.router,
    "chunked": chunked.router,
    "websocket": websocket.router,
}

ENDPOINTS = {
    "short_poll": "POST /v1/streams, then GET /v1/streams/{id}?offset=K",
    "long_poll": "POST /v1/streams, then GET /v1/streams/{id}?offset=K&wait=SECONDS",
    "sse": "POST /v1/sse (JSON body) or GET /v1/sse?seed=N (EventSource)",
    "chunked": "POST /v1/chunked (NDJSON, one chunk per token)",
    "websocket": "WS /v1/ws (send the request as JSON)",
}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return JSONResponse({"error": problems}, status_code=422)


async def _nothing_left(request: Request, exc: Exception) -> Response:
    return Response(status_code=204)


def create_app(source: TokenSource, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    state = ServerState(
        source=source,
        settings=settings,
        registry=Registry(
            source=source,
            hold_s=settings.inject_delay_ms / 1000,
            idle_timeout_s=settings.idle_timeout_s,
            retention_s=settings.retention_s,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reaper = asyncio.create_task(state.registry.reaper())
        try:
            yield
        finally:
            reaper.cancel()
            state.registry.cancel_all()

    app = FastAPI(title="tokenwire", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.tokenwire = state
    app.add_exception_handler(RequestRefused, api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sse.NothingLeft, _nothing_left)
    mounted: list[object] = []
    for router in TRANSPORT_ROUTERS.values():
        if not any(router is seen for seen in mounted):  # both polling modes share one router
            app.include_router(router)
            mounted.append(router)
    app.include_router(timeline.router)
    app.include_router(openai_compat.router)

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"ok": True, "pid": os.getpid(), "source": source.name})

    @app.get("/")
    async def index() -> Response:
        return json_response({"transports": ENDPOINTS, "model": source.model})

    return app
