"""SSE client: `POST /v1/sse`, events decoded by `wire.sse` (httpx-sse's decoders)."""

from __future__ import annotations

from clients.http import HTTPStreamingClient, PayloadDecoder
from wire.sse import MEDIA_TYPE, SSEStreamDecoder


class SSEPayloads:
    """The `data` of each complete event; comments and keep-alives produce nothing."""

    def __init__(self) -> None:
        self._events = SSEStreamDecoder()

    def feed(self, data: bytes) -> list[str]:
        return [event.data for event in self._events.feed(data)]

    def close(self) -> list[str]:
        return [event.data for event in self._events.close()]


class SSEClient(HTTPStreamingClient):
    transport = "sse"
    path = "/v1/sse"
    media_type = MEDIA_TYPE

    def decoder(self) -> PayloadDecoder:
        return SSEPayloads()

    def request_headers(self) -> dict[str, str]:
        return {"accept": MEDIA_TYPE, "cache-control": "no-store"}
