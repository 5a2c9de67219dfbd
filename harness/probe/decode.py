"""From decoded body bytes to events and text (pure): the kind of stream, the event
decoders of each container, and what each payload means (Content-Encoding is undone
before, by `wire.content`).

Kinds and the container that carries them:

| kind          | container | an event is                                           |
| ------------- | --------- | ----------------------------------------------------- |
| `sse`         | SSE       | a dispatched SSE event (`wire/sse.py` decodes)         |
| `vercel-ui`   | SSE       | AI SDK 5 UI message stream: `data: {"type": ...}`      |
| `openai`      | SSE/lines | a `chat.completion.chunk` (SSE, or one JSON per line)  |
| `openai-responses` | SSE  | a Responses API event: `event: response.*` + its JSON  |
| `ndjson`      | lines     | one line (`wire/ndjson.py` splits)                     |
| `vercel-data` | lines     | AI SDK 4 data stream part: `TYPE:JSON` per line        |
| `text`        | text      | a word: a run of non-space text (no framing to go by)  |
| `websocket`   | messages  | one data message                                       |

`auto` takes the kind from the Content-Type and vendor headers, then from the first bytes
of the body (`detect`). A WebSocket whose first message is a Responses API event is read as
one too (`read_payloads`): text from `response.output_text.delta` only.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from harness.probe.http1 import Head
from harness.probe.responses import (
    PREFIX,
    RESPONSES,
    first_sse_name,
    looks_responses,
    read_event,
)
from wire.ndjson import LineDecoder
from wire.sse import MEDIA_TYPE as SSE_TYPE
from wire.sse import SSEStreamDecoder

SSE, LINES, TEXT, MESSAGES = "sse", "lines", "text", "messages"
NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
    "application/jsonlines",
    "application/stream+json",
    "application/json-seq",
}
JSON_TYPES = {"application/json", *NDJSON_TYPES}
SSE_FIELDS = ("data", "event", "id", "retry")
SSE_LINE = re.compile(r"^(?:data|event|id|retry)(?::|$)|^:")
VERCEL_PART = re.compile(r"^([0-9a-z]):(.*)$", re.S)
VERCEL_START = re.compile(r'^[0-9a-z]:[\[{"0-9tfn-]')
UI_TYPES = {
    "start",
    "start-step",
    "text-start",
    "text-delta",
    "text-end",
    "reasoning-start",
    "reasoning-delta",
    "reasoning-end",
    "finish-step",
    "finish",
    "error",
    "abort",
}
TERMINAL_TYPES = {
    "finish",
    "done",
    "end",
    "complete",
    "completed",
    "stop",
    "message_stop",
    "response.completed",
    "response.done",
    "stream_end",
    "finish-message",
}
TERMINAL_EVENTS = {
    "done",
    "end",
    "finish",
    "complete",
    "completed",
    "close",
    "stop",
    "message_stop",
    "response.completed",
    "stream_end",
    "eos",
}
OPENAI_DONE = "[DONE]"


# --- kinds --------------------------------------------------------------------------------


def container_of(kind: str, head: Head | None, sample: str) -> str:
    if kind == "websocket":
        return MESSAGES
    if kind in ("sse", "vercel-ui", RESPONSES):
        return SSE
    if kind == "openai":
        media = head.media_type if head else ""
        return SSE if media == SSE_TYPE or looks_sse(sample) else LINES
    if kind in ("ndjson", "vercel-data"):
        return LINES
    return TEXT


def detect(requested: str, head: Head | None, sample: str) -> tuple[str, str]:
    """The kind and its container: `requested` unless it is `auto`, else from the head and
    the first decoded bytes of the body (`sample`)."""
    if requested != "auto":
        return requested, container_of(requested, head, sample)
    media = head.media_type if head else ""
    header = (lambda name: head.get(name)) if head else (lambda name: None)
    if media == SSE_TYPE or looks_sse(sample):
        if header("x-vercel-ai-ui-message-stream"):
            return "vercel-ui", SSE
        first = first_sse_payload(sample)
        if first_sse_name(sample).startswith(PREFIX) or (
            first is not None and looks_responses(_json(first))
        ):
            return RESPONSES, SSE
        if first is not None and looks_openai(first):
            return "openai", SSE
        if first is not None and looks_ui(first):
            return "vercel-ui", SSE
        return "sse", SSE
    if header("x-vercel-ai-data-stream") or VERCEL_START.match(sample.lstrip("\ufeff")):
        return "vercel-data", LINES
    first_line = sample.split("\n", 1)[0].strip()
    if media in JSON_TYPES or first_line.startswith(("{", "[")):
        return ("openai" if looks_openai(first_line) else "ndjson"), LINES
    return "text", TEXT


def looks_sse(sample: str) -> bool:
    for line in sample.lstrip("\ufeff").replace("\r", "\n").split("\n"):
        if line:
            return bool(SSE_LINE.match(line))
    return False


def first_sse_payload(sample: str) -> str | None:
    for line in sample.replace("\r", "\n").split("\n"):
        if line.startswith("data:"):
            return line[5:].removeprefix(" ")
    return None


def looks_openai(payload: str) -> bool:
    if payload.strip() == OPENAI_DONE:
        return True
    obj = _json(payload)
    if not isinstance(obj, dict):
        return False
    kind = obj.get("object")
    if isinstance(kind, str) and kind.startswith(("chat.completion", "text_completion")):
        return True
    return isinstance(obj.get("choices"), list)


def looks_ui(payload: str) -> bool:
    obj = _json(payload)
    return isinstance(obj, dict) and obj.get("type") in UI_TYPES


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    stamp_ns: int
    read_no: int  # the read (0-based, among reads that delivered body bytes) that completed it
    data: str  # the payload: SSE data, a line, a message; "" for a word of plain text
    id: str = ""  # SSE: the last event id (EventSource's lastEventId)
    name: str = ""  # SSE: the event type ("" for the default `message`)


@dataclass
class SSEAudit:
    """What an EventSource would silently skip or mangle."""

    unknown_lines: int = 0
    first_unknown: str = ""
    data_lines: int = 0
    id_lines: int = 0
    multiline_events: int = 0
    spread_events: int = 0  # events whose data lines came in 3 or more reads
    most_reads_per_event: int = 0
    unterminated: bool = False  # data lines still pending when the stream ended


class AuditingSSEDecoder(SSEStreamDecoder):
    """`wire.sse.SSEStreamDecoder` (the spec's decoding) that also audits every line."""

    SPREAD_READS = 3

    def __init__(self) -> None:
        super().__init__()
        self.audit = SSEAudit()
        self.read_no = 0
        self._pending_lines = 0
        self._pending_reads: set[int] = set()

    def _line(self, line: str) -> Any:
        audit = self.audit
        if not line:
            if self._pending_lines:
                reads = len(self._pending_reads)
                audit.multiline_events += self._pending_lines > 1
                audit.spread_events += reads >= self.SPREAD_READS and self._pending_lines > 1
                audit.most_reads_per_event = max(audit.most_reads_per_event, reads)
            self._pending_lines, self._pending_reads = 0, set()
        elif not line.startswith(":"):
            name = line.partition(":")[0]
            if name == "data":
                audit.data_lines += 1
                self._pending_lines += 1
                self._pending_reads.add(self.read_no)
            elif name == "id":
                audit.id_lines += 1
            elif name not in SSE_FIELDS:
                audit.unknown_lines += 1
                audit.first_unknown = audit.first_unknown or line[:80]
        return super()._line(line)

    def finish(self) -> list[Any]:
        events = self.close()
        self.audit.unterminated = self._pending_lines > 0
        return events


class EventDecoder:
    """Decoded body bytes in, events out, per container; `audit` / `bad_lines` report what
    does not follow the container's framing."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.sse = AuditingSSEDecoder() if container == SSE else None
        self.lines = LineDecoder() if container == LINES else None
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._in_word = False
        self.text_parts: list[str] = []  # TEXT: the decoded body

    def feed(self, stamp: int, read_no: int, data: bytes) -> list[Event]:
        if self.sse is not None:
            self.sse.read_no = read_no
            return [
                Event(stamp, read_no, e.data, e.id, "" if e.event == "message" else e.event)
                for e in self.sse.feed(data)
            ]
        if self.lines is not None:
            return [Event(stamp, read_no, line) for line in self.lines.feed(data) if line.strip()]
        return self._words(stamp, read_no, self._utf8.decode(data))

    def close(self, stamp: int, read_no: int) -> list[Event]:
        if self.sse is not None:
            return [
                Event(stamp, read_no, e.data, e.id, "" if e.event == "message" else e.event)
                for e in self.sse.finish()
            ]
        if self.lines is not None:
            return [Event(stamp, read_no, line) for line in self.lines.close() if line.strip()]
        return self._words(stamp, read_no, self._utf8.decode(b"", final=True))

    def _words(self, stamp: int, read_no: int, text: str) -> list[Event]:
        """One event per word start: tokens arrive as " word" pieces."""
        self.text_parts.append(text)
        events = []
        for char in text:
            space = char.isspace()
            if not space and not self._in_word:
                events.append(Event(stamp, read_no, ""))
            self._in_word = not space
        return events


# --- payloads -----------------------------------------------------------------------------


@dataclass
class Reading:
    """What the payloads of a stream say, event by event."""

    text_parts: list[str] = field(default_factory=list)
    terminal: str | None = None  # how the stream said it was complete (first such event)
    error: str | None = None
    finish_reason: str | None = None
    done_marker: bool = False  # data: [DONE]
    usage: bool = False
    bad_lines: int = 0
    first_bad: str = ""
    first_text_event: int | None = None  # the index of the first event that carried text
    responses: bool = False  # read as an OpenAI Responses stream (`harness.probe.responses`)
    tool_calls: list[str] = field(default_factory=list)  # Responses: function calls' names
    misnamed_events: int = 0  # Responses over SSE: `event:` missing or not the data's type
    first_misnamed: str = ""

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def read_payloads(kind: str, events: list[Event]) -> Reading:
    reading = Reading()
    sniffed = kind == "websocket" and bool(events) and looks_responses(_json(events[0].data))
    reading.responses = kind == RESPONSES or sniffed
    for index, event in enumerate(events):
        before = len(reading.text_parts)
        if reading.responses:
            _responses_event(reading, event, named=kind == RESPONSES)
        elif kind == "vercel-data":
            _vercel_part(reading, event.data)
        elif kind != "text":
            _payload(reading, kind, event)
        if reading.first_text_event is None and any(reading.text_parts[before:]):
            reading.first_text_event = index
    if kind == "text" and events:
        reading.first_text_event = 0
    return reading


def _terminal(reading: Reading, how: str) -> None:
    reading.terminal = reading.terminal or how


def _bad(reading: Reading, line: str) -> None:
    reading.bad_lines += 1
    reading.first_bad = reading.first_bad or line[:80]


def _payload(reading: Reading, kind: str, event: Event) -> None:
    data = event.data
    if event.name in TERMINAL_EVENTS:
        _terminal(reading, f"event: {event.name}")
    if event.name == "error":
        reading.error = reading.error or data[:200]
        _terminal(reading, "event: error")
    if data.strip() == OPENAI_DONE:
        reading.done_marker = True
        _terminal(reading, "data: [DONE]")
        return
    obj = _json(data)
    if obj is None:
        if kind in ("ndjson", "openai") or (kind == "vercel-ui" and data.strip()):
            _bad(reading, data)
        if kind not in ("ndjson", "openai", "vercel-ui"):
            reading.text_parts.append(data)
        return
    if not isinstance(obj, dict):
        if isinstance(obj, str) and kind in ("sse", "websocket"):
            reading.text_parts.append(obj)
        return
    text = text_of(obj)
    if text:
        reading.text_parts.append(text)
    _object_end(reading, obj)


def _responses_event(reading: Reading, event: Event, named: bool) -> None:
    """One Responses API event (`harness.probe.responses.read_event`) on the reading."""
    said = read_event(_json(event.data))
    if said is None:
        _bad(reading, event.data)
        return
    if named and event.name != said.kind:
        reading.misnamed_events += 1
        shown = f"event: {event.name}" if event.name else "no event: field"
        reading.first_misnamed = reading.first_misnamed or f"{shown} for type {said.kind!r}"[:80]
    if said.text:
        reading.text_parts.append(said.text)
    if said.tool_call is not None:
        reading.tool_calls.append(said.tool_call)
    if said.terminal is not None:
        _terminal(reading, said.terminal)
    reading.finish_reason = said.finish_reason or reading.finish_reason
    reading.usage = reading.usage or said.usage
    reading.error = reading.error or said.error


def _object_end(reading: Reading, obj: dict[str, Any]) -> None:
    if isinstance(obj.get("usage"), dict):
        reading.usage = True
    error = obj.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        reading.error = reading.error or str(message)[:200]
    kind = obj.get("type")
    if kind == "error":
        reading.error = (
            reading.error or str(obj.get("errorText") or obj.get("message") or obj)[:200]
        )
    if obj.get("done") is True:
        _terminal(reading, '{"done": true}')
        if isinstance(obj.get("choices"), list):  # `[DONE]` as a JSON line: tokenwire's
            reading.done_marker = True  # openai framing over NDJSON ends so
    if isinstance(kind, str) and kind in TERMINAL_TYPES:
        _terminal(reading, f'type "{kind}"')
    name = obj.get("event")
    if isinstance(name, str) and name in TERMINAL_EVENTS:
        _terminal(reading, f'event "{name}"')
    if obj.get("generated_text") is not None:
        _terminal(reading, "generated_text")
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        finish = choices[0].get("finish_reason")
        if finish:
            reading.finish_reason = str(finish)
            _terminal(reading, f"finish_reason {finish}")


def text_of(obj: dict[str, Any]) -> str:
    """The text a JSON event carries, for the common LLM streaming shapes."""
    choices = obj.get("choices")
    if isinstance(choices, list):
        if not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        for holder in (choice.get("delta"), choice.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("content"), str):
                return holder["content"]
        return choice["text"] if isinstance(choice.get("text"), str) else ""
    kind = obj.get("type")
    if kind in ("text-delta", "response.output_text.delta") and isinstance(obj.get("delta"), str):
        return obj["delta"]
    if kind == "content_block_delta" and isinstance(obj.get("delta"), dict):
        return str(obj["delta"].get("text") or "")
    message = obj.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return message["content"]
    token = obj.get("token")
    if isinstance(token, dict) and isinstance(token.get("text"), str):
        return "" if token.get("special") else token["text"]
    for key in ("t", "response", "text", "content", "delta", "token"):
        if isinstance(obj.get(key), str):
            return obj[key]
    return ""


def _vercel_part(reading: Reading, line: str) -> None:
    match = VERCEL_PART.match(line)
    value = _json(match.group(2)) if match else None
    if match is None or (value is None and match.group(2).strip() != "null"):
        _bad(reading, line)
        return
    part = match.group(1)
    if part == "0" and isinstance(value, str):
        reading.text_parts.append(value)
    elif part == "3":
        reading.error = reading.error or str(value)[:200]
        _terminal(reading, "error part 3:")
    elif part == "d":
        if isinstance(value, dict) and value.get("finishReason"):
            reading.finish_reason = str(value["finishReason"])
        if isinstance(value, dict) and isinstance(value.get("usage"), dict):
            reading.usage = True
        _terminal(reading, "finish part d:")


def single_json_document(body: str) -> Any:
    """The body parsed as one JSON value spanning several lines or the whole body, else None."""
    stripped = body.strip()
    if not stripped.startswith(("{", "[")):
        return None
    return _json(stripped)
