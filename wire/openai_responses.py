"""The `openai-responses` framing: OpenAI's Responses API stream events, as
`client.responses.create(..., stream=True)` reads them (pure: no I/O).

One answer is one turn of an agent loop that ends in a tool call: the assistant message's
text, one `response.output_text.delta` per token, then a function call (`run_tool`, or the
request's first function tool on `POST /v1/responses`) whose small JSON arguments stream in
two `response.function_call_arguments.delta` events, then `response.completed` with usage.

    response.created, response.in_progress                 the start messages (4 in all),
    response.output_item.added (message),                  sequence numbers 0 to 3
    response.content_part.added (output_text)
    response.output_text.delta                             token i: sequence number 4 + i
    response.output_text.done, response.content_part.done, the end after n tokens,
    response.output_item.done (message),                   from sequence number 4 + n
    response.output_item.added (function_call),
    response.function_call_arguments.delta (x2),
    response.function_call_arguments.done,
    response.output_item.done (function_call),
    response.completed (usage.output_tokens = n)

Every event is a JSON object with `type` first, then `sequence_number`; over SSE each
travels as `event: <type>` and `data: <object>` (`event_type` names it), over WebSocket as
one text message (as the Responses API's WebSocket mode sends them). There is no `[DONE]`.
The sequence numbers follow from the token index alone, so every encoder stays a pure
function of its message and a resumed stream numbers its events as the first one did.

The response id is the stream id itself (the SDK requires no `resp_` prefix, so
`previous_response_id` names the stream directly); the message item is `msg_<id>`, the
function call item `fc_<id>` with call id `call_<id>`. `usage.output_tokens` counts the
text's tokens only (the arguments are not tokens of the source), so a client can compare
it with the deltas it counted; `input_tokens` is 0, as the chat framing's prompt tokens.

The end encoder of the framing registry (`wire.framing`) is handed the token count, not
the text: there the `done` events and `response.completed` carry the text `""` (the deltas
are the answer). `POST /v1/responses` (`servers.openai_responses`) hands `end` the text, so
its `done` events and final response carry the whole of it, as OpenAI's do.

A failed generation ends with `response.failed` (status `failed`, `error.code`
`server_error`) in place of the end. Decoding: a text delta is a token, `response.completed`
and `response.incomplete` end the stream (with `usage.output_tokens`), `response.failed`
and `error` end it with an error, and every other event carries no token.
"""

from __future__ import annotations

from typing import Any

from errors import ProtocolError
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, ToolCall, dumps_line, loads

START_EVENTS = 4  # the start messages: a token's sequence number is START_EVENTS + index
TOOL_NAME = "run_tool"
TYPE_PREFIX = '{"type":"'  # how every payload this module writes begins

TEXT_DELTA = "response.output_text.delta"
COMPLETED = "response.completed"
INCOMPLETE = "response.incomplete"
FAILED = "response.failed"
ERROR = "error"


def message_id(stream_id: str) -> str:
    return f"msg_{stream_id}"


def call_item_id(stream_id: str) -> str:
    return f"fc_{stream_id}"


def call_id(stream_id: str) -> str:
    return f"call_{stream_id}"


def tool_arguments(stream_id: str, n: int) -> str:
    """The function call's arguments: small JSON naming the turn."""
    return dumps_line({"stream_id": stream_id, "tokens": n})


def argument_deltas(arguments: str) -> list[str]:
    """The arguments as they stream: cut after the first comma (two deltas), whole when
    there is none."""
    cut = arguments.find(",") + 1
    return [arguments[:cut], arguments[cut:]] if 0 < cut < len(arguments) else [arguments]


def _event(kind: str, sequence_number: int, **fields: Any) -> str:
    return dumps_line({"type": kind, "sequence_number": sequence_number, **fields})


def usage(n: int) -> dict[str, Any]:
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": n,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": n,
    }


def response_object(
    stream_id: str,
    model: str,
    status: str,
    output: list[dict[str, Any]] | None = None,
    n: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The `response` object the lifecycle events carry (and a non-streaming answer is)."""
    return {
        "id": stream_id,
        "object": "response",
        "created_at": 0,
        "status": status,
        "error": None if error is None else {"code": "server_error", "message": error},
        "incomplete_details": None,
        "model": model,
        "output": output or [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": None if n is None else usage(n),
    }


def message_item(stream_id: str, status: str, text: str | None) -> dict[str, Any]:
    """The assistant message item; `text` None: no content part yet."""
    content = [] if text is None else [output_text(text)]
    return {
        "id": message_id(stream_id),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(stream_id: str, status: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_item_id(stream_id),
        "type": "function_call",
        "status": status,
        "call_id": call_id(stream_id),
        "name": name,
        "arguments": arguments,
    }


def completed_output(
    stream_id: str, n: int, text: str, tool: str, arguments: str | None = None
) -> list[dict[str, Any]]:
    """The output of a completed turn: the message, then the function call (`arguments`:
    default `tool_arguments`)."""
    arguments = tool_arguments(stream_id, n) if arguments is None else arguments
    return [
        message_item(stream_id, "completed", text),
        call_item(stream_id, "completed", tool, arguments),
    ]


# --- the codec ----------------------------------------------------------------------------


def start(stream_id: str, model: str) -> list[str]:
    msg = message_id(stream_id)
    part = {"item_id": msg, "output_index": 0, "content_index": 0}
    return [
        _event("response.created", 0, response=response_object(stream_id, model, "in_progress")),
        _event(
            "response.in_progress", 1, response=response_object(stream_id, model, "in_progress")
        ),
        _event(
            "response.output_item.added",
            2,
            output_index=0,
            item=message_item(stream_id, "in_progress", None),
        ),
        _event("response.content_part.added", 3, **part, part=output_text("")),
    ]


def token(stream_id: str, model: str, i: int, text: str) -> str:
    return _event(
        TEXT_DELTA,
        START_EVENTS + i,
        item_id=message_id(stream_id),
        output_index=0,
        content_index=0,
        delta=text,
        logprobs=[],
    )


def end(
    stream_id: str,
    model: str,
    n: int,
    error: str | None,
    text: str | None = None,
    tool: str = TOOL_NAME,
    arguments: str | None = None,
) -> list[str]:
    """The end after `n` tokens: the message finalised, the tool call, `response.completed`;
    or `response.failed`. `text` is the whole answer (None: not known here, written `""`);
    `arguments`, the call's (default `tool_arguments`)."""
    seq = START_EVENTS + n
    if error is not None:
        failed = response_object(stream_id, model, "failed", error=error)
        return [_event(FAILED, seq, response=failed)]
    whole = text or ""
    msg = message_id(stream_id)
    fc = call_item_id(stream_id)
    arguments = tool_arguments(stream_id, n) if arguments is None else arguments
    deltas = argument_deltas(arguments)
    output = completed_output(stream_id, n, whole, tool, arguments)
    part = {"item_id": msg, "output_index": 0, "content_index": 0}
    events = [
        _event("response.output_text.done", seq, **part, text=whole, logprobs=[]),
        _event("response.content_part.done", seq + 1, **part, part=output_text(whole)),
        _event("response.output_item.done", seq + 2, output_index=0, item=output[0]),
        _event(
            "response.output_item.added",
            seq + 3,
            output_index=1,
            item=call_item(stream_id, "in_progress", tool, ""),
        ),
    ]
    seq += 4
    for delta in deltas:
        events.append(
            _event(
                "response.function_call_arguments.delta",
                seq,
                item_id=fc,
                output_index=1,
                delta=delta,
            )
        )
        seq += 1
    done = response_object(stream_id, model, "completed", output, n)
    events += [
        _event(
            "response.function_call_arguments.done",
            seq,
            item_id=fc,
            output_index=1,
            name=tool,
            arguments=arguments,
        ),
        _event("response.output_item.done", seq + 1, output_index=1, item=output[1]),
        _event(COMPLETED, seq + 2, response=done),
    ]
    return events


def tool_end(stream_id: str, model: str, n: int, call: ToolCall) -> list[str]:
    """`end` with the request's tool call (`GenerationRequest.tool_call`)."""
    return end(stream_id, model, n, None, tool=call.name, arguments=call.arguments)


def ended_call(response: dict[str, Any]) -> ToolCall | None:
    """The function call among a completed response's output items, if any."""
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and item.get("type") == "function_call":
            name, arguments = item.get("name"), item.get("arguments")
            if isinstance(name, str) and isinstance(arguments, str):
                return ToolCall(name, arguments)
    return None


def event_type(payload: str) -> str | None:
    """The SSE `event:` field of a payload: its `type` (None when it has none)."""
    if payload.startswith(TYPE_PREFIX):  # what `_event` writes: no parse needed
        close = payload.find('"', len(TYPE_PREFIX))
        written = payload[len(TYPE_PREFIX) : close]
        if close > 0 and "\\" not in written:
            return written
    try:
        obj = loads(payload)
    except ProtocolError:
        return None
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) and kind else None


def _error_message(obj: dict[str, Any], fallback: str) -> str:
    message = obj.get("message")
    if isinstance(message, str) and message:
        return message
    error = obj.get("error")
    if isinstance(error, dict):
        return _error_message(error, fallback)
    return str(error) if error else fallback


def decode(payload: str) -> Message:
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a Responses stream event object, got {payload[:80]!r}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"a Responses stream event needs a string type: {payload[:80]!r}")
    if kind == TEXT_DELTA:
        delta = obj.get("delta")
        if not isinstance(delta, str):
            raise ProtocolError(f"{TEXT_DELTA} needs a string delta: {payload[:80]!r}")
        return TokenMsg(i=None, text=delta)
    if kind == ERROR:
        return EndMsg(error=_error_message(obj, "error"))
    if kind not in (COMPLETED, INCOMPLETE, FAILED):
        return IgnoredMsg()
    response = obj.get("response")
    if not isinstance(response, dict):
        raise ProtocolError(f"{kind} needs a response object: {payload[:80]!r}")
    if kind == FAILED:
        return EndMsg(error=_error_message(response, "the response failed"))
    reported = response.get("usage")
    tokens = reported.get("output_tokens") if isinstance(reported, dict) else None
    stream_id = response.get("id")
    return EndMsg(
        tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
        stream_id=stream_id if isinstance(stream_id, str) else None,
        tool_call=ended_call(response),
    )


CODEC = (start, token, end, decode)
