"""SSE client logic: `POST /v1/sse`, events decoded by `wire.sse`."""

from __future__ import annotations

from clients.http_stream import HTTPStream, http_stream_exchange
from wire.sse import MEDIA_TYPE, SSEStreamDecoder


class SSEPayloads:
    """The `data` of each complete event; comments and keep-alives produce nothing."""

    def __init__(self) -> None:
        self._events = SSEStreamDecoder()

    def feed(self, data: bytes) -> list[str]:
        return [event.data for event in self._events.feed(data)]

    def close(self) -> list[str]:
        return [event.data for event in self._events.close()]


SSE_STREAM = HTTPStream(
    "sse", "/v1/sse", MEDIA_TYPE, SSEPayloads, headers=(("cache-control", "no-store"),)
)
exchange = http_stream_exchange(SSE_STREAM)
