"""`/v1/responses` over WebSocket: the Responses API's WebSocket mode, which the `openai`
package opens with `client.responses.connect()` (its URL is the base URL's, `ws://`, plus
`/responses`). One connection carries a whole agent loop: each `{"type":
"response.create", ...}` message (the POST body's fields; `stream` is implicit) starts a
response, whose events (`wire.openai_responses`) are sent one per message, exactly as the
POST endpoint streams them; the next `response.create` (typically after the tool ran, with
`previous_response_id`) starts the next one on the same connection. A message sent while a
response streams waits for its end (responses run one at a time: the mode's `stream_id`
lanes are not modelled). A bad message gets an `error` event, and the connection stays
open. The server closes a connection idle for `idle_timeout_s` between responses.

Served by the FastAPI stacks (the neutral route table's WebSocket routes are tokenwire's
own `/v1/ws` only).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket

from errors import ProtocolError, RequestRefused
from servers.exchange import Message, SocketPeer
from servers.openai_responses import PATH, ResponsesCall, framing_of, responses_call
from servers.state import ServerState, state_of
from servers.streaming import framed_batches
from servers.websocket import GONE, StarletteSocket
from wire.messages import dumps, loads

CREATE = "response.create"
router = APIRouter(tags=["openai"])


def error_event(message: str, code: str = "invalid_request_error") -> str:
    """An `error` event, as the Responses API sends one over WebSocket."""
    return dumps({"type": "error", "error": {"type": code, "code": code, "message": message}})


def create_body(text: str | None) -> bytes:
    """The POST body a `response.create` message stands for; ProtocolError if it is none."""
    if text is None:
        raise ProtocolError("messages must be JSON text, not binary")
    body = loads(text)
    if not isinstance(body, dict) or body.get("type") != CREATE:
        raise ProtocolError(f'expected {{"type": "{CREATE}", ...}}, got {text[:80]!r}')
    fields = {k: v for k, v in body.items() if k not in ("type", "stream_id")}
    return dumps({**fields, "stream": True}).encode()


async def send_response(peer: SocketPeer, call: ResponsesCall) -> None:
    stream = framed_batches(call.gen, framing_of(call), call.model)
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            for message in batch:  # one WebSocket message per event
                await peer.send_text(message.payload)


async def session(state: ServerState, peer: SocketPeer) -> None:
    """One connection: responses, one after another, until the client leaves or idles."""
    idle_s = state.settings.idle_timeout_s
    while True:
        try:
            message: Message = await asyncio.wait_for(peer.receive(), idle_s)
        except TimeoutError:
            with contextlib.suppress(*GONE):
                await peer.close()
            return
        if message.closed is not None:
            return
        try:
            call = responses_call(state, create_body(message.text), None)
        except (ProtocolError, RequestRefused) as exc:
            await peer.send_text(error_event(str(exc)))
            continue
        try:
            await send_response(peer, call)
        except GONE:
            call.gen.reader_left(0.0)
            return


@router.websocket(PATH)
async def responses_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await session(state_of(websocket), StarletteSocket(websocket))
