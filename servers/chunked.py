"""Chunked HTTP: `POST /v1/chunked` answers with `Transfer-Encoding: chunked`, one chunk per
message, each message one NDJSON line in the requested framing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from servers.generation import Generation
from servers.request_parsing import body_generation_request, framing_named
from servers.state import start_generation, state_of
from servers.streaming import framed_stream
from wire.framing import Framing
from wire.messages import GenerationRequest
from wire.ndjson import MEDIA_TYPE, encode_line

router = APIRouter(tags=["chunked"])


async def chunks(gen: Generation, framing: Framing, model: str) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(framed_stream(gen, framing, model)) as framed:
        async for message in framed:
            yield encode_line(message.payload)


@router.post("/v1/chunked")
async def chunked(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
    framing: str = Query("json"),
) -> StreamingResponse:
    state = state_of(request)
    codec = framing_named(framing, state.settings.inject_pad_bytes)
    gen = start_generation(state, generation_request)
    return StreamingResponse(
        chunks(gen, codec, state.source.model),
        media_type=MEDIA_TYPE,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
