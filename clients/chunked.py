"""Chunked HTTP client logic: `POST /v1/chunked`, NDJSON lines decoded by `wire.ndjson`."""

from __future__ import annotations

from clients.http_stream import HTTPStream, http_stream_exchange
from wire.ndjson import MEDIA_TYPE, LineDecoder

CHUNKED_STREAM = HTTPStream("chunked", "/v1/chunked", MEDIA_TYPE, LineDecoder)
exchange = http_stream_exchange(CHUNKED_STREAM)
