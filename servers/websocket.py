"""WebSocket: `/v1/ws`. The client sends the request as one JSON text message (the request
fields plus an optional `"framing"`); the server sends one text message per token, then the
framing's terminal message(s), then closes. A bad request gets `{"error": ..}` and close
code 1008."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from errors import ProtocolError, RequestRefused
from servers.common import (
    abandon,
    framing_named,
    parse_generation_request,
    start_generation,
    state_of,
)
from wire.messages import dumps, loads

router = APIRouter(tags=["websocket"])

POLICY_VIOLATION = 1008


@router.websocket("/v1/ws")
async def websocket_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    state = state_of(websocket)
    try:
        body = loads(await websocket.receive_text())
        if not isinstance(body, dict):
            raise ProtocolError("the first message must be a JSON object")
        framing = framing_named(str(body.pop("framing", "json")), state.settings.inject_pad_bytes)
        gen = start_generation(state, parse_generation_request(body))
    except (ProtocolError, RequestRefused) as exc:
        await websocket.send_text(dumps({"error": str(exc)}))
        await websocket.close(code=POLICY_VIOLATION)
        return
    except WebSocketDisconnect:
        return
    model = state.source.model
    complete = False
    try:
        for payload in framing.encode_start(gen.id, model):
            await websocket.send_text(payload)
        async for i, text in gen.follow():
            await websocket.send_text(framing.encode_token(gen.id, model, i, text))
        for payload in framing.encode_end(gen.id, model, len(gen.texts), gen.error):
            await websocket.send_text(payload)
        complete = True
        await websocket.close()
    except WebSocketDisconnect:
        pass
    finally:
        if not complete:
            abandon(gen)
