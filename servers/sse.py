"""Server-Sent Events: `POST /v1/sse` takes the request as JSON; `GET /v1/sse?seed=..` serves
browsers' EventSource. Events are encoded by `wire.sse`.

Every token event carries `id: i`. The stream ends with the framing's explicit terminal
event (`{"done":true,..}` or `[DONE]`), so a client never needs to reconnect. A reconnect
with `Last-Event-ID: i` and the stream's id (`?stream=ID`, or `stream_id` in a POST body)
resumes after token i while the generation exists (a dropped reader's generation waits
`resume_grace_s` for it). A reconnect that has nothing left to send gets `204 No Content`,
which per the SSE specification makes EventSource stop reconnecting: a stream that has
delivered everything, and a reconnect that names no stream (without `?stream=` the server
cannot know which generation it continues, and must never start a second one).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from errors import RequestRefused
from servers.generation import Generation
from servers.push_response import PushResponse
from servers.request_parsing import (
    body_generation_request,
    framing_named,
    parse_generation_request,
)
from servers.state import ServerState, find_generation, start_generation, state_of
from servers.streaming import framed_batches, response_headers
from wire.framing import Framing
from wire.messages import MAX_SEED, GenerationRequest
from wire.sse import MEDIA_TYPE, encode_event

router = APIRouter(tags=["sse"])

NOTHING_LEFT = 204


@dataclass(frozen=True, slots=True)
class Opened:
    state: ServerState
    gen: Generation
    framing: Framing
    start: int  # first token index to send (0, or Last-Event-ID + 1 on a resume)
    resumed: bool


def resume_index(last_event_id: str) -> int:
    """The index after `Last-Event-ID`; only a token index (0 or more) is one."""
    if not (last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 18):
        raise RequestRefused(
            400, f"Last-Event-ID must be a token index (0 or more), got {last_event_id[:40]!r}"
        )
    return int(last_event_id) + 1


def open_stream(
    state: ServerState,
    generation_request: GenerationRequest,
    framing_name: str,
    last_event_id: str | None,
) -> Opened | None:
    """The generation to stream (new, or resumed); None when nothing is left to send."""
    framing = framing_named(framing_name, state.settings.inject_pad_bytes, transport="sse")
    if last_event_id is None:
        return Opened(state, start_generation(state, generation_request), framing, 0, False)
    start = resume_index(last_event_id)
    if generation_request.stream_id is None:
        return None
    gen = find_generation(state, generation_request.stream_id)
    if start > len(gen.texts):
        raise RequestRefused(
            400, f"Last-Event-ID {start - 1} is past the tokens sent so far ({len(gen.texts)})"
        )
    if gen.done and start >= len(gen.texts):
        return None
    return Opened(state, gen, framing, start, True)


async def events(opened: Opened) -> AsyncGenerator[bytes, None]:
    stream = framed_batches(
        opened.gen,
        opened.framing,
        opened.state.source.model,
        opened.start,
        opened.state.settings.resume_grace_s,
        opened.resumed,
    )
    numbered = opened.framing.event_ids
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            for m in batch:  # a body chunk each: the bytes on the wire never depend on timing
                yield encode_event(
                    m.payload, str(m.index) if numbered and m.index is not None else None
                )


def respond(opened: Opened | None) -> Response:
    if opened is None:
        return Response(status_code=NOTHING_LEFT)
    streaming = bool(opened.state.settings.streaming_headers)
    headers = response_headers(opened.framing, "sse")
    return PushResponse(
        events(opened), media_type=MEDIA_TYPE, headers=headers, streaming_headers=streaming
    )


@router.post("/v1/sse")
async def sse_post(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
    framing: str = Query("json"),
    stream: str | None = Query(None, description="the stream's id, to resume it"),
    last_event_id: str | None = Header(None),
) -> Response:
    state = state_of(request)
    if stream is not None:
        generation_request = parse_generation_request(
            {**generation_request.to_json(), "stream_id": stream}, state.settings
        )
    return respond(open_stream(state, generation_request, framing, last_event_id))


@router.get("/v1/sse")
async def sse_get(
    request: Request,
    seed: int = Query(0, ge=0, le=MAX_SEED),
    max_tokens: int | None = Query(None, ge=1),
    prompt: str = Query(""),
    stream: str | None = Query(None, description="stream id (to name it, or to resume it)"),
    framing: str = Query("json"),
    last_event_id: str | None = Header(None),
) -> Response:
    body = {"seed": seed, "max_tokens": max_tokens, "prompt": prompt, "stream_id": stream}
    state = state_of(request)
    given = {k: v for k, v in body.items() if v is not None}
    generation_request = parse_generation_request(given, state.settings)
    return respond(open_stream(state, generation_request, framing, last_event_id))
