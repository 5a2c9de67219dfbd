"""LangChain's WebSocket callback messages, as a codec for `wire.framing`.

The shape of LangChain's chat-over-WebSocket example (the `langchain-ai/chat-langchain`
app, copied by many apps since): `schemas.py` `ChatResponse` has `sender` ("bot" or
"you"), `message` (a string) and `type` ("start", "stream", "end", "error" or "info");
`callback.py` `StreamingLLMCallbackHandler.on_llm_new_token` sends
`{"sender":"bot","message":<token>,"type":"stream"}` per token, and the endpoint sends
`type: "start"` with an empty message before the answer, `type: "end"` with an empty
message after it, and on failure `type: "error"` with the message to show. The server
echoes the user's question as `sender: "you"`, `type: "stream"` before `start`; a decoder
must not count that as a token.
"""

from __future__ import annotations

from errors import ProtocolError
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, dumps_line, loads

SENDERS = ("bot", "you")
TYPES = ("start", "stream", "end", "error", "info")


def _message(text: str, kind: str) -> str:
    return dumps_line({"sender": "bot", "message": text, "type": kind})


def start(stream_id: str, model: str) -> list[str]:
    return [_message("", "start")]


def token(stream_id: str, model: str, i: int, text: str) -> str:
    return _message(text, "stream")


def end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    return [_message("", "end") if error is None else _message(error, "error")]


def decode(payload: str) -> Message:
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a ChatResponse object, got {payload[:80]!r}")
    sender, message, kind = obj.get("sender"), obj.get("message"), obj.get("type")
    if sender not in SENDERS or not isinstance(message, str) or kind not in TYPES:
        raise ProtocolError(
            'expected {"sender": "bot"|"you", "message": str, "type": '
            f'"start"|"stream"|"end"|"error"|"info"}}, got {payload[:80]!r}'
        )
    if kind == "stream" and sender == "bot":
        return TokenMsg(i=None, text=message)
    if kind == "end":
        return EndMsg()
    if kind == "error":
        return EndMsg(error=message)
    return IgnoredMsg()  # start, info, and the echo of the user's own message
