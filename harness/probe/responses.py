"""OpenAI Responses API streams as the probe reads them (pure): how one is recognised, and
what each of its events says (`decode.py` applies it to the stream's `Reading`).

Recognised by the first SSE event's `event: response.*` field, or the first payload's
`"type": "response.*"` (a WebSocket's first message too). Text comes from
`response.output_text.delta` only: `response.output_text.done` and the final response
repeat the text, and `response.function_call_arguments.delta` is a tool call's arguments,
not text. `response.completed` and `response.incomplete` end the stream (the status, and the
reason when incomplete, stand for a finish reason); `response.failed` and `error` end it
with an error. Over SSE, every event should name its type in `event:`, as OpenAI's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESPONSES = "openai-responses"  # the probe's kind of an OpenAI Responses API stream
PREFIX = "response."  # every Responses lifecycle and output event's type begins so
ENDS = ("response.completed", "response.incomplete")
ERRORS = ("response.failed", "error")


@dataclass(frozen=True, slots=True)
class ResponsesEvent:
    """What one event says."""

    kind: str  # its `type`
    text: str = ""
    tool_call: str | None = None  # a function call's name, when the event adds one
    terminal: str | None = None
    finish_reason: str | None = None
    usage: bool = False
    error: str | None = None


def first_sse_name(sample: str) -> str:
    """The `event:` field of the body's first event ("" when it has none)."""
    started = False
    for line in sample.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if started:  # the first event's blank line: it had no event: field
                return ""
            continue
        if line.startswith(":"):
            continue
        started = True
        if line.startswith("event:"):
            return line[6:].removeprefix(" ")
    return ""


def looks_responses(obj: Any) -> bool:
    """A Responses API event: a JSON object whose `type` starts with `response.`."""
    kind = obj.get("type") if isinstance(obj, dict) else None
    return isinstance(kind, str) and kind.startswith(PREFIX)


def read_event(obj: Any) -> ResponsesEvent | None:
    """What a decoded payload says; None when it is not an event (no object, no type)."""
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or not isinstance(kind, str):
        return None
    response = obj.get("response")
    response = response if isinstance(response, dict) else {}
    if kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
        return ResponsesEvent(kind, text=obj["delta"])
    item = obj.get("item") if kind == "response.output_item.added" else None
    if isinstance(item, dict) and item.get("type") == "function_call":
        return ResponsesEvent(kind, tool_call=str(item.get("name") or "?"))
    if kind in ENDS:
        status = response.get("status") or kind.removeprefix(PREFIX)
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return ResponsesEvent(
            kind,
            terminal=f'type "{kind}"',
            finish_reason=f"{status}: {reason}" if reason else str(status),
            usage=isinstance(response.get("usage"), dict),
        )
    if kind in ERRORS:
        error = response.get("error") if kind == "response.failed" else obj
        message = error.get("message") if isinstance(error, dict) else None
        return ResponsesEvent(
            kind, terminal=f'type "{kind}"', error=str(message or error or kind)[:200]
        )
    return ResponsesEvent(kind)
