"""Framings: how one message is written as text, whatever the transport that carries it.

- `json` (tokenwire's own): `{"i":3,"t":" hello"}` per token, `{"done":true,"n":N,"id":..}` at
  the end. Every token carries its index, so loss and duplication are visible.
- `openai`: OpenAI `chat.completion.chunk` objects exactly as a hosted model sends them (a
  role-only first chunk, one content delta per token, a `finish_reason` chunk, a usage chunk),
  ended by the literal `[DONE]`. No index travels; order is the index. Over chunked HTTP the
  end is the JSON line `{"choices":[],"done":true}` instead, so every line parses as JSON.
- `vercel-ui`, `vercel-data`: the Vercel AI SDK's UI message stream (SSE) and its older data
  stream (lines over chunked HTTP), with the SDK's headers (`wire.vercel`).
- `langchain`: LangChain's WebSocket callback messages (`wire.langchain`).
- `openai-responses`: OpenAI Responses API stream events (`wire.openai_responses`), over SSE
  as `event: <type>` events, over WebSocket as one message each.
- `raw`: plain text, no token boundaries and no terminal message (`wire.raw`).

Each framing names the carriages it can travel on (`carriages`, from `wire.carriages`:
SSE events, streamed lines, WebSocket messages, ...; `over` refuses the
others), and what its responses carry besides the payloads: an exact Content-Type per
carriage, vendor headers, whether SSE token events carry `id:`. A transport names its
carriage in the registry (`transports.py`), which says which transports carry a framing.

Every framing but `raw` produces single-line text (JSON escapes `\\n` and `\\r`, and
`dumps_line` escapes U+0085, U+2028 and U+2029 too, which clients that split on every
Unicode line break would cut at), so any transport can delimit it by lines, SSE `data:`
fields or WebSocket messages. A failed generation ends with one error message in place of
the normal end (OpenAI sends its error object and no `[DONE]`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from errors import ProtocolError
from wire import langchain, openai_responses, raw, vercel
from wire.carriages import EVENTS, LINES, MESSAGES
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, ToolCall, dumps_line, loads

OPENAI_DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class Framing:
    """A message codec. Encoders return lists because one event may need several messages.

    `carriages`: the carriages it can travel on (`wire.carriages`; None: every one, polling's
    envelope included). `content_types`: (carriage, exact Content-Type) where the
    transport's own does not apply. `headers`: response headers it adds (a vendor's
    marker). `event_ids`: SSE token events carry `id: <index>`. `event_name`: the SSE
    `event:` field each payload travels with (None: no field, the default `message` type).
    `boundaries`: each token is one message and a terminal message ends the stream; False
    (`raw`): text arrives in pieces that need not be tokens, written bare over chunked
    HTTP, and the end of the body is the end. `variants`: (carriage, the framing as it
    travels on that carriage). `encode_tool_end`: the end of an answer that ends with a tool
    call (None: the framing carries no tool call; `end` writes the plain end then)."""

    name: str
    encode_start: Callable[[str, str], list[str]]
    encode_token: Callable[[str, str, int, str], str]
    encode_end: Callable[[str, str, int, str | None], list[str]]
    decode: Callable[[str], Message]
    carries_index: bool
    carriages: tuple[str, ...] | None = None
    content_types: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    event_ids: bool = True
    event_name: Callable[[str], str | None] | None = None
    boundaries: bool = True
    variants: tuple[tuple[str, Framing], ...] = ()
    encode_tool_end: Callable[[str, str, int, ToolCall], list[str]] | None = None

    @property
    def carries_tool_calls(self) -> bool:
        return self.encode_tool_end is not None

    def end(
        self, stream_id: str, model: str, n: int, error: str | None, tool_call: ToolCall | None
    ) -> list[str]:
        """The end messages after `n` tokens: with the answer's tool call when it has one
        and the framing carries them, else `encode_end`'s."""
        if tool_call is not None and error is None and self.encode_tool_end is not None:
            return self.encode_tool_end(stream_id, model, n, tool_call)
        return self.encode_end(stream_id, model, n, error)

    def can_travel(self, carriage: str) -> bool:
        return self.carriages is None or carriage in self.carriages

    def over(self, carriage: str) -> Framing:
        """The framing as it travels on `carriage`; ProtocolError if it cannot (the
        registry's `TransportRegistry.framing_over` says it in transports' names)."""
        if not self.can_travel(carriage):
            assert self.carriages is not None
            raise ProtocolError(
                f"framing {self.name} cannot travel as {carriage}; "
                f"it travels as {', '.join(self.carriages)}"
            )
        return dict(self.variants).get(carriage, self)

    def media_type(self, carriage: str, default: str) -> str:
        """The Content-Type of this framing's responses on `carriage`."""
        return dict(self.content_types).get(carriage, default)


# --- json ---------------------------------------------------------------------------------


def _json_start(stream_id: str, model: str) -> list[str]:
    return []


def _json_token(stream_id: str, model: str, i: int, text: str) -> str:
    return dumps_line({"i": i, "t": text})


def _json_end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    end: dict[str, Any] = {"done": True, "n": n, "id": stream_id}
    if error is not None:
        end["error"] = error
    return [dumps_line(end)]


def _json_tool_end(stream_id: str, model: str, n: int, call: ToolCall) -> list[str]:
    return [dumps_line({"done": True, "n": n, "id": stream_id, "tool_call": call.to_json()})]


def _json_decode(payload: str) -> Message:
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {payload[:80]!r}")
    if obj.get("done") is True:
        n = obj.get("n")
        call = obj.get("tool_call")
        return EndMsg(
            tokens=n if isinstance(n, int) else None,
            stream_id=obj.get("id"),
            error=obj.get("error"),
            tool_call=None if call is None else ToolCall.from_json(call),
        )
    i, text = obj.get("i"), obj.get("t")
    if not isinstance(i, int) or isinstance(i, bool) or not isinstance(text, str):
        raise ProtocolError(f'expected {{"i": int, "t": str}}, got {payload[:80]!r}')
    return TokenMsg(i=i, text=text)


JSON = Framing(
    "json",
    _json_start,
    _json_token,
    _json_end,
    _json_decode,
    carries_index=True,
    encode_tool_end=_json_tool_end,
)


# --- openai -------------------------------------------------------------------------------


def _chunk(stream_id: str, model: str, delta: dict[str, Any], finish: str | None) -> str:
    return dumps_line(
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
        return [dumps_line({"error": {"message": error, "type": "upstream_error"}})]
    usage = dumps_line(
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
    if obj.get("done") is True:  # the end over chunked HTTP (`OPENAI_LINES_DONE`)
        return EndMsg()
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


# A bare `[DONE]` line is not JSON: a client that parses every NDJSON line breaks on it.
OPENAI_LINES_DONE = dumps_line({"choices": [], "done": True})


def _openai_lines_end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    end = _openai_end(stream_id, model, n, error)
    return [OPENAI_LINES_DONE if payload == OPENAI_DONE else payload for payload in end]


_OPENAI = Framing(
    "openai", _openai_start, _openai_token, _openai_end, _openai_decode, carries_index=False
)
OPENAI = replace(_OPENAI, variants=((LINES, replace(_OPENAI, encode_end=_openai_lines_end)),))


# --- the framings people ship (codecs in wire/vercel.py, wire/langchain.py, wire/raw.py) ----

Codec = tuple[
    Callable[[str, str], list[str]],
    Callable[[str, str, int, str], str],
    Callable[[str, str, int, str | None], list[str]],
    Callable[[str], Message],
]


def _shipped(name: str, codec: Codec, carriages: tuple[str, ...], **options: Any) -> Framing:
    """A framing people ship, from its codec (start, token, end, decode): no index travels,
    and it travels only on `carriages`."""
    return Framing(name, *codec, carries_index=False, carriages=carriages, **options)


def _ai_sdk(
    name: str,
    codec: Codec,
    carriage: str,
    media_type: str,
    headers: tuple[tuple[str, str], ...],
    **options: Any,
) -> Framing:
    """A Vercel AI SDK stream: one carriage, the SDK's exact Content-Type on it, and its
    marker header."""
    content_types = ((carriage, media_type),)
    return _shipped(
        name, codec, (carriage,), content_types=content_types, headers=headers, **options
    )


VERCEL_UI = _ai_sdk(
    "vercel-ui", vercel.UI_CODEC, EVENTS, vercel.UI_MEDIA_TYPE, vercel.UI_HEADERS, event_ids=False
)
VERCEL_DATA = _ai_sdk(
    "vercel-data", vercel.DATA_CODEC, LINES, vercel.DATA_MEDIA_TYPE, vercel.DATA_HEADERS
)
LANGCHAIN = _shipped(
    "langchain",
    (langchain.start, langchain.token, langchain.end, langchain.decode),
    (EVENTS, LINES, MESSAGES),
)
RAW = _shipped(
    "raw",
    (raw.start, raw.token, raw.end, raw.decode),
    (EVENTS, LINES),
    content_types=((LINES, raw.MEDIA_TYPE),),
    event_ids=False,
    boundaries=False,
)

OPENAI_RESPONSES = _shipped(
    "openai-responses",
    openai_responses.CODEC,
    (EVENTS, MESSAGES),
    event_name=openai_responses.event_type,
    encode_tool_end=openai_responses.tool_end,
)

FRAMINGS: dict[str, Framing] = {
    f.name: f for f in (JSON, OPENAI, OPENAI_RESPONSES, VERCEL_UI, VERCEL_DATA, LANGCHAIN, RAW)
}


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
