"""WebTransport client logic: a session and one bidirectional stream per stream, the
request as the first message, one message per token, the framing's terminal message last;
a drop resumes on a new session by stream id and index. The messages are the WebSocket's
(`clients.websocket.messages`); only what carries them differs. No I/O here."""

from __future__ import annotations

from clients.exchange import Exchange, OpenWebTransport
from clients.interface import ClientSettings, StreamResult
from clients.websocket import messages
from wire.messages import GenerationRequest

PATH = "/v1/wt"


def exchange(
    settings: ClientSettings, request: GenerationRequest, result: StreamResult
) -> Exchange:
    """Each stream (a conversation's turn too) on a session of its own."""
    yield from messages(settings, request, result, OpenWebTransport(PATH))
