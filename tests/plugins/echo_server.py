"""The `echo` transport's server side: `POST /test/echo` streams the generation as NDJSON
lines in the json framing (tests/plugins/echo_transport.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from servers.generation import Generation
from servers.request_parsing import body_generation_request
from servers.state import start_generation, state_of
from servers.streaming import framed_batches
from wire.framing import JSON
from wire.messages import GenerationRequest
from wire.ndjson import encode_line

echo_router = APIRouter()


async def echo_lines(gen: Generation, model: str) -> AsyncIterator[bytes]:
    async with contextlib.aclosing(framed_batches(gen, JSON, model)) as batches:
        async for batch in batches:
            yield b"".join(encode_line(m.payload) for m in batch)


@echo_router.post("/test/echo")
async def echo(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
    framing: str = Query("json"),
) -> StreamingResponse:
    state = state_of(request)
    gen = start_generation(state, generation_request)
    return StreamingResponse(echo_lines(gen, state.source.model), media_type="text/x-echo")
