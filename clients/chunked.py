"""Chunked HTTP client: `POST /v1/chunked`, NDJSON lines decoded by `wire.ndjson`."""

from __future__ import annotations

from clients.http import HTTPStream, HTTPStreamingClient
from wire.ndjson import MEDIA_TYPE, LineDecoder

CHUNKED_STREAM = HTTPStream("chunked", "/v1/chunked", MEDIA_TYPE, LineDecoder)


class ChunkedClient(HTTPStreamingClient):
    kind = CHUNKED_STREAM
