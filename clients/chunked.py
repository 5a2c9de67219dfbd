"""Chunked HTTP client: `POST /v1/chunked`, NDJSON lines decoded by `wire.ndjson`."""

from __future__ import annotations

from clients.http import HTTPStreamingClient, PayloadDecoder
from wire.ndjson import MEDIA_TYPE, LineDecoder


class ChunkedClient(HTTPStreamingClient):
    transport = "chunked"
    path = "/v1/chunked"
    media_type = MEDIA_TYPE

    def decoder(self) -> PayloadDecoder:
        return LineDecoder()
