"""Chunked HTTP client logic: `POST /v1/chunked`, NDJSON lines decoded by `wire.ndjson`."""

from __future__ import annotations

from clients.exchange import HTTPCall
from clients.http_stream import HTTPStream, http_stream_exchange
from clients.interface import StreamResult
from wire.framing import Framing
from wire.messages import GenerationRequest
from wire.ndjson import MEDIA_TYPE, LineDecoder
from wire.raw import TextPieces


def resume_call(framing: Framing, request: GenerationRequest, result: StreamResult) -> HTTPCall:
    """`?stream=ID&from=K`: the tokens from the next index on, no body needed."""
    params: dict[str, str | int] = {
        "framing": framing.name,
        "stream": result.stream_id,
        "from": result.next_index(),
    }
    return HTTPCall("POST", "/v1/chunked", params=params, headers={"accept": MEDIA_TYPE})


CHUNKED_STREAM = HTTPStream(
    "chunked", "/v1/chunked", MEDIA_TYPE, LineDecoder, resume_call, undelimited=TextPieces
)
exchange = http_stream_exchange(CHUNKED_STREAM)
