"""The `openai-responses` framing: encode -> SSE events named by type (as
`servers/openai_responses.py` writes them) -> incremental decode, fed whole, byte by byte,
at every split and at random splits, with the tricky tokens; WebSocket messages; every
event validated strictly against the installed `openai` SDK's models; the decoder's
terminal, error and ignored events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from openai.types.responses import ResponseFunctionToolCall, ResponseStreamEvent
from pydantic import TypeAdapter

from errors import ProtocolError
from wire import openai_responses
from wire.carriages import ENVELOPE, EVENTS, LINES, MESSAGES
from wire.framing import FRAMINGS, OPENAI_RESPONSES
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, ToolCall
from wire.sse import SSEStreamDecoder, encode_event

STREAM_ID = "s-42"
MODEL = "mock-model"
SDK_EVENT: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)

Partitioner = Callable[[bytes, str], Iterator[tuple[str, list[bytes]]]]


def payloads(tokens: list[str], error: str | None = None, text: str | None = None) -> list[str]:
    framing = OPENAI_RESPONSES
    out = framing.encode_start(STREAM_ID, MODEL)
    out += [framing.encode_token(STREAM_ID, MODEL, i, t) for i, t in enumerate(tokens)]
    if text is None:
        return out + framing.encode_end(STREAM_ID, MODEL, len(tokens), error)
    return out + openai_responses.end(STREAM_ID, MODEL, len(tokens), error, text=text)


def sse_body(tokens: list[str], error: str | None = None) -> bytes:
    """As `POST /v1/responses` writes it: `event: <type>`, no ids."""
    name = OPENAI_RESPONSES.event_name
    assert name is not None
    return b"".join(encode_event(p, event=name(p)) for p in payloads(tokens, error))


def decode_sse(chunks: list[bytes]) -> tuple[list[str], list[Message]]:
    sse = SSEStreamDecoder()
    events = [e for chunk in chunks for e in sse.feed(chunk)] + sse.close()
    return [e.event for e in events], [OPENAI_RESPONSES.decode(e.data) for e in events]


def check_stream(messages: list[Message], tokens: list[str]) -> None:
    assert [m.text for m in messages if isinstance(m, TokenMsg)] == tokens
    assert all(m.i is None for m in messages if isinstance(m, TokenMsg))
    ends = [m for m in messages if isinstance(m, EndMsg)]
    assert ends == [ended(len(tokens))]
    assert messages[-1] is ends[0]


def test_stream_round_trip_at_any_split(
    stream_tokens: list[str], mode: str, partitions: Partitioner
) -> None:
    data = sse_body(stream_tokens)
    names, whole = decode_sse([data])
    check_stream(whole, stream_tokens)
    assert names == [json.loads(p)["type"] for p in payloads(stream_tokens)]
    for label, chunks in partitions(data, mode):
        assert b"".join(chunks) == data
        assert decode_sse(chunks) == (names, whole), label


def test_websocket_messages_round_trip(tricky_tokens: list[str]) -> None:
    """One WebSocket text message per event: the JSON object itself."""
    framing = OPENAI_RESPONSES.over(MESSAGES)
    assert framing is OPENAI_RESPONSES
    check_stream([framing.decode(p) for p in payloads(tricky_tokens)], tricky_tokens)


def test_single_token_round_trip(tricky_token: str) -> None:
    payload = OPENAI_RESPONSES.encode_token(STREAM_ID, MODEL, 7, tricky_token)
    assert "\n" not in payload and "\r" not in payload
    assert "\u2028" not in payload and "\u2029" not in payload and "\u0085" not in payload
    assert OPENAI_RESPONSES.decode(payload) == TokenMsg(i=None, text=tricky_token)
    assert json.loads(payload)["sequence_number"] == openai_responses.START_EVENTS + 7


@pytest.mark.parametrize("text", [None, "Hello, world"], ids=["registry-end", "whole-text"])
def test_every_event_is_what_the_sdk_declares(text: str | None) -> None:
    """Strict validation (not the SDK's lenient construct) of every event, in order, with
    consecutive sequence numbers and the function call at the end."""
    tokens = ["Hello", ", ", "world"] if text else ["a", "b"]
    events = [SDK_EVENT.validate_python(json.loads(p)) for p in payloads(tokens, text=text)]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events][:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    completed = events[-1]
    assert completed.type == "response.completed"
    response = completed.response
    assert response.id == STREAM_ID and response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens == len(tokens)
    message, call = response.output
    assert message.type == "message" and message.content[0].type == "output_text"
    assert message.content[0].text == (text or "")
    assert call.type == "function_call" and call.name == openai_responses.TOOL_NAME
    arguments = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(arguments) == 2
    assert "".join(a.delta for a in arguments) == call.arguments
    assert json.loads(call.arguments) == {"stream_id": STREAM_ID, "tokens": len(tokens)}


def ended(n: int) -> EndMsg:
    """The end the decoder reads after `n` tokens: with the default tool call."""
    call = ToolCall(openai_responses.TOOL_NAME, openai_responses.tool_arguments(STREAM_ID, n))
    return EndMsg(tokens=n, stream_id=STREAM_ID, tool_call=call)


def test_a_failed_generation_ends_with_response_failed() -> None:
    body = payloads(["a", "b"], "it broke")
    failed = SDK_EVENT.validate_python(json.loads(body[-1]))
    assert failed.type == "response.failed" and failed.sequence_number == len(body) - 1
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    names, messages = decode_sse([sse_body(["a", "b"], "it broke")])
    assert names[-1] == "response.failed"
    assert [m.text for m in messages if isinstance(m, TokenMsg)] == ["a", "b"]
    assert [m for m in messages if isinstance(m, EndMsg)] == [EndMsg(error="it broke")]
    assert messages[-1] == EndMsg(error="it broke")


def test_an_empty_answer_still_ends_in_the_tool_call() -> None:
    names, messages = decode_sse([sse_body([])])
    assert messages[-1] == ended(0)  # the decoder reads the call from response.completed
    assert "response.function_call_arguments.done" in names


def test_a_requests_tool_call_ends_the_answer_and_decodes_from_the_completed_response() -> None:
    call = ToolCall("search", '{"query":"rows for step 2","limit":20}')
    body = OPENAI_RESPONSES.end(STREAM_ID, "mock", 2, None, call)
    completed = SDK_EVENT.validate_python(json.loads(body[-1]))
    assert completed.type == "response.completed"
    item = completed.response.output[1]
    assert isinstance(item, ResponseFunctionToolCall)
    assert (item.name, item.arguments) == (call.name, call.arguments)
    deltas = [SDK_EVENT.validate_python(json.loads(p)) for p in body]
    streamed = [e.delta for e in deltas if e.type == "response.function_call_arguments.delta"]
    assert "".join(streamed) == call.arguments
    assert OPENAI_RESPONSES.decode(body[-1]) == EndMsg(
        tokens=2, stream_id=STREAM_ID, tool_call=call
    )


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "error", "code": "x", "message": "rate limited", "sequence_number": 3}, None),
        ({"type": "error", "error": {"message": "rate limited"}}, None),
        (
            {"type": "response.incomplete", "response": {"id": "r", "usage": {"output_tokens": 5}}},
            EndMsg(tokens=5, stream_id="r"),
        ),
        ({"type": "response.completed", "response": {"id": "r"}}, EndMsg(stream_id="r")),
        ({"type": "response.reasoning_summary_text.delta", "delta": "hmm"}, IgnoredMsg()),
        ({"type": "response.output_text.annotation.added"}, IgnoredMsg()),
        ({"type": "response.output_text.delta", "delta": ""}, TokenMsg(i=None, text="")),
    ],
)
def test_decoder_reads_what_openai_sends(event: dict, message: Message | None) -> None:
    decoded = OPENAI_RESPONSES.decode(json.dumps(event))
    assert decoded == (message or EndMsg(error="rate limited"))


@pytest.mark.parametrize(
    "payload",
    [
        "[DONE]",
        "[]",
        '{"delta": "x"}',
        '{"type": "response.output_text.delta", "delta": 3}',
        '{"type": "response.completed"}',
        '{"type": "response.failed", "response": "no"}',
    ],
)
def test_decoder_refuses_what_is_not_an_event(payload: str) -> None:
    with pytest.raises(ProtocolError):
        OPENAI_RESPONSES.decode(payload)


def test_event_names() -> None:
    name = OPENAI_RESPONSES.event_name
    assert name is not None
    for payload in payloads(["x"], "boom") + payloads(["x"]):
        assert name(payload) == json.loads(payload)["type"]
    assert name('{"sequence_number":1,"type":"response.created"}') == "response.created"
    assert name('{"type":"a\\u002eb"}') == "a.b"
    assert name("not json") is None and name('{"type": 3}') is None


def test_the_registry_carries_it_over_events_and_messages() -> None:
    assert FRAMINGS["openai-responses"] is OPENAI_RESPONSES
    assert OPENAI_RESPONSES.carriages == (EVENTS, MESSAGES)
    assert not OPENAI_RESPONSES.carries_index and OPENAI_RESPONSES.boundaries
    for carriage in (LINES, ENVELOPE):
        with pytest.raises(ProtocolError, match="travels as events, messages"):
            OPENAI_RESPONSES.over(carriage)
    for other in FRAMINGS.values():  # the one framing that names its SSE events
        assert (other.event_name is None) == (other is not OPENAI_RESPONSES)
