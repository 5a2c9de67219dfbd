"""Out-of-band endpoints for the driver: each stream's server-side emit timeline.

These are not transport traffic: the driver fetches them after a measured phase, so
they count in neither wire bytes nor the phase's server CPU.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from errors import ProtocolError, RequestRefused
from servers.exchange import Answer, Call, Route, json_answer, query_bool
from servers.request_parsing import call_body, read_body
from servers.responses import json_response, whole_response
from servers.state import ServerState, find_generation, state_of
from wire.messages import loads

router = APIRouter(tags=["timeline"])


def many(state: ServerState, raw: bytes) -> Answer:
    """Body `{"ids": [...], "texts": bool, "drop": bool}`: many timelines in one request;
    `drop` forgets the finished ones afterwards."""
    try:
        body = loads(raw)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RequestRefused(400, 'body must be {"ids": [stream ids], "texts": bool, "drop": bool}')
    found, missing = [], []
    for stream_id in ids:
        gen = state.generations.find(stream_id, state.principal)
        if gen is None:
            missing.append(stream_id)
            continue
        found.append(gen.timeline(bool(body.get("texts"))))
        if body.get("drop") and gen.done:
            state.generations.forget(gen)
    return json_answer({"timelines": found, "missing": missing})


@router.get("/v1/streams/{stream_id}/timeline")
async def timeline(stream_id: str, request: Request, texts: bool = Query(False)) -> Response:
    return json_response(find_generation(state_of(request), stream_id).timeline(texts))


@router.post("/v1/timelines")
async def timelines(request: Request) -> Response:
    body = await read_body(request, starts_work=False)
    return whole_response(many(state_of(request), body))


async def _timeline(call: Call) -> Answer:
    gen = find_generation(call.state, call.params["stream_id"])
    return json_answer(gen.timeline(query_bool(call, "texts")))


async def _timelines(call: Call) -> Answer:
    return many(call.state, call_body(call, starts_work=False))


ROUTES = (
    Route("GET", "/v1/streams/{stream_id}/timeline", _timeline),
    Route("POST", "/v1/timelines", _timelines),
)
