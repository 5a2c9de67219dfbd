"""Chunked HTTP: `POST /v1/chunked` answers with `Transfer-Encoding: chunked`, one chunk per
message, each message one NDJSON line in the requested framing.

`POST /v1/chunked?stream=ID&from=K` resumes generation ID at token K (no body needed): the
tokens from K on, then the end, without the framing's start messages. A dropped reader's
generation waits `resume_grace_s` for such a resume before it is cancelled.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from errors import RequestRefused
from servers.generation import Generation
from servers.push_response import PushResponse
from servers.request_parsing import framing_named, optional_body_generation_request
from servers.state import ServerState, find_generation, start_generation, state_of
from servers.streaming import framed_batches, response_headers
from wire.framing import Framing
from wire.messages import GenerationRequest
from wire.ndjson import MEDIA_TYPE, encode_line

router = APIRouter(tags=["chunked"])


async def chunks(
    state: ServerState, gen: Generation, framing: Framing, start: int, resumed: bool
) -> AsyncGenerator[bytes, None]:
    grace = state.settings.resume_grace_s
    stream = framed_batches(gen, framing, state.source.model, start, grace, resumed)
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            for m in batch:  # a body chunk each: the bytes on the wire never depend on timing
                if framing.boundaries:
                    yield encode_line(m.payload)
                elif m.payload:  # raw: the text as it comes (an empty chunk ends a body)
                    yield m.payload.encode()


@router.post("/v1/chunked")
async def chunked(
    request: Request,
    generation_request: Annotated[
        GenerationRequest | None, Depends(optional_body_generation_request)
    ],
    framing: str = Query("json"),
    stream: str | None = Query(None, description="resume this stream (with `from`)"),
    start: int | None = Query(None, alias="from", ge=0, description="resume at this token"),
) -> Response:
    state = state_of(request)
    codec = framing_named(framing, state.settings.inject_pad_bytes, transport="chunked")
    streaming = bool(state.settings.streaming_headers)
    headers = response_headers(codec, "chunked")
    if stream is None and start is None:
        gen = start_generation(state, generation_request or GenerationRequest())
        return PushResponse(
            chunks(state, gen, codec, 0, False),
            media_type=MEDIA_TYPE,
            headers=headers,
            streaming_headers=streaming,
        )
    if stream is None or start is None:
        raise RequestRefused(400, "a resume needs both ?stream=ID and &from=K")
    gen = find_generation(state, stream)
    if start > len(gen.texts):
        raise RequestRefused(400, f"from={start} is past the tokens sent so far ({len(gen.texts)})")
    return PushResponse(
        chunks(state, gen, codec, start, True),
        media_type=MEDIA_TYPE,
        headers=headers,
        streaming_headers=streaming,
    )
