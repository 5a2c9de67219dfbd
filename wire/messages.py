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

REQUEST_FIELDS = ("seed", "max_tokens", "prompt", "stream_id")
STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SEED = 2**63 - 1  # seeds travel in JSON timelines: 64-bit integers


@dataclass(frozen=True, slots=True)
class TokenMsg:
    """One token of output. `i` is its 0-based index in the stream; `None` when the
    framing does not carry indices (the OpenAI framing), in which case order is the index."""

    i: int | None
    text: str


@dataclass(frozen=True, slots=True)
class EndMsg:
    """The terminal message: the stream is complete. `tokens` is the source's own count
    when the framing carries it; `error` is set when the generation failed upstream."""

    tokens: int | None = None
    stream_id: str | None = None
    error: str | None = None


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
    """

    seed: int = 0
    max_tokens: int | None = None
    prompt: str = ""
    stream_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"seed": self.seed, "prompt": self.prompt}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.stream_id is not None:
            body["stream_id"] = self.stream_id
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
        return cls(seed=seed, max_tokens=max_tokens, prompt=prompt, stream_id=stream_id)


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
