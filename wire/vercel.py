"""The Vercel AI SDK's two streaming protocols, as codecs for `wire.framing`.

Checked against the SDK's own source (the `vercel/ai` repository), not from memory:

`vercel-ui`, the UI message stream (AI SDK 5 and later; `ai` 5.0.0 to 7.x):
- `packages/ai/src/ui-message-stream/ui-message-stream-headers.ts`: the response headers
  `content-type: text/event-stream`, `cache-control: no-cache`, `connection: keep-alive`,
  `x-vercel-ai-ui-message-stream: v1`, `x-accel-buffering: no`.
- `packages/ai/src/ui-message-stream/json-to-sse-transform-stream.ts` (the same in 5.0.0,
  6.x and 7.x): every chunk is `data: <JSON.stringify(chunk)>\\n\\n`, and the stream ends
  with `data: [DONE]\\n\\n` (also after an `error` chunk, `create-ui-message-stream-response
  .test.ts`). No `id:` or `event:` fields. The reader, `parseJsonEventStream` in
  `packages/provider-utils/src/parse-json-event-stream.ts`, skips `[DONE]` and validates
  every other event's data against `uiMessageChunkSchema`.
- `packages/ai/src/ui-message-stream/ui-message-chunks.ts` (`uiMessageChunkSchema`): the
  chunk types. `streamText(...).toUIMessageStreamResponse()` sends, for a text answer,
  `start`, `start-step`, `text-start {id}`, `text-delta {id, delta}`..., `text-end {id}`,
  `finish-step`, `finish` (see `packages/ai/src/generate-text/stream-text.test.ts`).
  `ai` 5.x validates chunks with `z.strictObject`, and its `finish` allows only
  `messageMetadata`; 6.0 added `finishReason` (and later versions `z.looseObject`). So the
  `finish` chunk here carries no `finishReason`: every version from 5.0.0 on accepts it.

`vercel-data`, the data stream protocol (AI SDK 4: `ai` 4.1.0 to 4.3.19, parsed by
`@ai-sdk/ui-utils` 1.1.0 to 1.2.11; AI SDK 5 removed it):
- `packages/ai/core/data-stream/create-data-stream-response.ts` and
  `packages/ai/core/util/prepare-response-headers.ts`: `Content-Type: text/plain;
  charset=utf-8` and `X-Vercel-AI-Data-Stream: v1`.
- `packages/ui-utils/src/data-stream-parts.ts`: a part is `CODE:JSON\\n`
  (`formatDataStreamPart`); codes `0` text (a string), `3` error (a string), `d`
  finish_message and `e` finish_step (`{finishReason, usage: {promptTokens,
  completionTokens}}`, `e` also `isContinued`), `f` start_step (`{messageId}`, added in
  ui-utils 1.1.0 / ai 4.1.0: older parsers refuse the code), and `2 8 9 a b c g h i j k`.
- `packages/ui-utils/src/process-data-stream.ts` (`processDataStream`): buffers reads until
  one ends in `\\n`, splits on `\\n` only, parses every part; an unknown code throws.
- `packages/ai/core/generate-text/stream-text.ts` (`toDataStream`): `f:` on step start,
  `0:` per text delta, `e:` on step finish, `d:` on finish, `3:` for an error.
"""

from __future__ import annotations

from typing import Any

from errors import ProtocolError
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, dumps_line, loads

DONE = "[DONE]"
TEXT_ID = "0"  # the one text part's id (the SDK's providers use "0", "txt-0", ...)

UI_MEDIA_TYPE = "text/event-stream"  # exactly, without a charset, as the SDK sends it
UI_HEADERS = (("x-vercel-ai-ui-message-stream", "v1"),)
DATA_MEDIA_TYPE = "text/plain; charset=utf-8"
DATA_HEADERS = (("x-vercel-ai-data-stream", "v1"),)

# `uiMessageChunkSchema`'s types that carry no answer text (ai 7.x's list, a superset of 5's)
UI_IGNORED = frozenset(
    {
        "start",
        "start-step",
        "text-start",
        "text-end",
        "finish-step",
        "finish",
        "reset-step",
        "message-metadata",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "reasoning-file",
        "source-url",
        "source-document",
        "file",
        "custom",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-input-error",
        "tool-approval-request",
        "tool-approval-response",
        "tool-output-available",
        "tool-output-error",
        "tool-output-denied",
    }
)


# --- vercel-ui ----------------------------------------------------------------------------


def ui_start(stream_id: str, model: str) -> list[str]:
    return [
        dumps_line({"type": "start"}),
        dumps_line({"type": "start-step"}),
        dumps_line({"type": "text-start", "id": TEXT_ID}),
    ]


def ui_token(stream_id: str, model: str, i: int, text: str) -> str:
    return dumps_line({"type": "text-delta", "id": TEXT_ID, "delta": text})


def ui_end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    if error is not None:
        return [dumps_line({"type": "error", "errorText": error}), DONE]
    return [
        dumps_line({"type": "text-end", "id": TEXT_ID}),
        dumps_line({"type": "finish-step"}),
        dumps_line({"type": "finish"}),
        DONE,
    ]


def ui_decode(payload: str) -> Message:
    """`[DONE]` ends the stream; `text-delta` is a token; `error` (and `abort`) end it with
    an error. After an `error` chunk the SDK still sends `[DONE]`: a client stops at the
    error (`StreamResult.take` raises there)."""
    if payload == DONE:
        return EndMsg()
    chunk = _object(payload, "a UI message chunk")
    kind = chunk.get("type")
    if kind == "text-delta":
        delta, text_id = chunk.get("delta"), chunk.get("id")
        if not isinstance(delta, str) or not isinstance(text_id, str):
            raise ProtocolError(f'text-delta needs "id" and "delta" strings: {payload[:80]!r}')
        return TokenMsg(i=None, text=delta)
    if kind == "error":
        text = chunk.get("errorText")
        if not isinstance(text, str):
            raise ProtocolError(f'an error chunk needs an "errorText" string: {payload[:80]!r}')
        return EndMsg(error=text)
    if kind == "abort":
        return EndMsg(error=f"aborted: {chunk.get('reason') or 'no reason given'}")
    if kind in UI_IGNORED or (isinstance(kind, str) and kind.startswith("data-")):
        return IgnoredMsg()
    raise ProtocolError(f"unknown UI message chunk type {kind!r}: {payload[:80]!r}")


UI_CODEC = (ui_start, ui_token, ui_end, ui_decode)


# --- vercel-data --------------------------------------------------------------------------

DATA_CODES = frozenset("02389abcdefghijk")


def data_start(stream_id: str, model: str) -> list[str]:
    return ["f:" + dumps_line({"messageId": f"msg-{stream_id}"})]


def data_token(stream_id: str, model: str, i: int, text: str) -> str:
    return "0:" + dumps_line(text)


def data_end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    if error is not None:
        return ["3:" + dumps_line(error)]
    usage = {"promptTokens": 0, "completionTokens": n}
    return [
        "e:" + dumps_line({"finishReason": "stop", "usage": usage, "isContinued": False}),
        "d:" + dumps_line({"finishReason": "stop", "usage": usage}),
    ]


def data_decode(payload: str) -> Message:
    """One part, as `parseDataStreamPart` reads it: the code before the first `:`, JSON
    after it. `0` is a token, `d` (finish_message) the end, `3` an error end."""
    code, colon, text = payload.partition(":")
    if not colon or code not in DATA_CODES:
        raise ProtocolError(f"not a data stream part (CODE:JSON): {payload[:80]!r}")
    value = loads(text)
    if code == "0":
        if not isinstance(value, str):
            raise ProtocolError(f'"text" parts expect a string value: {payload[:80]!r}')
        return TokenMsg(i=None, text=value)
    if code == "3":
        if not isinstance(value, str):
            raise ProtocolError(f'"error" parts expect a string value: {payload[:80]!r}')
        return EndMsg(error=value)
    finish = isinstance(value, dict) and isinstance(value.get("finishReason"), str)
    if code in ("d", "e") and not finish:
        raise ProtocolError(f'finish parts expect a "finishReason" string: {payload[:80]!r}')
    if code == "d":
        assert isinstance(value, dict)
        usage = value.get("usage")
        tokens = usage.get("completionTokens") if isinstance(usage, dict) else None
        return EndMsg(tokens=tokens if _is_int(tokens) else None)
    return IgnoredMsg()


DATA_CODEC = (data_start, data_token, data_end, data_decode)


def _object(payload: str, what: str) -> dict[str, Any]:
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected {what} (a JSON object), got {payload[:80]!r}")
    return obj


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
