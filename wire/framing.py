"""Framings: how one message is written as text, whatever the transport that carries it.

- `json` (tokenwire's own): `{"i":3,"t":" hello"}` per token, `{"done":true,"n":N,"id":..}` at
  the end. Every token carries its index, so loss and duplication are visible.
- `openai`: OpenAI `chat.completion.chunk` objects exactly as a hosted model sends them (a
  role-only first chunk, one content delta per token, a `finish_reason` chunk, a usage chunk),
  ended by the literal `[DONE]`. No index travels; order is the index.

All framings produce single-line text (JSON escapes `\\n` and `\\r`; U+2028 stays raw, which
is fine for delimiters that split on `\\n` only), so any transport can delimit them by lines,
SSE `data:` fields or WebSocket messages. A failed generation ends with one error message
in place of the normal end (OpenAI sends its error object and no `[DONE]`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from errors import ProtocolError
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, dumps, loads

OPENAI_DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class Framing:
    """A message codec. Encoders return lists because one event may need several messages."""

    name: str
    encode_start: Callable[[str, str], list[str]]
    encode_token: Callable[[str, str, int, str], str]
    encode_end: Callable[[str, str, int, str | None], list[str]]
    decode: Callable[[str], Message]
    carries_index: bool


# --- json ---------------------------------------------------------------------------------


def _json_start(stream_id: str, model: str) -> list[str]:
    return []


def _json_token(stream_id: str, model: str, i: int, text: str) -> str:
    return dumps({"i": i, "t": text})


def _json_end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    end: dict[str, Any] = {"done": True, "n": n, "id": stream_id}
    if error is not None:
        end["error"] = error
    return [dumps(end)]


def _json_decode(payload: str) -> Message:
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {payload[:80]!r}")
    if obj.get("done") is True:
        n = obj.get("n")
        return EndMsg(
            tokens=n if isinstance(n, int) else None,
            stream_id=obj.get("id"),
            error=obj.get("error"),
        )
    i, text = obj.get("i"), obj.get("t")
    if not isinstance(i, int) or isinstance(i, bool) or not isinstance(text, str):
        raise ProtocolError(f'expected {{"i": int, "t": str}}, got {payload[:80]!r}')
    return TokenMsg(i=i, text=text)


JSON = Framing("json", _json_start, _json_token, _json_end, _json_decode, carries_index=True)


# --- openai -------------------------------------------------------------------------------


def _chunk(stream_id: str, model: str, delta: dict[str, Any], finish: str | None) -> str:
    return dumps(
        {
            "id": f"chatcmpl-{stream_id}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )


def _openai_start(stream_id: str, model: str) -> list[str]:
    return [_chunk(stream_id, model, {"role": "assistant", "content": ""}, None)]


def _openai_token(stream_id: str, model: str, i: int, text: str) -> str:
    return _chunk(stream_id, model, {"content": text}, None)


def _openai_end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    if error is not None:
        return [dumps({"error": {"message": error, "type": "upstream_error"}})]
    usage = dumps(
        {
            "id": f"chatcmpl-{stream_id}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 0, "completion_tokens": n, "total_tokens": n},
        }
    )
    return [_chunk(stream_id, model, {}, "stop"), usage, OPENAI_DONE]


def _openai_decode(payload: str) -> Message:
    if payload == OPENAI_DONE:
        return EndMsg()
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a chat.completion.chunk object, got {payload[:80]!r}")
    error = obj.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        return EndMsg(error=str(message))
    choices = obj.get("choices")
    if not isinstance(choices, list):
        raise ProtocolError(f"chat.completion.chunk without choices: {payload[:80]!r}")
    if not choices:
        return IgnoredMsg()
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ProtocolError(f"choices[0] must be an object: {payload[:80]!r}")
    delta = choice.get("delta")
    if delta is None:
        delta = {}
    if not isinstance(delta, dict):
        raise ProtocolError(f"choices[0].delta must be an object: {payload[:80]!r}")
    content = delta.get("content")
    if not content:
        return IgnoredMsg()
    if not isinstance(content, str):
        raise ProtocolError(f"delta.content must be a string: {payload[:80]!r}")
    return TokenMsg(i=None, text=content)


OPENAI = Framing(
    "openai", _openai_start, _openai_token, _openai_end, _openai_decode, carries_index=False
)

FRAMINGS: dict[str, Framing] = {f.name: f for f in (JSON, OPENAI)}


def pad_json(payload: str, pad_bytes: int) -> str:
    """Add a `"pad"` member of `pad_bytes` spaces to a JSON object (a test aid: deliberate
    bloat for the regression check). Decoders ignore the member."""
    if pad_bytes <= 0 or not payload.endswith("}"):
        return payload
    return payload[:-1] + ',"pad":"' + " " * pad_bytes + '"}'


def padded(framing: Framing, pad_bytes: int) -> Framing:
    """The same framing with every token message padded by `pad_bytes`."""
    if pad_bytes <= 0:
        return framing

    def encode_token(stream_id: str, model: str, i: int, text: str) -> str:
        return pad_json(framing.encode_token(stream_id, model, i, text), pad_bytes)

    return replace(framing, encode_token=encode_token)


def get_framing(name: str) -> Framing:
    try:
        return FRAMINGS[name]
    except KeyError:
        raise ProtocolError(f"unknown framing {name!r}; allowed: {', '.join(FRAMINGS)}") from None
