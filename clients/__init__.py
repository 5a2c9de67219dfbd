"""Transport clients, registered by name. The server side registers in `servers/app.py`."""

from __future__ import annotations

from collections.abc import Callable

from clients.base import ClientSettings, StreamClient
from clients.chunked import ChunkedClient
from clients.long_poll import LongPollClient
from clients.short_poll import ShortPollClient
from clients.sse import SSEClient
from clients.websocket import WebSocketClient

CLIENTS: dict[str, Callable[[ClientSettings], StreamClient]] = {
    "short_poll": ShortPollClient,
    "long_poll": LongPollClient,
    "sse": SSEClient,
    "chunked": ChunkedClient,
    "websocket": WebSocketClient,
}

TRANSPORTS: tuple[str, ...] = tuple(CLIENTS)
