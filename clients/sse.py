"""SSE client logic: `POST /v1/sse`, events decoded by `wire.sse`."""

from __future__ import annotations

from clients.exchange import HTTPCall
from clients.http_stream import HTTPStream, http_stream_exchange
from clients.interface import StreamResult
from wire.carriages import EVENTS
from wire.framing import Framing
from wire.messages import GenerationRequest
from wire.raw import AS_SSE_DATA
from wire.sse import MEDIA_TYPE, SSEStreamDecoder


class SSEPayloads:
    """The `data` of each complete event; comments and keep-alives produce nothing."""

    def __init__(self) -> None:
        self._events = SSEStreamDecoder()

    def feed(self, data: bytes) -> list[str]:
        return [event.data for event in self._events.feed(data)]

    def close(self) -> list[str]:
        return [event.data for event in self._events.close()]


def resume_call(framing: Framing, request: GenerationRequest, result: StreamResult) -> HTTPCall:
    """Reconnect the way EventSource does: the same request, the stream's id, and the last
    event id received in `Last-Event-ID` (at once: our server sends no `retry:` field)."""
    return HTTPCall(
        "POST",
        "/v1/sse",
        params={"framing": framing.name, "stream": result.stream_id},
        json=request.to_json(),
        headers={
            "accept": MEDIA_TYPE,
            "cache-control": "no-store",
            "last-event-id": str(result.next_index() - 1),
        },
    )


SSE_STREAM = HTTPStream(
    "sse",
    "/v1/sse",
    MEDIA_TYPE,
    SSEPayloads,
    resume=resume_call,
    headers=(("cache-control", "no-store"),),
    pieces=AS_SSE_DATA,  # raw text as SSE data: CR and CRLF arrive as LF
    carriage=EVENTS,
)
exchange = http_stream_exchange(SSE_STREAM)
