"""Out-of-band endpoints for the driver: each stream's server-side emit timeline.

These are not transport traffic: the driver fetches them after a measured phase, so
they count in neither wire bytes nor the phase's server CPU.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from errors import ProtocolError, RequestRefused
from servers.request_parsing import read_body
from servers.responses import json_response
from servers.state import find_generation, state_of
from wire.messages import loads

router = APIRouter(tags=["timeline"])


@router.get("/v1/streams/{stream_id}/timeline")
async def timeline(stream_id: str, request: Request, texts: bool = Query(False)) -> Response:
    return json_response(find_generation(state_of(request), stream_id).timeline(texts))


@router.post("/v1/timelines")
async def timelines(request: Request) -> Response:
    """Body `{"ids": [...], "texts": bool, "drop": bool}`: many timelines in one request;
    `drop` forgets the finished ones afterwards."""
    try:
        body = loads(await read_body(request, starts_work=False))
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RequestRefused(400, 'body must be {"ids": [stream ids], "texts": bool, "drop": bool}')
    state = state_of(request)
    found, missing = [], []
    for stream_id in ids:
        gen = state.generations.find(stream_id, state.principal)
        if gen is None:
            missing.append(stream_id)
            continue
        found.append(gen.timeline(bool(body.get("texts"))))
        if body.get("drop") and gen.done:
            state.generations.forget(gen)
    return json_response({"timelines": found, "missing": missing})
