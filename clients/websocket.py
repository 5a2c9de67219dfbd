"""WebSocket client logic: one connection per stream, the request as the first message,
one message per token, the framing's terminal message last. A conversation's turns share
one connection (the driver keeps it: `clients.sessions`): each turn's request but the
last's asks the server to keep it open. No I/O here."""

from __future__ import annotations

from clients.exchange import RECEIVE, Exchange, OpenWebSocket, OpenWebTransport, SendText
from clients.interface import ClientSettings, StreamResult
from clients.resume import Connection, drop_connection, resumable
from errors import ProtocolViolation, StreamIncomplete
from wire.framing import Framing, get_framing
from wire.messages import GenerationRequest, dumps

PATH = "/v1/ws"


def first_message(framing: Framing, request: GenerationRequest, keep_open: bool = False) -> str:
    """The request message; `keep_open`: the connection stays open for the next one (a
    conversation's turn but its last)."""
    extra = {"keep_open": True} if keep_open else {}
    return dumps({**request.to_json(), "framing": framing.name, **extra})


def resume_message(result: StreamResult) -> str:
    return dumps({"resume": result.stream_id, "from": result.next_index()})


def exchange(
    settings: ClientSettings, request: GenerationRequest, result: StreamResult
) -> Exchange:
    """Open, send the request, read a message per token until the terminal one; when the
    fault plan drops the connection, open a new one and resume by stream id and index."""
    keep_open = result.turn is not None and not result.turn.last
    yield from messages(settings, request, result, OpenWebSocket(PATH), keep_open)


def messages(
    settings: ClientSettings,
    request: GenerationRequest,
    result: StreamResult,
    opening: OpenWebSocket | OpenWebTransport,
    keep_open: bool = False,
) -> Exchange:
    """The message exchange WebSocket and WebTransport share, over what `opening` opens."""
    framing = get_framing(settings.framing)

    def connect(resuming: bool) -> Connection:
        yield opening
        yield SendText(
            resume_message(result) if resuming else first_message(framing, request, keep_open)
        )
        while (arrival := (yield RECEIVE)) is not None:
            if not isinstance(arrival.data, str):
                raise ProtocolViolation("expected text messages, got a binary one")
            if result.take([framing.decode(arrival.data)], arrival.now_ns):
                return None
            if (fault := settings.fault_due(result)) is not None:
                return (yield from drop_connection(fault))
        raise StreamIncomplete(
            "the server closed the WebSocket without a terminal message"
            if isinstance(opening, OpenWebSocket)
            else "the server ended the WebTransport stream without a terminal message"
        )

    yield from resumable(result, connect)
