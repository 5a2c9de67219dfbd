"""The `echo` transport's server side: `POST /test/echo?framing=NAME` streams a new
generation as NDJSON lines, one line per message of the requested framing
(tests/plugins/echo_transport.py is its registry entry, echo_client.py its client side).

It does what every push endpoint does: `framed_batches` runs the stream (the framing's
start messages, each token as the generation yields it, the end messages; the generation
is abandoned if the reader leaves early), and the endpoint only delimits each payload, here
as a line. `PushResponse` sends it with the streaming headers and closes the stream the
moment the client leaves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from errors import RequestRefused
from servers.generation import Generation
from servers.push_response import PushResponse
from servers.request_parsing import body_generation_request, framing_named
from servers.state import start_generation, state_of
from servers.streaming import framed_batches, response_headers
from wire.carriages import LINES
from wire.framing import Framing
from wire.messages import GenerationRequest
from wire.ndjson import MEDIA_TYPE, encode_line

NAME = "echo"  # as its registry entry names this transport
echo_router = APIRouter(tags=[NAME])


async def echo_lines(gen: Generation, framing: Framing, model: str) -> AsyncGenerator[bytes, None]:
    async with contextlib.aclosing(framed_batches(gen, framing, model)) as batches:
        async for batch in batches:
            for message in batch:  # a body chunk each: the bytes never depend on timing
                yield encode_line(message.payload)


@echo_router.post("/test/echo")
async def echo(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
    framing: str = Query("json"),
) -> Response:
    state = state_of(request)
    # 400 for a framing that cannot travel as lines; padded when the server's test aid asks
    codec = framing_named(state, framing, NAME)
    if not codec.boundaries:  # `raw` has no messages to put on lines (servers/chunked.py can)
        raise RequestRefused(400, f"echo carries framings with token boundaries, not {framing}")
    gen = start_generation(state, generation_request)  # 409 when the stream id is taken
    return PushResponse(
        echo_lines(gen, codec, state.source.model),
        media_type=MEDIA_TYPE,
        headers=response_headers(codec, LINES),  # a framing's own Content-Type and headers
        streaming_headers=bool(state.settings.streaming_headers),
    )
