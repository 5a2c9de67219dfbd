"""The framings people ship (`vercel-ui`, `vercel-data`, `langchain`, `raw`) and the JSON
line safety of every framing: encode -> the bytes each carrying transport writes ->
incremental decode, fed whole, byte by byte, at every split and at random splits, with the
tricky tokens; exact bytes against the published formats; the carriers each framing
declares."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from errors import ProtocolError
from wire.carriages import ENVELOPE, EVENTS, LINES, MESSAGES
from wire.framing import (
    FRAMINGS,
    JSON,
    LANGCHAIN,
    OPENAI,
    OPENAI_LINES_DONE,
    RAW,
    VERCEL_DATA,
    VERCEL_UI,
    Framing,
)
from wire.messages import EndMsg, IgnoredMsg, Message, TokenMsg, dumps, dumps_line
from wire.ndjson import LineDecoder, encode_line
from wire.raw import TextPieces, sse_form
from wire.sse import SSEStreamDecoder, encode_event

STREAM_ID = "s-42"
MODEL = "mock-model"
SHIPPED = [VERCEL_UI, VERCEL_DATA, LANGCHAIN, RAW]
PAIRS = [(f, c) for f in SHIPPED for c in f.carriages or ()]
BYTE_PAIRS = [(f, c) for f, c in PAIRS if c != MESSAGES]

Partitioner = Callable[[bytes, str], Iterator[tuple[str, list[bytes]]]]


def pair_id(pair: object) -> str:
    return pair.name if isinstance(pair, Framing) else str(pair)


# --- what the server writes, and what a client decodes ------------------------------------


def payloads(
    framing: Framing, tokens: list[str], error: str | None = None
) -> list[tuple[int | None, str]]:
    """(token index or None, payload) in the order `servers.streaming.framed_batches` sends."""
    out: list[tuple[int | None, str]] = [(None, p) for p in framing.encode_start(STREAM_ID, MODEL)]
    out += [(i, framing.encode_token(STREAM_ID, MODEL, i, t)) for i, t in enumerate(tokens)]
    if error is None or framing.boundaries:
        out += [(None, p) for p in framing.encode_end(STREAM_ID, MODEL, len(tokens), error)]
    return out


def encode(framing: Framing, transport: str, tokens: list[str], error: str | None = None) -> bytes:
    """The body as `servers/sse.py` and `servers/chunked.py` write it."""
    framing = framing.over(transport)
    body = []
    for index, payload in payloads(framing, tokens, error):
        if transport == EVENTS:
            numbered = index is not None and framing.event_ids
            body.append(encode_event(payload, str(index) if numbered else None))
        elif framing.boundaries:
            body.append(encode_line(payload))
        elif payload:
            body.append(payload.encode())
    return b"".join(body)


def decode(framing: Framing, transport: str, chunks: list[bytes]) -> list[Message]:
    """What a client's decoders make of the body, read by read, as `clients/http_stream.py`
    does (a framing without boundaries ends at the end of the body)."""
    if transport == EVENTS:
        sse = SSEStreamDecoder()
        events = [e for chunk in chunks for e in sse.feed(chunk)] + sse.close()
        texts = [e.data for e in events]
    else:
        decoder: LineDecoder | TextPieces = LineDecoder() if framing.boundaries else TextPieces()
        texts = [t for chunk in chunks for t in decoder.feed(chunk)] + decoder.close()
    messages = [framing.decode(t) for t in texts]
    return messages if framing.boundaries else [*messages, EndMsg()]


def tokens_of(messages: list[Message]) -> list[str]:
    return [m.text for m in messages if isinstance(m, TokenMsg)]


def check_stream(framing: Framing, transport: str, messages: list[Message], tokens: list[str]):
    ends = [m for m in messages if isinstance(m, EndMsg)]
    assert len(ends) == 1 and messages[-1] is ends[0] and ends[0].error is None
    if framing.boundaries:
        assert tokens_of(messages) == tokens
        assert all(m.i is None for m in messages if isinstance(m, TokenMsg))
    else:  # pieces: only their concatenation is the answer
        form = sse_form if transport == EVENTS else str
        assert "".join(tokens_of(messages)) == "".join(form(t) for t in tokens)


@pytest.mark.parametrize("pair", BYTE_PAIRS, ids=lambda p: f"{p[0].name}-{p[1]}")
def test_stream_round_trip_at_any_split(
    pair: tuple[Framing, str],
    stream_tokens: list[str],
    mode: str,
    partitions: Partitioner,
) -> None:
    framing, transport = pair
    data = encode(framing, transport, stream_tokens)
    whole = decode(framing, transport, [data])
    check_stream(framing, transport, whole, stream_tokens)
    for label, chunks in partitions(data, mode):
        assert b"".join(chunks) == data
        messages = decode(framing, transport, chunks)
        if framing.boundaries:
            assert messages == whole, label
        else:
            check_stream(framing, transport, messages, stream_tokens)


@pytest.mark.parametrize("framing", [LANGCHAIN], ids=pair_id)
def test_websocket_messages_round_trip(framing: Framing, tricky_tokens: list[str]) -> None:
    """One WebSocket text message per payload: nothing to split."""
    messages = [framing.decode(p) for _, p in payloads(framing.over(MESSAGES), tricky_tokens)]
    check_stream(framing, MESSAGES, messages, tricky_tokens)


@pytest.mark.parametrize("framing", [VERCEL_UI, VERCEL_DATA, LANGCHAIN], ids=pair_id)
def test_single_token_round_trip(framing: Framing, tricky_token: str) -> None:
    payload = framing.encode_token(STREAM_ID, MODEL, 7, tricky_token)
    assert "\n" not in payload and "\r" not in payload
    assert framing.decode(payload) == TokenMsg(i=None, text=tricky_token)


def test_raw_token_is_the_text_itself(tricky_token: str) -> None:
    assert RAW.encode_token(STREAM_ID, MODEL, 7, tricky_token) == tricky_token
    assert RAW.decode(tricky_token) == TokenMsg(i=None, text=tricky_token)


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0].name}-{p[1]}")
def test_empty_stream(pair: tuple[Framing, str]) -> None:
    framing, transport = pair
    if transport == MESSAGES:
        messages = [framing.decode(p) for _, p in payloads(framing, [])]
    else:
        messages = decode(framing, transport, [encode(framing, transport, [])])
    check_stream(framing, transport, messages, [])


@pytest.mark.parametrize("framing", [VERCEL_UI, VERCEL_DATA, LANGCHAIN], ids=pair_id)
def test_a_failed_generation_ends_with_its_error(framing: Framing) -> None:
    transport = (framing.carriages or (EVENTS,))[0]
    messages = decode(framing, transport, [encode(framing, transport, ["a", "b"], "it broke")])
    assert tokens_of(messages) == ["a", "b"]
    ends = [m for m in messages if isinstance(m, EndMsg)]
    assert ends[0].error == "it broke"  # a client stops here (`StreamResult.take` raises)
    if framing is VERCEL_UI:  # the SDK still ends the body with [DONE]
        assert messages[-2:] == [EndMsg(error="it broke"), EndMsg()]
    else:
        assert ends == [messages[-1]]


# --- exact bytes, as the published formats have them --------------------------------------


def test_vercel_ui_exact_bytes_and_headers() -> None:
    """`streamText(...).toUIMessageStreamResponse()` as the AI SDK's own tests show it
    (packages/ai/src/generate-text/stream-text.test.ts: its text id is "1", ours "0")."""
    data = encode(VERCEL_UI, EVENTS, ["Hello", ", ", "world!"])
    assert data == (
        b'data: {"type":"start"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"0"}\n\n'
        b'data: {"type":"text-delta","id":"0","delta":"Hello"}\n\n'
        b'data: {"type":"text-delta","id":"0","delta":", "}\n\n'
        b'data: {"type":"text-delta","id":"0","delta":"world!"}\n\n'
        b'data: {"type":"text-end","id":"0"}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish"}\n\n'
        b"data: [DONE]\n\n"
    )
    assert VERCEL_UI.media_type(EVENTS, "x") == "text/event-stream"
    assert dict(VERCEL_UI.headers) == {"x-vercel-ai-ui-message-stream": "v1"}
    assert not VERCEL_UI.event_ids
    error = encode(VERCEL_UI, EVENTS, [], "boom")
    assert error.endswith(b'data: {"type":"error","errorText":"boom"}\n\ndata: [DONE]\n\n')


def test_vercel_data_exact_bytes_and_headers() -> None:
    data = encode(VERCEL_DATA, LINES, ["Hello", ", \u2028"])
    assert data.decode() == (
        'f:{"messageId":"msg-s-42"}\n'
        '0:"Hello"\n'
        '0:", \\u2028"\n'
        'e:{"finishReason":"stop","usage":{"promptTokens":0,"completionTokens":2},'
        '"isContinued":false}\n'
        'd:{"finishReason":"stop","usage":{"promptTokens":0,"completionTokens":2}}\n'
    )
    assert encode(VERCEL_DATA, LINES, ["a"], "boom").endswith(b'0:"a"\n3:"boom"\n')
    assert VERCEL_DATA.media_type(LINES, "x") == "text/plain; charset=utf-8"
    assert dict(VERCEL_DATA.headers) == {"x-vercel-ai-data-stream": "v1"}
    assert VERCEL_DATA.decode(data.decode().splitlines()[-1]) == EndMsg(tokens=2)


def test_langchain_exact_bytes() -> None:
    lines = encode(LANGCHAIN, LINES, ["Hi"]).decode().splitlines()
    assert lines == [
        '{"sender":"bot","message":"","type":"start"}',
        '{"sender":"bot","message":"Hi","type":"stream"}',
        '{"sender":"bot","message":"","type":"end"}',
    ]
    error = LANGCHAIN.encode_end(STREAM_ID, MODEL, 0, "Sorry")
    assert error == ['{"sender":"bot","message":"Sorry","type":"error"}']


def test_raw_exact_bytes() -> None:
    assert encode(RAW, LINES, ["a", "", "b\r\nc"]) == b"ab\r\nc"
    assert encode(RAW, EVENTS, ["a", "b\r\nc"]) == b"data: a\n\ndata: b\ndata: c\n\n"
    assert RAW.media_type(LINES, "x") == "text/plain; charset=utf-8"
    assert RAW.media_type(EVENTS, "text/event-stream") == "text/event-stream"


# --- decoders: what they accept and refuse ------------------------------------------------


@pytest.mark.parametrize(
    ("framing", "payload", "message"),
    [
        # vercel-ui: what the SDK sends
        (VERCEL_UI, '{"type":"start","messageId":"m"}', IgnoredMsg()),
        (VERCEL_UI, '{"type":"reasoning-delta","id":"r","delta":"hmm"}', IgnoredMsg()),
        (VERCEL_UI, '{"type":"data-weather","data":{"c":3}}', IgnoredMsg()),
        (VERCEL_UI, '{"type":"finish","finishReason":"stop"}', IgnoredMsg()),  # what ai 6 sends
        (VERCEL_UI, '{"type":"text-delta","id":"x","delta":""}', TokenMsg(i=None, text="")),
        (VERCEL_UI, '{"type":"abort"}', EndMsg(error="aborted: no reason given")),
        (VERCEL_UI, "[DONE]", EndMsg()),
        # vercel-data: every part code
        (VERCEL_DATA, '2:[{"x":1}]', IgnoredMsg()),
        (VERCEL_DATA, '8:[{"note":1}]', IgnoredMsg()),
        (VERCEL_DATA, 'g:"thinking"', IgnoredMsg()),
        (VERCEL_DATA, 'e:{"finishReason":"length","isContinued":true}', IgnoredMsg()),
        (VERCEL_DATA, 'd:{"finishReason":"stop"}', EndMsg()),
        (VERCEL_DATA, '0:"a:b"', TokenMsg(i=None, text="a:b")),
        # langchain
        (LANGCHAIN, '{"sender":"you","message":"question?","type":"stream"}', IgnoredMsg()),
        (
            LANGCHAIN,
            '{"sender":"bot","message":"Synthesizing question...","type":"info"}',
            IgnoredMsg(),
        ),
        (LANGCHAIN, '{"sender":"bot","message":"","type":"end","extra":1}', EndMsg()),
    ],
    ids=pair_id,
)
def test_decoder_reads(framing: Framing, payload: str, message: Message) -> None:
    assert framing.decode(payload) == message


@pytest.mark.parametrize(
    ("framing", "payload"),
    [
        *(
            (VERCEL_UI, p)
            for p in [
                "",
                "[1]",
                '{"type":"text-delta","id":"0"}',
                '{"type":"bogus"}',
                '{"type":"error"}',
            ]
        ),
        *(
            (VERCEL_DATA, p)
            for p in ["", '"text"', 'z:"x"', "0:5", "0:", '3:{"m":1}', 'd:{"usage":{}}', "0:'x'"]
        ),
        (LANGCHAIN, '{"sender":"robot","message":"x","type":"stream"}'),
        (LANGCHAIN, '{"sender":"bot","message":1,"type":"stream"}'),
        (LANGCHAIN, '{"sender":"bot","message":"x","type":"chunk"}'),
        (LANGCHAIN, "[]"),
    ],
    ids=pair_id,
)
def test_decoder_refuses(framing: Framing, payload: str) -> None:
    with pytest.raises(ProtocolError):
        framing.decode(payload)


def test_text_pieces_wait_for_whole_characters() -> None:
    pieces = TextPieces()
    data = "日😀".encode()
    assert [pieces.feed(data[k : k + 1]) for k in range(len(data))] == [
        [],
        [],
        ["日"],
        [],
        [],
        [],
        ["😀"],
    ]
    assert pieces.close() == []
    broken = TextPieces()
    assert broken.feed(b"\xe6\x97") == []
    with pytest.raises(ProtocolError):
        broken.close()


# --- carriers -----------------------------------------------------------------------------


def test_each_framing_names_its_carriages() -> None:
    assert {name: f.carriages for name, f in FRAMINGS.items()} == {
        "json": None,
        "openai": None,
        "openai-responses": (EVENTS, MESSAGES),
        "vercel-ui": (EVENTS,),
        "vercel-data": (LINES,),
        "langchain": (EVENTS, LINES, MESSAGES),
        "raw": (EVENTS, LINES),
    }


@pytest.mark.parametrize(
    ("framing", "carriage", "message"),
    [
        (VERCEL_UI, LINES, "framing vercel-ui cannot travel as lines; it travels as events"),
        (VERCEL_DATA, MESSAGES, "cannot travel as messages; it travels as lines"),
        (RAW, MESSAGES, "raw cannot travel as messages; it travels as events, lines"),
        (LANGCHAIN, ENVELOPE, "it travels as events, lines, messages"),
    ],
)
def test_an_impossible_pair_is_refused(framing: Framing, carriage: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        framing.over(carriage)


# --- JSON lines that survive clients splitting on every Unicode line break ----------------

LINE_BREAKS = ["\u2028", "\u2029", "\u0085"]
LINE_FRAMINGS = [JSON, OPENAI, VERCEL_DATA, LANGCHAIN]


def test_dumps_line_escapes_the_line_breaks_json_leaves_raw() -> None:
    text = "a\u2028b\u2029c\u0085d 日本"
    assert dumps(text) == f'"{text}"'  # orjson leaves them raw
    assert dumps_line(text) == '"a\\u2028b\\u2029c\\u0085d 日本"'
    assert json.loads(dumps_line(text)) == text
    assert dumps_line({"t": "plain"}) == dumps({"t": "plain"})


class Reads(httpx.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def httpx_lines(chunks: list[bytes]) -> list[str]:
    """httpx's `Response.iter_lines` (which splits like `str.splitlines`) over these reads."""
    return list(httpx.Response(200, stream=Reads(chunks)).iter_lines())


@pytest.mark.parametrize("framing", LINE_FRAMINGS, ids=pair_id)
@pytest.mark.parametrize("mode", ["whole", "bytewise", "random"])
def test_httpx_iter_lines_keeps_every_token_of_every_line_framing(
    framing: Framing, mode: str, partitions: Partitioner
) -> None:
    tokens = ["a\u2028b", "\u2029", "c\u0085", "x" + "".join(LINE_BREAKS) * 3, "\r\n"]
    data = encode(framing, LINES, tokens)
    for label, chunks in partitions(data, mode):
        lines = httpx_lines(chunks)
        for line in lines:
            if framing is not VERCEL_DATA:
                json.loads(line)  # every line is JSON: the openai end included
        assert tokens_of([framing.decode(line) for line in lines]) == tokens, label


def test_httpx_iter_lines_cut_raw_u2028_lines_before() -> None:
    """Why: the same line with U+2028 left raw (as `dumps` writes it) arrives in two."""
    raw_line = encode_line(dumps({"i": 0, "t": "a\u2028b"}))
    assert httpx_lines([raw_line]) == ['{"i":0,"t":"a', 'b"}']


def test_openai_over_chunked_ends_with_a_json_line() -> None:
    """A bare `[DONE]` line breaks `json.loads` per line: over chunked the end is JSON."""
    lines = encode(OPENAI, LINES, ["a"]).decode().splitlines()
    assert lines[-1] == OPENAI_LINES_DONE == '{"choices":[],"done":true}'
    assert [json.loads(line) for line in lines][-1] == {"choices": [], "done": True}
    assert OPENAI.decode(OPENAI_LINES_DONE) == EndMsg()
    assert encode(OPENAI, EVENTS, ["a"]).endswith(b"data: [DONE]\n\n")  # SSE: as OpenAI sends
    errored = encode(OPENAI, LINES, ["a"], "boom").decode().splitlines()
    assert json.loads(errored[-1]) == {"error": {"message": "boom", "type": "upstream_error"}}
