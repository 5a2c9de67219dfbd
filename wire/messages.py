"""Messages that cross the wire, independent of how they are framed or carried.

A stream is a sequence of `TokenMsg` (each carrying its index `i` in the stream)
followed by exactly one `EndMsg`. Framings (`wire.framing`) turn these into text;
transports (SSE events, NDJSON lines, WebSocket messages, poll envelopes) delimit them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from errors import ProtocolError

REQUEST_FIELDS = (
    "seed",
    "max_tokens",
    "prompt",
    "stream_id",
    "context",
    "previous_response_id",
    "store",
    "tool",
)
STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SEED = 2**63 - 1  # seeds travel in JSON timelines: 64-bit integers


@dataclass(frozen=True, slots=True)
class TokenMsg:
    """One token of output. `i` is its 0-based index in the stream; `None` when the
    framing does not carry indices (the OpenAI framing), in which case order is the index."""

    i: int | None
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function (tool) call an answer ends with: the tool's name, its arguments as JSON
    text (an agent loop's turn: `GenerationRequest.tool`)."""

    name: str
    arguments: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, data: Any) -> ToolCall:
        if not isinstance(data, dict):
            raise ProtocolError(f"a tool call must be an object, got {data!r:.80}")
        name, arguments = data.get("name"), data.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, str):
            raise ProtocolError(f'a tool call needs "name" and "arguments" strings: {data!r:.80}')
        return cls(name, arguments)


@dataclass(frozen=True, slots=True)
class EndMsg:
    """The terminal message: the stream is complete. `tokens` is the source's own count
    when the framing carries it; `error` is set when the generation failed upstream;
    `tool_call`, the call the answer ended with (when the request named a `tool`)."""

    tokens: int | None = None
    stream_id: str | None = None
    error: str | None = None
    tool_call: ToolCall | None = None


@dataclass(frozen=True, slots=True)
class IgnoredMsg:
    """A well-formed message that carries no token (an OpenAI role-only or empty delta)."""


Message = TokenMsg | EndMsg | IgnoredMsg


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a client asks the server to generate.

    `seed` selects the mock's text and timing, so request k sees the same source behaviour
    on every transport; `max_tokens` caps the output; `prompt` is passed to live sources;
    `stream_id` lets the client name the stream (the server picks one when it is absent),
    so the driver can fetch every stream's server timeline whatever the transport.

    A conversation's turn (an agent loop: `harness.measure.run.conversations`) also sends
    `context`, the conversation as the client sends it this turn: all of it when the client
    keeps the state, only what is new when the server does. Then `previous_response_id`
    names the previous turn's stream, whose conversation the server kept because that
    turn asked it to (`store`), as the Responses API's fields of those names do.
    """

    seed: int = 0
    max_tokens: int | None = None
    prompt: str = ""
    stream_id: str | None = None
    context: str = ""
    previous_response_id: str | None = None
    store: bool = False
    tool: str | None = None  # the answer ends with a call of this tool (`tool_call`)

    def tool_call(self) -> ToolCall | None:
        """The call the answer ends with when the request names a `tool`: its arguments made
        from the seed, so every transport's turn k calls the tool alike and a client can
        check what arrived."""
        if self.tool is None:
            return None
        return ToolCall(self.tool, dumps({"query": f"rows for step {self.seed}", "limit": 20}))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"seed": self.seed, "prompt": self.prompt}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.stream_id is not None:
            body["stream_id"] = self.stream_id
        if self.context:
            body["context"] = self.context
        if self.previous_response_id is not None:
            body["previous_response_id"] = self.previous_response_id
        if self.store:
            body["store"] = True
        if self.tool is not None:
            body["tool"] = self.tool
        return body

    @classmethod
    def from_json(cls, body: Any) -> GenerationRequest:
        """Validate a decoded JSON body; raise `ProtocolError` naming the bad field."""
        if body is None:
            return cls()
        if not isinstance(body, dict):
            raise ProtocolError("request body must be a JSON object")
        unknown = set(body) - set(REQUEST_FIELDS)
        if unknown:
            raise ProtocolError(
                f"unknown request field(s) {sorted(unknown)}; allowed: {', '.join(REQUEST_FIELDS)}"
            )
        seed = body.get("seed", 0)
        max_tokens = body.get("max_tokens")
        prompt = body.get("prompt", "")
        stream_id = body.get("stream_id")
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise ProtocolError(f"seed must be an integer from 0 to {MAX_SEED}")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            raise ProtocolError("max_tokens must be a positive integer")
        if not isinstance(prompt, str):
            raise ProtocolError("prompt must be a string")
        if stream_id is not None and (
            not isinstance(stream_id, str) or not STREAM_ID.fullmatch(stream_id)
        ):
            raise ProtocolError("stream_id must be 1-64 characters from A-Z a-z 0-9 _ -")
        context = body.get("context", "")
        previous = body.get("previous_response_id")
        store = body.get("store", False)
        if not isinstance(context, str):
            raise ProtocolError("context must be a string")
        if previous is not None and (
            not isinstance(previous, str) or not STREAM_ID.fullmatch(previous)
        ):
            raise ProtocolError(
                "previous_response_id must be a stream id: 1-64 characters from A-Z a-z 0-9 _ -"
            )
        if not isinstance(store, bool):
            raise ProtocolError("store must be true or false")
        tool = body.get("tool")
        if tool is not None and (not isinstance(tool, str) or not STREAM_ID.fullmatch(tool)):
            raise ProtocolError("tool must be a name: 1-64 characters from A-Z a-z 0-9 _ -")
        return cls(
            seed=seed,
            max_tokens=max_tokens,
            prompt=prompt,
            stream_id=stream_id,
            context=context,
            previous_response_id=previous,
            store=store,
            tool=tool,
        )


def dumps(obj: Any) -> str:
    """Compact JSON text; non-ASCII stays as UTF-8 (as real LLM servers send it)."""
    return orjson.dumps(obj).decode()


# Line breaks JSON leaves raw (it escapes only U+0000-U+001F) that `str.splitlines` and
# httpx's `iter_lines` split on: a JSON line holding one raw would arrive cut in two.
_UNICODE_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def dumps_line(obj: Any) -> str:
    """`dumps`, with U+0085, U+2028 and U+2029 escaped (`\\u2028`, ...): the same JSON value,
    safe for clients that split lines on every Unicode line break. The framings use it.
    Outside strings JSON has no such character, so escaping them in place is exact."""
    text = dumps(obj)
    if text.isascii():
        return text
    return text.translate(_UNICODE_LINE_BREAKS)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
