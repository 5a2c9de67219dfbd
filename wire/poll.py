"""The polling envelope shared by short and long polling (pure: dict <-> records).

`GET /v1/streams/{id}?offset=k` answers `{"tokens":[{"i":k,"t":..},...], "next": k+n,
"done": bool}`; `done` is true once the stream has ended and every token up to `next`
has been handed out. `error` is present when the generation failed, `tool_call` (`{"name",
"arguments"}`) with `done` when the answer ended with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from errors import ProtocolError
from wire.messages import TokenMsg, ToolCall


@dataclass(frozen=True, slots=True)
class PollBatch:
    tokens: list[TokenMsg]
    next: int
    done: bool
    error: str | None = None
    tool_call: ToolCall | None = None


def encode_batch(
    offset: int,
    texts: Sequence[str],
    done: bool,
    error: str | None,
    pad_bytes: int = 0,
    tool_call: ToolCall | None = None,
) -> dict[str, Any]:
    """`pad_bytes` (a test aid) adds a `"pad"` member to every token: deliberate bloat."""
    pad = {"pad": " " * pad_bytes} if pad_bytes > 0 else {}
    body: dict[str, Any] = {
        "tokens": [{"i": offset + k, "t": t, **pad} for k, t in enumerate(texts)],
        "next": offset + len(texts),
        "done": done,
    }
    if error is not None:
        body["error"] = error
    if tool_call is not None and done:
        body["tool_call"] = tool_call.to_json()
    return body


def decode_batch(body: Any) -> PollBatch:
    if not isinstance(body, dict):
        raise ProtocolError("poll response must be a JSON object")
    tokens, next_offset, done = body.get("tokens"), body.get("next"), body.get("done")
    error = body.get("error")
    if not isinstance(tokens, list) or not _is_int(next_offset) or not isinstance(done, bool):
        raise ProtocolError(
            f'poll response needs "tokens": list, "next": int, "done": bool: {body!r:.120}'
        )
    if error is not None and not isinstance(error, str):
        raise ProtocolError(f'poll response "error" must be a string: {error!r:.80}')
    messages = []
    for token in tokens:
        if not isinstance(token, dict) or not _is_int(token.get("i")):
            raise ProtocolError(f'each polled token needs an integer "i": {token!r:.80}')
        if not isinstance(token.get("t"), str):
            raise ProtocolError(f'each polled token needs a string "t": {token!r:.80}')
        messages.append(TokenMsg(i=token["i"], text=token["t"]))
    call = body.get("tool_call")
    tool_call = None if call is None else ToolCall.from_json(call)
    return PollBatch(tokens=messages, next=next_offset, done=done, error=error, tool_call=tool_call)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def decode_created(body: Any) -> str:
    stream_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(stream_id, str):
        raise ProtocolError('stream creation must answer {"id": "..."}')
    return stream_id
