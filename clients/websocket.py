"""WebSocket client logic: one connection per stream, the request as the first message,
one message per token, the framing's terminal message last. No I/O here."""

from __future__ import annotations

from clients.exchange import RECEIVE, Exchange, OpenWebSocket, SendText
from clients.interface import ClientSettings, StreamResult
from errors import ProtocolViolation, StreamIncomplete
from wire.framing import Framing, get_framing
from wire.messages import GenerationRequest, dumps

PATH = "/v1/ws"


def first_message(framing: Framing, request: GenerationRequest) -> str:
    return dumps({**request.to_json(), "framing": framing.name})


def exchange(
    settings: ClientSettings, request: GenerationRequest, result: StreamResult
) -> Exchange:
    framing = get_framing(settings.framing)
    yield OpenWebSocket(PATH)
    yield SendText(first_message(framing, request))
    while (arrival := (yield RECEIVE)) is not None:
        if not isinstance(arrival.data, str):
            raise ProtocolViolation("expected text messages, got a binary one")
        if result.take([framing.decode(arrival.data)], arrival.now_ns):
            return
    raise StreamIncomplete("the server closed the WebSocket without a terminal message")
