"""Server-Sent Events framing as pure functions over bytes: encode one event, decode incrementally.

Encoding is FastAPI's own `format_sse_event` (the function `fastapi.sse` uses on the server),
so the tests exercise exactly the bytes the server sends. Decoding reuses httpx-sse's
spec-following line and event decoders; this module only adds the incremental UTF-8 step so
a multi-byte character split across reads is never mangled.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from fastapi.sse import format_sse_event
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from errors import ProtocolError

MEDIA_TYPE = "text/event-stream"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    id: str
    event: str


def encode_event(data: str, event_id: str | None = None, event: str | None = None) -> bytes:
    """One SSE event. `data` may contain newlines: each line becomes its own `data:` field."""
    return format_sse_event(data_str=data, id=event_id, event=event)


class SSEStreamDecoder:
    """Feed raw bytes as they arrive; get back the events those bytes complete."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._lines = SSELineDecoder()
        self._events = SSEDecoder()
        self._has_data = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        text = self._text(data, final=False)
        if not text:
            return []
        return self._decode_lines(self._lines.decode(text))

    def close(self) -> list[SSEEvent]:
        """End of stream: flush what is buffered (a final event must still end in a blank line)."""
        text = self._text(b"", final=True)
        lines = self._lines.decode(text) if text else []
        return self._decode_lines(lines + self._lines.flush())

    def _text(self, data: bytes, final: bool) -> str:
        try:
            return self._utf8.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"event stream is not valid UTF-8: {exc}") from exc

    def _decode_lines(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if line.startswith("data"):
                self._has_data = True
            sse = self._events.decode(line)
            if sse is None:
                continue
            # The spec dispatches nothing when no data field came (a keep-alive comment after
            # an event with an id); httpx-sse would hand out an empty event (httpx-sse #35).
            if self._has_data:
                events.append(SSEEvent(data=sse.data, id=sse.id, event=sse.event))
            self._has_data = False
        return events
