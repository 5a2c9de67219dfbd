"""Framings `json` and `openai`: encode -> transport bytes -> incremental decode round trips."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from errors import ProtocolError
from wire.framing import JSON, OPENAI, Framing, get_framing
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg
from wire.ndjson import LineDecoder, encode_line
from wire.sse import SSEStreamDecoder, encode_event

STREAM_ID = "s-42"
MODEL = "mock-model"
FRAMINGS = [JSON, OPENAI]
TRANSPORTS = ["sse", "ndjson"]

Partitioner = Callable[[bytes, str], Iterator[tuple[str, list[bytes]]]]


def encode_payload(transport: str, payload: str, event_id: str | None) -> bytes:
    if transport == "sse":
        return encode_event(payload, event_id)
    return encode_line(payload)


def encode_stream(
    framing: Framing, transport: str, tokens: list[str], error: str | None = None
) -> bytes:
    out = [encode_payload(transport, p, None) for p in framing.encode_start(STREAM_ID, MODEL)]
    for i, text in enumerate(tokens):
        payload = framing.encode_token(STREAM_ID, MODEL, i, text)
        out.append(encode_payload(transport, payload, str(i)))
    for payload in framing.encode_end(STREAM_ID, MODEL, len(tokens), error):
        out.append(encode_payload(transport, payload, None))
    return b"".join(out)


def transport_payloads(transport: str, chunks: list[bytes]) -> list[tuple[str, str | None]]:
    """Payloads with their SSE event id (None for NDJSON), decoded incrementally."""
    if transport == "sse":
        sse = SSEStreamDecoder()
        events = [e for chunk in chunks for e in sse.feed(chunk)] + sse.close()
        return [(e.data, e.id) for e in events]
    lines = LineDecoder()
    decoded = [line for chunk in chunks for line in lines.feed(chunk)] + lines.close()
    return [(line, None) for line in decoded]


def decode_stream(framing: Framing, transport: str, chunks: list[bytes]) -> list[Message]:
    return [framing.decode(payload) for payload, _ in transport_payloads(transport, chunks)]


def expected_messages(framing: Framing, tokens: list[str]) -> list[Message]:
    if framing is JSON:
        return [
            *(TokenMsg(i=i, text=t) for i, t in enumerate(tokens)),
            EndMsg(tokens=len(tokens), stream_id=STREAM_ID),
        ]
    # openai: role-only chunk, content deltas, finish_reason chunk, usage chunk, [DONE].
    return [
        IgnoredMsg(),
        *(TokenMsg(i=None, text=t) for t in tokens),
        IgnoredMsg(),
        IgnoredMsg(),
        EndMsg(),
    ]


def assert_stream_shape(framing: Framing, messages: list[Message], tokens: list[str]) -> None:
    """The properties every framing promises, stated independently of the exact sequence."""
    token_msgs = [m for m in messages if isinstance(m, TokenMsg)]
    ends = [m for m in messages if isinstance(m, EndMsg)]
    assert [m.text for m in token_msgs] == tokens
    if framing.carries_index:
        assert [m.i for m in token_msgs] == list(range(len(tokens)))
        assert all(not isinstance(m, IgnoredMsg) for m in messages)
    else:
        assert [m.i for m in token_msgs] == [None] * len(tokens)
    assert len(ends) == 1
    assert messages[-1] is ends[0]
    if framing is JSON:
        assert ends[0].tokens == len(tokens)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_stream_round_trip(
    framing: Framing,
    transport: str,
    stream_tokens: list[str],
    mode: str,
    partitions: Partitioner,
) -> None:
    data = encode_stream(framing, transport, stream_tokens)
    expected = expected_messages(framing, stream_tokens)
    assert_stream_shape(framing, expected, stream_tokens)
    for label, chunks in partitions(data, mode):
        assert b"".join(chunks) == data
        assert decode_stream(framing, transport, chunks) == expected, label


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_sse_token_events_carry_their_index_as_event_id(
    framing: Framing, tricky_tokens: list[str]
) -> None:
    data = encode_stream(framing, "sse", tricky_tokens)
    pairs = transport_payloads("sse", [data])
    token_ids = [
        event_id for payload, event_id in pairs if isinstance(framing.decode(payload), TokenMsg)
    ]
    assert token_ids == [str(i) for i in range(len(tricky_tokens))]


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_sse_stream_with_keepalive_pings_between_events(
    framing: Framing, tricky_tokens: list[str]
) -> None:
    """FastAPI's SSE response interleaves `: ping` comments when the source is idle."""
    data = encode_stream(framing, "sse", tricky_tokens)
    with_pings = b"".join(event + b"\n\n: ping\n\n" for event in data.split(b"\n\n") if event)
    assert decode_stream(framing, "sse", [with_pings]) == expected_messages(framing, tricky_tokens)


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_every_payload_is_one_line(framing: Framing, tricky_token: str) -> None:
    payloads = [
        *framing.encode_start(STREAM_ID, MODEL),
        framing.encode_token(STREAM_ID, MODEL, 7, tricky_token),
        *framing.encode_end(STREAM_ID, MODEL, 8, None),
        *framing.encode_end(STREAM_ID, MODEL, 8, "upstream\nfailed"),
    ]
    for payload in payloads:
        assert "\n" not in payload
        assert "\r" not in payload


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_single_token_round_trip(framing: Framing, tricky_token: str) -> None:
    payload = framing.encode_token(STREAM_ID, MODEL, 7, tricky_token)
    expected_i = 7 if framing.carries_index else None
    assert framing.decode(payload) == TokenMsg(i=expected_i, text=tricky_token)


@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_empty_stream_round_trip(framing: Framing) -> None:
    for transport in TRANSPORTS:
        data = encode_stream(framing, transport, [])
        assert decode_stream(framing, transport, [data]) == expected_messages(framing, [])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("framing", FRAMINGS, ids=lambda f: f.name)
def test_error_stream_ends_with_exactly_one_end_message_carrying_the_error(
    framing: Framing, transport: str
) -> None:
    """messages.py: a stream is tokens "followed by exactly one `EndMsg`"."""
    data = encode_stream(framing, transport, ["a", "b"], error="upstream failed")
    messages = decode_stream(framing, transport, [data])
    ends = [m for m in messages if isinstance(m, EndMsg)]
    assert [m.text for m in messages if isinstance(m, TokenMsg)] == ["a", "b"]
    assert len(ends) == 1
    assert messages[-1] is ends[0]
    assert ends[0].error == "upstream failed"


# --- get_framing --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "framing"), [("json", JSON), ("openai", OPENAI)])
def test_get_framing_known(name: str, framing: Framing) -> None:
    assert get_framing(name) is framing
    assert framing.name == name


def test_carries_index_flags() -> None:
    assert JSON.carries_index is True
    assert OPENAI.carries_index is False


@pytest.mark.parametrize("name", ["xml", "", "JSON", "OpenAI", "json ", "vercel"])
def test_get_framing_unknown(name: str) -> None:
    with pytest.raises(ProtocolError) as exc_info:
        get_framing(name)
    allowed = "json, openai, openai-responses, vercel-ui, vercel-data, langchain, raw"
    assert str(exc_info.value) == f"unknown framing {name!r}; allowed: {allowed}"
    assert exc_info.value.__cause__ is None


# --- json framing -------------------------------------------------------------------------


def test_json_token_exact_text() -> None:
    assert JSON.encode_token(STREAM_ID, MODEL, 3, " hello") == '{"i":3,"t":" hello"}'
    assert JSON.decode('{"i":3,"t":" hello"}') == TokenMsg(i=3, text=" hello")


def test_json_start_is_empty() -> None:
    assert JSON.encode_start(STREAM_ID, MODEL) == []


def test_json_end_exact_text() -> None:
    assert JSON.encode_end(STREAM_ID, MODEL, 5, None) == ['{"done":true,"n":5,"id":"s-42"}']
    assert JSON.decode('{"done":true,"n":5,"id":"s-42"}') == EndMsg(tokens=5, stream_id="s-42")


def test_json_end_with_error() -> None:
    [payload] = JSON.encode_end(STREAM_ID, MODEL, 2, "rate limited")
    assert payload == '{"done":true,"n":2,"id":"s-42","error":"rate limited"}'
    assert JSON.decode(payload) == EndMsg(tokens=2, stream_id="s-42", error="rate limited")


def test_json_end_without_count_or_id() -> None:
    assert JSON.decode('{"done":true}') == EndMsg(tokens=None, stream_id=None, error=None)


MALFORMED_JSON = [
    "",
    " ",
    "not json",
    '{"i":0,"t":"x"',
    '{"i":0,"t":"x"}}',
    "{'i':0,'t':'x'}",
    '{"i":0,"t":"\\x"}',
    "[DONE",
]

JSON_NON_OBJECTS = ["[DONE]", "[1,2]", '"text"', "5", "null", "true"]
JSON_MISSING_OR_MISTYPED_FIELDS = [
    "{}",
    '{"i":0}',
    '{"t":"x"}',
    '{"i":null,"t":"x"}',
    '{"i":"0","t":"x"}',
    '{"i":1.5,"t":"x"}',
    '{"i":0,"t":null}',
    '{"i":0,"t":5}',
    '{"i":0,"t":["x"]}',
    '{"done":false}',
    '{"done":"true","n":1}',
    '{"done":1,"n":1}',
]


# --- openai framing -----------------------------------------------------------------------

OPENAI_CONTENT_CHUNK = (
    '{"id":"chatcmpl-s-42","object":"chat.completion.chunk","created":0,"model":"mock-model",'
    '"choices":[{"index":0,"delta":{"content":" hi"},"logprobs":null,"finish_reason":null}]}'
)


def test_openai_token_exact_text() -> None:
    assert OPENAI.encode_token(STREAM_ID, MODEL, 0, " hi") == OPENAI_CONTENT_CHUNK
    assert OPENAI.decode(OPENAI_CONTENT_CHUNK) == TokenMsg(i=None, text=" hi")


def test_openai_end_sequence() -> None:
    finish, usage, done = OPENAI.encode_end(STREAM_ID, MODEL, 3, None)
    assert done == "[DONE]"
    assert OPENAI.decode(finish) == IgnoredMsg()
    assert OPENAI.decode(usage) == IgnoredMsg()
    assert OPENAI.decode(done) == EndMsg()
    assert '"usage":{"prompt_tokens":0,"completion_tokens":3,"total_tokens":3}' in usage


def test_openai_error_end_sequence() -> None:
    # like OpenAI: the error object ends the stream, with no [DONE] after it
    assert OPENAI.encode_end(STREAM_ID, MODEL, 3, "boom") == [
        '{"error":{"message":"boom","type":"upstream_error"}}',
    ]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ('{"error":{"message":"rate limited","type":"x"}}', "rate limited"),
        ('{"error":"boom"}', "boom"),
        ('{"error":{"message":"über\\nfail"}}', "über\nfail"),
    ],
)
def test_openai_error_object(payload: str, error: str) -> None:
    assert OPENAI.decode(payload) == EndMsg(error=error)


@pytest.mark.parametrize(
    "payload",
    [
        '{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
        '{"choices":[{"index":0,"delta":{"role":"assistant"}}]}',
        '{"choices":[{"index":0,"delta":{"content":null}}]}',
        '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
        '{"choices":[{"index":0,"delta":null,"finish_reason":"stop"}]}',
        '{"choices":[{"index":0}]}',
        '{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}',
    ],
)
def test_openai_ignored_chunks(payload: str) -> None:
    assert OPENAI.decode(payload) == IgnoredMsg()


def test_openai_empty_token_is_indistinguishable_from_no_content() -> None:
    """An empty delta carries no token, so the openai framing cannot carry `""` tokens."""
    assert OPENAI.decode(OPENAI.encode_token(STREAM_ID, MODEL, 0, "")) == IgnoredMsg()


# --- malformed payloads: every framing refuses them ----------------------------------------

OPENAI_MALFORMED_CHUNKS = [
    "[1,2]",
    '"[DONE]"',
    "null",
    " [DONE]",
    "[DONE] ",
    '{"object":"chat.completion.chunk"}',
    '{"choices":null}',
    '{"choices":{"0":{}}}',
    '{"choices":[{"delta":{"content":5}}]}',
    '{"choices":[{"delta":{"content":["a"]}}]}',
    '{"choices":[{"delta":{"content":{"text":"a"}}}]}',
]
# mistyped choices: they must surface as `ProtocolError`, not as an AttributeError from `.get`
OPENAI_MISTYPED_CHOICES = [
    '{"choices":[1]}',
    '{"choices":[null]}',
    '{"choices":["x"]}',
    '{"choices":[{"delta":"x"}]}',
    '{"choices":[{"delta":["x"]}]}',
]
REJECTED = [
    *((framing, payload) for framing in FRAMINGS for payload in MALFORMED_JSON),
    *((JSON, payload) for payload in JSON_NON_OBJECTS + JSON_MISSING_OR_MISTYPED_FIELDS),
    *((OPENAI, payload) for payload in OPENAI_MALFORMED_CHUNKS + OPENAI_MISTYPED_CHOICES),
]


@pytest.mark.parametrize(
    ("framing", "payload"), REJECTED, ids=[f"{f.name}-{p!r}" for f, p in REJECTED]
)
def test_malformed_payload_is_a_protocol_error(framing: Framing, payload: str) -> None:
    with pytest.raises(ProtocolError):
        framing.decode(payload)
