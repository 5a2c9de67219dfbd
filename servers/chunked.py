"""Chunked HTTP: `POST /v1/chunked` answers with `Transfer-Encoding: chunked`, one chunk per
message, each message one NDJSON line in the requested framing.

`POST /v1/chunked?stream=ID&from=K` resumes generation ID at token K (no body needed): the
tokens from K on, then the end, without the framing's start messages. A dropped reader's
generation waits `resume_grace_s` for such a resume before it is cancelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from fastapi import APIRouter, Query, Request, Response

from errors import RequestRefused
from servers.exchange import Answer, Call, Route, query_int
from servers.generation import Generation
from servers.push_response import answer_response
from servers.request_parsing import (
    call_body,
    decoded_body,
    framing_named,
    parse_generation_request,
    read_body,
)
from servers.state import ServerState, find_generation, start_generation, state_of
from servers.streaming import framed_batches, push_answer, response_headers
from wire.carriages import LINES
from wire.framing import Framing
from wire.ndjson import MEDIA_TYPE, encode_line

NAME = "chunked"  # as the registry names this transport
KEEP_ALIVE = b"\n"  # a blank line: NDJSON readers skip it (`wire.ndjson.LineDecoder`)
router = APIRouter(tags=[NAME])


async def chunks(
    state: ServerState, gen: Generation, framing: Framing, start: int, resumed: bool
) -> AsyncGenerator[bytes, None]:
    settings = state.settings
    stream = framed_batches(
        gen,
        framing,
        state.source.model,
        start,
        settings.resume_grace_s,
        resumed,
        heartbeat_s=settings.heartbeat_s if framing.boundaries else 0.0,
    )
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            if not batch:
                yield KEEP_ALIVE
            for m in batch:  # a body chunk each: the bytes on the wire never depend on timing
                if framing.boundaries:
                    yield encode_line(m.payload)
                elif m.payload:  # raw: the text as it comes (an empty chunk ends a body)
                    yield m.payload.encode()


def answer(
    state: ServerState, body: bytes, framing: str, stream: str | None, start: int | None
) -> Answer:
    """A new stream (neither `stream` nor `start`: `body` is its request), or a resume (its
    body, if any, a JSON object too)."""
    request = decoded_body(body)
    codec = framing_named(state, framing, NAME)
    headers = response_headers(codec, LINES)
    if stream is None and start is None:
        gen = start_generation(state, parse_generation_request(request, state.settings))
        return push_answer(chunks(state, gen, codec, 0, False), MEDIA_TYPE, state.settings, headers)
    if stream is None or start is None:
        raise RequestRefused(400, "a resume needs both ?stream=ID and &from=K")
    gen = find_generation(state, stream)
    if start > len(gen.texts):
        raise RequestRefused(400, f"from={start} is past the tokens sent so far ({len(gen.texts)})")
    return push_answer(chunks(state, gen, codec, start, True), MEDIA_TYPE, state.settings, headers)


@router.post("/v1/chunked")
async def chunked(
    request: Request,
    framing: str = Query("json"),
    stream: str | None = Query(None, description="resume this stream (with `from`)"),
    start: int | None = Query(None, alias="from", ge=0, description="resume at this token"),
) -> Response:
    starts = stream is None and start is None  # a resume starts no work: it needs no body
    body = await read_body(request, starts_work=starts)
    return answer_response(answer(state_of(request), body, framing, stream, start))


async def _chunked(call: Call) -> Answer:
    stream, start = call.query.get("stream"), query_int(call, "from", None, ge=0)
    body = call_body(call, starts_work=stream is None and start is None)
    return answer(call.state, body, call.query.get("framing", "json"), stream, start)


ROUTES = (Route("POST", "/v1/chunked", _chunked),)
