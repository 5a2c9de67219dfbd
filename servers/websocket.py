"""WebSocket: `/v1/ws`. The client sends the request as one JSON text message (the request
fields plus an optional `"framing"`); the server sends one text message per token, then the
framing's terminal message(s), then closes. A bad request gets `{"error": ..}` and close
code 1008."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from errors import ProtocolError, RequestRefused
from servers.request_parsing import framing_named, parse_generation_request
from servers.state import start_generation, state_of
from servers.streaming import framed_stream
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
    try:
        async with contextlib.aclosing(framed_stream(gen, framing, state.source.model)) as framed:
            async for message in framed:
                await websocket.send_text(message.payload)
        await websocket.close()
    except WebSocketDisconnect:
        pass
