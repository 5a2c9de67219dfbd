"""What the transport modules share: server state, request parsing and JSON errors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from errors import ProtocolError, RequestRefused
from servers.generation import Generation, Registry, StreamExists
from servers.settings import ServerSettings
from servers.sources.mock import TokenSource
from wire.framing import Framing, get_framing, padded
from wire.messages import GenerationRequest, loads


@dataclass
class ServerState:
    source: TokenSource
    settings: ServerSettings
    registry: Registry


OPENAI_PATHS = ("/v1/chat/completions",)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """`{"error": message}`; on the OpenAI-compatible endpoint, OpenAI's own error shape."""
    assert isinstance(exc, RequestRefused)
    if request.url.path in OPENAI_PATHS:
        body = {"error": {"message": exc.message, "type": "invalid_request_error"}}
        return JSONResponse(body, status_code=exc.status)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def state_of(conn: HTTPConnection) -> ServerState:
    return conn.app.state.tokenwire  # type: ignore[no-any-return]


def parse_generation_request(body: bytes | str | dict[str, Any] | None) -> GenerationRequest:
    try:
        decoded = loads(body) if isinstance(body, bytes | str) and body else body
        return GenerationRequest.from_json(decoded or None)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc


def framing_named(name: str, pad_bytes: int = 0) -> Framing:
    try:
        return padded(get_framing(name), pad_bytes)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc


def start_generation(state: ServerState, request: GenerationRequest) -> Generation:
    try:
        return state.registry.create(request)
    except StreamExists:
        raise RequestRefused(409, f"stream {request.stream_id!r} already exists") from None


def find_generation(state: ServerState, stream_id: str) -> Generation:
    gen = state.registry.get(stream_id)
    if gen is None:
        raise RequestRefused(
            404, f"no stream {stream_id!r} (unknown, finished long ago, or dropped)"
        )
    return gen


async def body_generation_request(request: Request) -> GenerationRequest:
    """FastAPI dependency: the JSON body as a validated `GenerationRequest`."""
    return parse_generation_request(await request.body())


def abandon(gen: Generation, grace_s: float = 0.0) -> None:
    """The reader of a push stream went away before the end: stop generating for nobody."""
    if gen.done:
        return
    if grace_s <= 0:
        gen.cancel()
    else:
        asyncio.get_running_loop().call_later(grace_s, gen.cancel_unless_resumed)
