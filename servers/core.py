"""The stack-neutral server: its state, its lifetime and every route it serves.

Every stack (`stacks.py`) builds its server from this: `make_state` (the generations, the
source, the settings, the webhook sender), `running` around the server's life (the idle
reaper, the decode clock, the webhook sender's client) and `routes` (the transports'
stack-neutral routes, `Transport.routes`, and the server's own: health, index, timelines,
chat completions). FastAPI stacks mount the transports' routers instead, on the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import cast

from servers import openai_compat, openai_responses, timeline
from servers.exchange import WEBSOCKET, Answer, Call, Route, json_answer
from servers.generation import Generations
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from servers.state import ServerState
from servers.webhook import WebhookSender
from transports import TRANSPORTS, TransportRegistry, load
from wire.messages import dumps


def make_state(
    source: TokenSource,
    settings: ServerSettings | None = None,
    transports: TransportRegistry = TRANSPORTS,
) -> ServerState:
    settings = settings or ServerSettings()
    return ServerState(
        source=source,
        settings=settings,
        transports=transports,
        generations=Generations(
            source=source,
            hold_s=settings.inject_delay_ms / 1000,
            idle_timeout_s=settings.idle_timeout_s,
            retention_s=settings.retention_s,
            max_active=settings.max_active_streams,
            max_retained_bytes=settings.max_retained_bytes,
        ),
        webhook_sender=WebhookSender(settings),
    )


@contextlib.asynccontextmanager
async def running(state: ServerState) -> AsyncIterator[None]:
    """The server's life, inside its event loop: the idle reaper runs, the webhook sender's
    client is made at start-up (making one loads the TLS trust store, ~100-200 ms of CPU,
    which on first use would stall every stream), the transports' own listeners
    (`Transport.listener`: WebTransport's) run, and at the end every generation is
    cancelled and the sender closed."""
    reaper = asyncio.create_task(state.generations.reaper())
    if state.webhook_sender is not None:
        state.webhook_sender.open()
    try:
        async with contextlib.AsyncExitStack() as listeners:
            for listener in state.transports.listeners():
                await listeners.enter_async_context(listener(state))
            yield
    finally:
        reaper.cancel()
        state.generations.cancel_all()
        if state.webhook_sender is not None:
            await state.webhook_sender.aclose()


def health(state: ServerState) -> Answer:
    return json_answer({"ok": True, "pid": os.getpid(), "source": state.source.name})


def index(state: ServerState) -> Answer:
    endpoints = {t.name: t.endpoint for t in state.transports}
    return json_answer({"transports": endpoints, "model": state.source.model})


async def _health(call: Call) -> Answer:
    return health(call.state)


async def _index(call: Call) -> Answer:
    return index(call.state)


def no_socket_here(path: str) -> str:
    """What a WebSocket to a path that has none is told before it is closed with 1008."""
    return dumps({"error": f"no WebSocket endpoint at {path}"})


SERVICE_ROUTES = (
    Route("GET", "/healthz", _health),
    Route("HEAD", "/healthz", _health),  # load balancers probe with HEAD
    Route("GET", "/", _index),
    *timeline.ROUTES,
    *openai_compat.ROUTES,
    *openai_responses.ROUTES,
)


def routes(transports: TransportRegistry) -> tuple[Route, ...]:
    """Every route a neutral stack serves: each transport's (once: both pollings share
    theirs), then the server's own."""
    found: list[Route] = []
    for transport in transports:
        if transport.routes is None:
            continue
        declared: tuple[Route, ...] = cast(tuple[Route, ...], load(transport.routes))
        for route in declared:
            if route not in found:
                found.append(route)
    return (*found, *SERVICE_ROUTES)


def socket_paths(all_routes: tuple[Route, ...]) -> tuple[str, ...]:
    return tuple(r.path for r in all_routes if r.method == WEBSOCKET)
