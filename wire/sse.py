"""Server-Sent Events as pure functions over bytes: encode one event, decode incrementally.

Both follow the WHATWG HTML standard's "Server-sent events" section (event stream
interpretation): lines end in CRLF, LF or CR; a line starting with `:` is a comment;
`field: value` loses one leading space of the value; `data` lines accumulate, joined by
LF; `id` sets the last event id (kept for later events, as EventSource keeps it); a blank
line dispatches the event, and nothing is dispatched while no `data` field came; an event
not ended by a blank line when the stream closes is dropped; one leading BOM is ignored.

Hand-written rather than taken from a library: the one maintained Python decoder (httpx-sse)
keeps its decoders private and turns a keep-alive comment after an event with an id into an
empty event (its issue #35), and `wire/` imports no web framework or HTTP client. The
encoder writes exactly the bytes FastAPI's `fastapi.sse` writes (tests compare them).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from errors import ProtocolError

MEDIA_TYPE = "text/event-stream"
LINE_END = re.compile(r"\r\n|\r|\n")
BOM = "\ufeff"
KEEP_ALIVE = b": keep-alive\n\n"  # a comment: readers skip it, and it keeps the connection busy


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    id: str  # the last event id (the previous events' when this one carried none)
    event: str  # the event type; `message` when no `event` field came
    retry: int | None = None  # the reconnection time last set by a `retry` field, in ms


def split_lines(text: str) -> list[str]:
    """SSE line terminators only (CRLF, CR, LF), keeping a trailing empty string."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def encode_event(
    data: str,
    event_id: str | None = None,
    event: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """One SSE event. `data` may contain line breaks: each line becomes its own `data:`
    field (a CR or CRLF inside data arrives as LF: SSE cannot carry them)."""
    lines = [f": {line}" for line in split_lines(comment)] if comment is not None else []
    if event is not None:
        lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in split_lines(data)]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    return ("\n".join(lines) + "\n\n").encode()


class SSEStreamDecoder:
    """Feed raw bytes as they arrive; get back the events those bytes complete.

    An event is handed out as soon as the line end of its blank line arrives (a CR at the
    end of a read ends its line at once; an LF that follows it in the next read is the
    second half of the same CRLF and is skipped)."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._partial = ""  # the start of a line whose end has not arrived yet
        self._after_cr = False  # the last read ended in CR: a leading LF belongs to it
        self._started = False  # past the stream's first character (BOM handling)
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        return self._decode(self._text(data, final=False))

    def close(self) -> list[SSEEvent]:
        """End of stream: what the last bytes complete; an unterminated event is dropped."""
        events = self._decode(self._text(b"", final=True))
        self._partial, self._data, self._event = "", [], ""
        return events

    def _text(self, data: bytes, final: bool) -> str:
        try:
            return self._utf8.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"event stream is not valid UTF-8: {exc}") from exc

    def _decode(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix(BOM)
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        *complete, self._partial = LINE_END.split(self._partial + text)
        events = []
        for line in complete:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent("\n".join(data), self._last_id, event, self._retry)
