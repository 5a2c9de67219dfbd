"""Server-Sent Events: `POST /v1/sse` takes the request as JSON; `GET /v1/sse?seed=..` serves
browsers' EventSource. Events are encoded by `wire.sse`.

Under a framing with `event_ids`, every event a client can see first carries an id: token
events `id: i`, the framing's start messages (the `openai` role chunk) `id: -1`, "no token
yet"; terminal events none. So an EventSource that drops after any event reconnects with a
`Last-Event-ID`. The stream ends with the framing's explicit terminal event
(`{"done":true,..}` or `[DONE]`), so a client never needs to reconnect to learn it is over.

Reconnects name the stream (`?stream=ID`, or `stream_id` in a POST body):

- with `Last-Event-ID: i`, the stream resumes after token i (`-1`: at token 0, without the
  start messages again) while the generation exists (a dropped reader's generation waits
  `resume_grace_s` for it);
- without it (the client saw no id: every event that can come first carries one, so it
  saw no event), the stream is sent again from the start, if it is the caller's, was made
  for the same request (seed, max_tokens, prompt), and is still running or ended at most
  `resume_grace_s` ago (a short stream may have been written whole before the drop, for a
  client that read none of it); otherwise its id is taken (409), as for any new request
  that names a stream in use.

A reconnect that has nothing left to send gets `204 No Content`, which per the SSE
specification makes EventSource stop reconnecting: a stream that has delivered everything,
and a reconnect with `Last-Event-ID` that names no stream (without `?stream=` the server
cannot know which generation it continues, and must never start a second one). Framings
without `event_ids` (`vercel-ui`, `raw`) send no ids: an EventSource reconnect on them
replays the stream from the start.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from errors import RequestRefused
from servers.exchange import Answer, Call, Route, query_int
from servers.generation import Generation, prompt_digest
from servers.push_response import answer_response
from servers.request_parsing import (
    body_generation_request,
    call_generation_request,
    framing_named,
    parse_generation_request,
)
from servers.state import ServerState, find_generation, start_generation, state_of
from servers.streaming import framed_batches, push_answer, response_headers
from wire.carriages import EVENTS
from wire.framing import Framing
from wire.messages import MAX_SEED, GenerationRequest
from wire.sse import KEEP_ALIVE, MEDIA_TYPE, encode_event

NAME = "sse"  # as the registry names this transport
router = APIRouter(tags=[NAME])

NOTHING_LEFT = 204
NO_TOKEN_YET = "-1"  # the event id of the start messages, and a Last-Event-ID resuming at 0


@dataclass(frozen=True, slots=True)
class Opened:
    state: ServerState
    gen: Generation
    framing: Framing
    start: int  # first token index to send (0, or Last-Event-ID + 1 on a resume)
    resumed: bool


def resume_index(last_event_id: str) -> int:
    """The index after `Last-Event-ID`: a token index (0 or more), or -1 (no token yet)."""
    if last_event_id == NO_TOKEN_YET:
        return 0
    if not (last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 18):
        raise RequestRefused(
            400,
            "Last-Event-ID must be a token index (0 or more) or -1 (no token yet), "
            f"got {last_event_id[:40]!r}",
        )
    return int(last_event_id) + 1


def asked_by(gen: Generation, request: GenerationRequest) -> bool:
    """`request` asks for what `gen` makes (seed, max_tokens and prompt; the stream id
    aside): a reconnect repeats the request it reconnects. An ended generation keeps only
    its prompt's digest."""
    made_for = gen.request
    if request.seed != made_for.seed or request.max_tokens != made_for.max_tokens:
        return False
    if not gen.done:
        return request.prompt == made_for.prompt
    return (prompt_digest(request.prompt) if request.prompt else b"") == gen.prompt_hash


def rejoined(state: ServerState, request: GenerationRequest) -> Generation | None:
    """The generation a request without `Last-Event-ID` reconnects to from its start: the
    caller's stream it names, made for the same request, running or ended within the
    resume grace. None: there is none (a new stream, or an id in use: `start_generation`
    tells which)."""
    if request.stream_id is None:
        return None
    gen = state.generations.get(request.stream_id, state.principal)
    grace = state.settings.resume_grace_s
    if gen is None or (gen.finished_at is not None and time.monotonic() - gen.finished_at > grace):
        return None
    if not asked_by(gen, request):
        raise RequestRefused(
            409,
            f"stream {request.stream_id!r} already exists, made for another request "
            "(a reconnect repeats its seed, max_tokens and prompt)",
        )
    return gen


def open_stream(
    state: ServerState,
    generation_request: GenerationRequest,
    framing_name: str,
    last_event_id: str | None,
) -> Opened | None:
    """The generation to stream (new, rejoined or resumed); None when nothing is left to send."""
    framing = framing_named(state, framing_name, NAME)
    if "no_terminal" in state.settings.faults:  # a naive server (servers/faults.py): a
        last_event_id = None  # reconnect is a new request, whatever it says it continues
    if last_event_id is None:
        gen = rejoined(state, generation_request) or start_generation(state, generation_request)
        return Opened(state, gen, framing, 0, False)
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


def bare(payload: str, event_id: str | None = None, event: str | None = None) -> bytes:
    """The `no_data_prefix` fault (servers/faults.py): the payload alone, as lanarky wrote it."""
    return payload.encode()


async def events(opened: Opened) -> AsyncGenerator[bytes, None]:
    settings = opened.state.settings
    stream = framed_batches(
        opened.gen,
        opened.framing,
        opened.state.source.model,
        opened.start,
        settings.resume_grace_s,
        opened.resumed,
        settings.heartbeat_s,
    )
    numbered = opened.framing.event_ids
    named = opened.framing.event_name  # the framing's `event:` field, if it has one
    encode = bare if "no_data_prefix" in settings.faults else encode_event
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            if not batch:
                yield KEEP_ALIVE
            for m in batch:  # a body chunk each: the bytes on the wire never depend on timing
                event = None if named is None else named(m.payload)
                if not numbered:
                    yield encode(m.payload, None, event)
                elif m.index is not None:
                    yield encode(m.payload, str(m.index), event)
                else:  # start messages carry NO_TOKEN_YET; end messages no id
                    yield encode(m.payload, NO_TOKEN_YET if m.start else None, event)


def answer(opened: Opened | None) -> Answer:
    if opened is None:
        return Answer(NOTHING_LEFT, media_type=None)
    headers = response_headers(opened.framing, EVENTS)
    return push_answer(events(opened), MEDIA_TYPE, opened.state.settings, headers)


def with_stream_id(
    state: ServerState, generation_request: GenerationRequest, stream: str | None
) -> GenerationRequest:
    """The request, naming the stream `?stream=` names (a reconnect by POST)."""
    if stream is None:
        return generation_request
    fields = {**generation_request.to_json(), "stream_id": stream}
    return parse_generation_request(fields, state.settings)


def query_request(
    state: ServerState, seed: int, max_tokens: int | None, prompt: str, stream: str | None
) -> GenerationRequest:
    """An EventSource's request, from its query."""
    body = {"seed": seed, "max_tokens": max_tokens, "prompt": prompt, "stream_id": stream}
    given = {k: v for k, v in body.items() if v is not None}
    return parse_generation_request(given, state.settings)


@router.post("/v1/sse")
async def sse_post(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
    framing: str = Query("json"),
    stream: str | None = Query(None, description="the stream's id, to resume it"),
    last_event_id: str | None = Header(None),
) -> Response:
    state = state_of(request)
    asked = with_stream_id(state, generation_request, stream)
    return answer_response(answer(open_stream(state, asked, framing, last_event_id)))


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
    state = state_of(request)
    asked = query_request(state, seed, max_tokens, prompt, stream)
    return answer_response(answer(open_stream(state, asked, framing, last_event_id)))


async def _post(call: Call) -> Answer:
    asked = with_stream_id(call.state, call_generation_request(call), call.query.get("stream"))
    framing = call.query.get("framing", "json")
    return answer(open_stream(call.state, asked, framing, call.headers.get("last-event-id")))


async def _get(call: Call) -> Answer:
    seed = query_int(call, "seed", 0, ge=0, le=MAX_SEED) or 0
    max_tokens = query_int(call, "max_tokens", None, ge=1)
    prompt, stream = call.query.get("prompt", ""), call.query.get("stream")
    asked = query_request(call.state, seed, max_tokens, prompt, stream)
    framing = call.query.get("framing", "json")
    return answer(open_stream(call.state, asked, framing, call.headers.get("last-event-id")))


ROUTES = (Route("POST", "/v1/sse", _post), Route("GET", "/v1/sse", _get))
