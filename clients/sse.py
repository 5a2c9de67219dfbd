"""SSE client: `POST /v1/sse`, events decoded by `wire.sse` (httpx-sse's decoders)."""

from __future__ import annotations

from clients.http import HTTPStream, HTTPStreamingClient
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


class SSEClient(HTTPStreamingClient):
    kind = SSE_STREAM
