"""Server-Sent Events, encoded by FastAPI's own `fastapi.sse`.

`POST /v1/sse` takes the request as JSON; `GET /v1/sse?seed=..` serves browsers' EventSource.
Every token event carries `id: i`. The stream ends with the framing's explicit terminal
event (`{"done":true,..}` or `[DONE]`), so a client never needs to reconnect. A reconnect
with `Last-Event-ID` and `stream=ID` resumes after event i while that stream still exists;
a reconnect to a stream that has already delivered everything gets `204 No Content`,
which per the SSE specification makes EventSource stop reconnecting.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from errors import RequestRefused
from servers.generation import Generation
from servers.request_parsing import (
    body_generation_request,
    framing_named,
    parse_generation_request,
)
from servers.state import ServerState, find_generation, start_generation, state_of
from servers.streaming import framed_stream
from wire.framing import Framing
from wire.messages import GenerationRequest

router = APIRouter(tags=["sse"])


class NothingLeft(Exception):
    """A reconnect to a stream that has nothing more to send: answered with 204."""


@dataclass(frozen=True, slots=True)
class Opened:
    state: ServerState
    gen: Generation
    framing: Framing
    start: int  # first token index to send (0, or Last-Event-ID + 1 on a resume)


def _open(
    state: ServerState,
    generation_request: GenerationRequest,
    framing_name: str,
    last_event_id: str | None,
) -> Opened:
    framing = framing_named(framing_name, state.settings.inject_pad_bytes)
    if last_event_id is None:
        return Opened(state, start_generation(state, generation_request), framing, 0)
    if generation_request.stream_id is None:
        raise RequestRefused(
            400, "Last-Event-ID needs the stream id (stream_id / ?stream=) to resume"
        )
    try:
        start = int(last_event_id) + 1
    except ValueError:
        raise RequestRefused(
            400, f"Last-Event-ID must be a token index, got {last_event_id!r}"
        ) from None
    gen = find_generation(state, generation_request.stream_id)
    if gen.done and start >= len(gen.texts):
        raise NothingLeft()
    return Opened(state, gen, framing, start)


async def open_post(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
    framing: str = Query("json"),
    last_event_id: str | None = Header(None),
) -> Opened:
    return _open(state_of(request), generation_request, framing, last_event_id)


async def open_get(
    request: Request,
    seed: int = Query(0, ge=0),
    max_tokens: int | None = Query(None, ge=1),
    prompt: str = Query(""),
    stream: str | None = Query(None, description="stream id (to name it, or to resume it)"),
    framing: str = Query("json"),
    last_event_id: str | None = Header(None),
) -> Opened:
    body = {"seed": seed, "max_tokens": max_tokens, "prompt": prompt, "stream_id": stream}
    generation_request = parse_generation_request({k: v for k, v in body.items() if v is not None})
    return _open(state_of(request), generation_request, framing, last_event_id)


async def events(opened: Opened) -> AsyncIterable[ServerSentEvent]:
    stream = framed_stream(
        opened.gen,
        opened.framing,
        opened.state.source.model,
        opened.start,
        opened.state.settings.sse_resume_grace_s,
    )
    async with contextlib.aclosing(stream) as framed:
        async for message in framed:
            event_id = None if message.index is None else str(message.index)
            yield ServerSentEvent(raw_data=message.payload, id=event_id)


@router.post("/v1/sse", response_class=EventSourceResponse)
async def sse_post(opened: Annotated[Opened, Depends(open_post)]) -> AsyncIterable[ServerSentEvent]:
    async for event in events(opened):
        yield event


@router.get("/v1/sse", response_class=EventSourceResponse)
async def sse_get(opened: Annotated[Opened, Depends(open_get)]) -> AsyncIterable[ServerSentEvent]:
    async for event in events(opened):
        yield event
