"""WebSocket: `/v1/ws`. The client sends the request as one JSON text message (the request
fields plus an optional `"framing"`); the server sends one text message per token, then the
framing's terminal message(s), then closes. `{"resume": ID, "from": K}` as the first
message continues generation ID at token K instead (no start messages).

A request with `"keep_open": true` (a conversation's turn, as OpenAI's Responses API
WebSocket mode keeps one connection for many responses) leaves the connection open after
its terminal message: the client's next request message, within `idle_timeout_s` (the
tool's time), starts the next stream on the same connection; none within it, and the
server closes.

A bad first message (not JSON, not an object, binary, a refused request), or none within
`request_timeout_s`, gets `{"error": ..}` and close code 1008. The server keeps reading while
it sends, so a client that leaves is noticed at once, before the first token too: a close
frame means the client
left for good (the generation is cancelled now), a connection that just drops leaves it
`resume_grace_s` to come back.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from errors import ProtocolError, RequestRefused
from servers.exchange import WEBSOCKET, Message, Route, SocketPeer
from servers.generation import Generation
from servers.request_parsing import framing_named, parse_generation_request
from servers.state import ServerState, find_generation, start_generation, state_of
from servers.streaming import framed_batches
from wire.framing import Framing
from wire.messages import dumps, loads

NAME = "websocket"  # as the registry names this transport
router = APIRouter(tags=[NAME])

POLICY_VIOLATION = 1008
CLOSED_BY_CLIENT = (1000, 1001)  # normal closure, going away: the client left on purpose
RESUME_FIELDS = ("resume", "from")  # and "framing", which every first message may carry
KEEP_OPEN = "keep_open"  # a request's field: the connection stays open for the next request
# what sending to or closing a socket whose client left raises, on the stacks served
GONE = (WebSocketDisconnect, RuntimeError, OSError, ConnectionError)


@dataclass(frozen=True, slots=True)
class Opened:
    gen: Generation
    framing: Framing
    start: int
    resumed: bool
    keep_open: bool = False


def open_stream(state: ServerState, text: str | None, transport: str = NAME) -> Opened:
    """The first message's stream: a new generation, or a resumed one (`transport`: whose
    carriage the framing must travel on)."""
    if text is None:
        raise ProtocolError("the first message must be a JSON text message, not binary")
    body = loads(text)
    if not isinstance(body, dict):
        raise ProtocolError("the first message must be a JSON object")
    name = str(body.pop("framing", "json"))
    framing = framing_named(state, name, transport)
    if "resume" not in body:
        keep_open = body.pop(KEEP_OPEN, False)
        if not isinstance(keep_open, bool):
            raise ProtocolError(f"{KEEP_OPEN} must be true or false")
        return Opened(
            start_generation(state, parse_generation_request(body, state.settings)),
            framing,
            0,
            False,
            keep_open,
        )
    unknown = sorted(set(body) - set(RESUME_FIELDS))
    if unknown:
        raise ProtocolError(
            f"a resume message takes only {', '.join(RESUME_FIELDS)} and framing; got {unknown}"
        )
    stream_id, start = body.get("resume"), body.get("from")
    if (
        not isinstance(stream_id, str)
        or not isinstance(start, int)
        or isinstance(start, bool)
        or start < 0
    ):
        raise ProtocolError('a resume is {"resume": "<stream id>", "from": <token index >= 0>}')
    gen = find_generation(state, stream_id)
    if start > len(gen.texts):
        raise RequestRefused(400, f"from={start} is past the tokens sent so far ({len(gen.texts)})")
    return Opened(gen, framing, start, True)


async def send_stream(peer: SocketPeer, state: ServerState, opened: Opened) -> None:
    grace = state.settings.resume_grace_s
    stream = framed_batches(
        opened.gen, opened.framing, state.source.model, opened.start, grace, opened.resumed
    )
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            for message in batch:  # one WebSocket message each
                await peer.send_text(message.payload)
    if not opened.keep_open:
        await peer.close()


async def until_client_leaves(peer: SocketPeer) -> int:
    """Read (and ignore) what the client sends until it leaves; its close code."""
    while True:
        message = await peer.receive()
        if message.closed is not None:
            return message.closed


async def refuse(peer: SocketPeer, message: str) -> None:
    """`{"error": ..}` and close code 1008; a client that already left gets nothing."""
    with contextlib.suppress(*GONE):
        await peer.send_text(dumps({"error": message}))
        await peer.close(POLICY_VIOLATION)


async def session(state: ServerState, peer: SocketPeer, transport: str = NAME) -> None:
    """One accepted WebSocket, on any stack: its first message opens the stream, which is
    sent while the client is watched for leaving (module docstring); a request that keeps
    the connection open is followed by the next one, on the same connection. WebTransport's
    streams run it too (`transport`: `servers/webtransport.py`)."""
    timeout_s = state.settings.request_timeout_s
    try:
        try:
            first = await asyncio.wait_for(peer.receive(), timeout_s)
        except TimeoutError:
            raise ProtocolError(f"no request within request_timeout_s ({timeout_s:g} s)") from None
        if first.closed is not None:
            return
        opened = open_stream(state, first.text, transport)
    except (ProtocolError, RequestRefused) as exc:
        await refuse(peer, str(exc))
        return
    while opened.keep_open:
        following = await one_of_many(peer, state, opened)
        if following is None:
            return
        try:
            opened = open_stream(state, following.text, transport)
        except (ProtocolError, RequestRefused) as exc:
            await refuse(peer, str(exc))
            return
    await only_one(peer, state, opened)


async def only_one(peer: SocketPeer, state: ServerState, opened: Opened) -> None:
    """The connection's one stream, sent while the client is watched for leaving."""
    sender = asyncio.create_task(send_stream(peer, state, opened))
    watcher = asyncio.create_task(until_client_leaves(peer))
    done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if watcher in done:
        await stop_for_leaver(sender, watcher.result(), opened)
        return
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError, *GONE):
        await watcher
    with contextlib.suppress(*GONE):
        sender.result()
    with contextlib.suppress(*GONE):
        await peer.close()


async def stop_for_leaver(sender: asyncio.Task[None], code: int, opened: Opened) -> None:
    """The client left (close `code`) while its stream was sent: stop sending; a close frame
    means it left for good (the generation is cancelled now)."""
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, *GONE):
        await sender
    if code in CLOSED_BY_CLIENT:
        opened.gen.reader_left(0.0)


async def one_of_many(peer: SocketPeer, state: ServerState, opened: Opened) -> Message | None:
    """A stream on a connection kept open: sent while the client's next message is awaited
    (never cancelled mid-read: the next request may be in it). Returns that message when it
    is a request; None when the client left, or sent nothing within `idle_timeout_s` of
    the stream's end (then the server closes)."""
    sender = asyncio.create_task(send_stream(peer, state, opened))
    listener = asyncio.create_task(peer.receive())
    done, _ = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    left = listener.result().closed if listener in done else None
    if left is not None:
        await stop_for_leaver(sender, left, opened)
        return None
    try:
        await sender  # a request sent before the stream ended waits for its end
    except GONE:
        listener.cancel()
        return None
    try:
        following = await asyncio.wait_for(listener, state.settings.idle_timeout_s)
    except TimeoutError:
        with contextlib.suppress(*GONE):
            await peer.close()
        return None
    return following if following.closed is None else None


class StarletteSocket:
    """Starlette's WebSocket as a `SocketPeer`."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> Message:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return Message(closed=int(message.get("code", 1006)))
        return Message(text=message.get("text"))

    async def send_text(self, text: str) -> None:
        await self.websocket.send_text(text)

    async def close(self, code: int = 1000) -> None:
        if self.websocket.application_state != WebSocketState.DISCONNECTED:
            await self.websocket.close(code=code)


@router.websocket("/v1/ws")
async def websocket_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    await session(state_of(websocket), StarletteSocket(websocket))


ROUTES = (Route(WEBSOCKET, "/v1/ws", socket=session),)
