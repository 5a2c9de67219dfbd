"""Short and long polling: one endpoint pair, as in the wire protocol.

`POST /v1/streams` starts a generation and answers `{"id"}`. `GET /v1/streams/{id}?offset=k`
answers at once with the tokens from k on (short polling); adding `&wait=SECONDS` holds the
request until a token past k exists, the stream ends, or the wait runs out (long polling).
The two differ only in that one parameter, so they share this module. An offset beyond the
tokens produced so far is refused with 400, running or ended: no client can have read them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from errors import RequestRefused
from servers.exchange import Answer, Call, Route, json_answer, query_float, query_int
from servers.request_parsing import body_generation_request, call_generation_request
from servers.responses import whole_response
from servers.state import ServerState, find_generation, start_generation, state_of
from wire.messages import GenerationRequest
from wire.poll import encode_batch

router = APIRouter(tags=["polling"])


def created(state: ServerState, generation_request: GenerationRequest) -> Answer:
    gen = start_generation(state, generation_request)
    return json_answer({"id": gen.id}, status=201)


async def polled(state: ServerState, stream_id: str, offset: int, wait: float) -> Answer:
    if wait > state.settings.max_long_poll_wait_s:
        raise RequestRefused(
            400, f"wait must be at most {state.settings.max_long_poll_wait_s} seconds"
        )
    gen = find_generation(state, stream_id)
    if offset > len(gen.texts):  # the same answer whether the stream runs or has ended
        raise RequestRefused(
            400, f"offset {offset} is past the tokens produced so far ({len(gen.texts)})"
        )
    if wait > 0:
        with gen.reading():  # a held poll is a reader: the idle reaper leaves it alone
            await gen.wait_beyond(offset, wait)
    texts = gen.texts[offset:]
    pad = state.settings.inject_pad_bytes
    call = gen.request.tool_call() if gen.done else None
    return json_answer(encode_batch(offset, texts, gen.done, gen.error, pad, call))


@router.post("/v1/streams", status_code=201)
async def create_stream(
    request: Request,
    generation_request: Annotated[GenerationRequest, Depends(body_generation_request)],
) -> Response:
    return whole_response(created(state_of(request), generation_request))


@router.get("/v1/streams/{stream_id}")
async def poll_stream(
    stream_id: str,
    request: Request,
    offset: int = Query(0, ge=0, description="index of the first token wanted"),
    wait: float = Query(0.0, ge=0, description="long poll: seconds to hold for a new token"),
) -> Response:
    return whole_response(await polled(state_of(request), stream_id, offset, wait))


async def _create(call: Call) -> Answer:
    return created(call.state, call_generation_request(call))


async def _poll(call: Call) -> Answer:
    offset = query_int(call, "offset", 0, ge=0) or 0
    wait = query_float(call, "wait", 0.0, ge=0)
    return await polled(call.state, call.params["stream_id"], offset, wait)


ROUTES = (Route("POST", "/v1/streams", _create), Route("GET", "/v1/streams/{stream_id}", _poll))
