"""SSE: `encode_event` bytes and `SSEStreamDecoder` fed whole, bytewise and at split points."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.sse import format_sse_event
from hypothesis import given
from hypothesis import strategies as st

from errors import ProtocolError
from wire.sse import SSEEvent, SSEStreamDecoder, encode_event

Partitioner = Callable[[bytes, str], Iterator[tuple[str, list[bytes]]]]
ALL_MODES = ["whole", "bytewise", "every_split", "random"]


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEStreamDecoder()
    return [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.close()


def message(data: str, event_id: str = "") -> SSEEvent:
    return SSEEvent(data=data, id=event_id, event="message")


# --- encode_event -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (('{"i":0,"t":"a"}', "0"), b'data: {"i":0,"t":"a"}\nid: 0\n\n'),
        (("[DONE]",), b"data: [DONE]\n\n"),
        (("x", "3", "end"), b"event: end\ndata: x\nid: 3\n\n"),
        ((" leading",), b"data:  leading\n\n"),
        (("a\nb",), b"data: a\ndata: b\n\n"),
        (("",), b"data: \n\n"),
        (("日\u2028",), "data: 日\u2028\n\n".encode()),
    ],
)
def test_encode_event_exact_bytes(
    args: tuple[str] | tuple[str, str] | tuple[str, str, str], expected: bytes
) -> None:
    assert encode_event(*args) == expected


@pytest.mark.parametrize("mode", ALL_MODES)
def test_event_round_trip(tricky_tokens: list[str], partitions: Partitioner, mode: str) -> None:
    """Raw data survives SSE except that CR and CRLF inside data become LF (SSE line ends)."""
    data = b"".join(encode_event(t, str(i)) for i, t in enumerate(tricky_tokens))
    normalized = [t.replace("\r\n", "\n").replace("\r", "\n") for t in tricky_tokens]
    expected = [message(t, str(i)) for i, t in enumerate(normalized)]
    for label, chunks in partitions(data, mode):
        assert decode_all(chunks) == expected, label


def test_event_round_trip_long(long_token: str, partitions: Partitioner) -> None:
    data = encode_event(long_token, "0") + encode_event("[DONE]")
    expected = [message(long_token.replace("\r\n", "\n"), "0"), message("[DONE]", "0")]
    for mode in ("whole", "bytewise", "some_splits", "random"):
        for label, chunks in partitions(data, mode):
            assert decode_all(chunks) == expected, label


@pytest.mark.parametrize("text", ["a\r\nb", "a\rb", "a\nb"])
def test_line_breaks_in_data_arrive_as_lf(text: str) -> None:
    assert decode_all([encode_event(text)]) == [message("a\nb")]


def test_leading_space_in_data_survives() -> None:
    assert decode_all([encode_event("  x")]) == [message("  x")]


def test_event_name_is_kept() -> None:
    assert decode_all([encode_event("bye", "9", "end")]) == [
        SSEEvent(data="bye", id="9", event="end")
    ]


def test_last_event_id_persists_across_events() -> None:
    """Per the SSE spec, an event without `id:` keeps the previous event id."""
    data = encode_event("a", "1") + encode_event("[DONE]")
    assert decode_all([data]) == [message("a", "1"), message("[DONE]", "1")]


# --- decoding the event stream itself -----------------------------------------------------


@pytest.mark.parametrize("mode", ALL_MODES)
def test_multibyte_characters_split_across_reads(partitions: Partitioner, mode: str) -> None:
    text = "日本語👩‍💻🇯🇵\u2028\u0085é"
    data = encode_event(text, "0")
    for label, chunks in partitions(data, mode):
        assert decode_all(chunks) == [message(text, "0")], label


def test_split_inside_a_three_byte_character() -> None:
    decoder = SSEStreamDecoder()
    data = encode_event("日", "0")
    head, tail = data[: len(b"data: ") + 1], data[len(b"data: ") + 1 :]
    assert decoder.feed(head) == []
    assert decoder.feed(tail) == [message("日", "0")]
    assert decoder.close() == []


def test_comment_lines_are_ignored(partitions: Partitioner) -> None:
    data = b": ping\n\ndata: a\n\n: keep-alive\n\n: x\ndata: b\n: y\n\n"
    for mode in ALL_MODES:
        for label, chunks in partitions(data, mode):
            assert decode_all(chunks) == [message("a"), message("b")], label


def test_keepalive_ping_after_event_with_id_is_ignored(partitions: Partitioner) -> None:
    """FastAPI's SSE response sends `: ping\\n\\n` when idle. Per the WHATWG spec a blank line
    with an empty data buffer dispatches nothing, even after an earlier `id:` field."""
    data = encode_event("a", "0") + b": ping\n\n" + encode_event("b", "1")
    for mode in ALL_MODES:
        for label, chunks in partitions(data, mode):
            assert decode_all(chunks) == [message("a", "0"), message("b", "1")], label


def test_blank_lines_after_event_with_id_dispatch_nothing() -> None:
    decoder = SSEStreamDecoder()
    assert decoder.feed(encode_event("a", "0")) == [message("a", "0")]
    assert decoder.feed(b"\n\n") == []
    assert decoder.close() == []


def test_comment_only_stream_yields_nothing() -> None:
    decoder = SSEStreamDecoder()
    assert decoder.feed(b": ping\n\n") == []
    assert decoder.feed(b":\n\n") == []
    assert decoder.close() == []


CRLF_STREAM = b"data: a\r\nid: 1\r\n\r\n"
CR_STREAM = b"data: b\rid: 2\r\r"
MIXED_STREAM = b"data: c\r\ndata: d\rid: 3\n\r\n: ping\rdata: e\n\n"


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CRLF_STREAM, [message("a", "1")]),
        (CR_STREAM, [message("b", "2")]),
        (MIXED_STREAM, [message("c\nd", "3"), message("e", "3")]),
        (
            CRLF_STREAM + CR_STREAM + MIXED_STREAM,
            [
                message("a", "1"),
                message("b", "2"),
                message("c\nd", "3"),
                message("e", "3"),
            ],
        ),
    ],
    ids=["crlf", "cr", "mixed", "all"],
)
def test_crlf_and_cr_line_endings(
    partitions: Partitioner, mode: str, data: bytes, expected: list[SSEEvent]
) -> None:
    for label, chunks in partitions(data, mode):
        assert decode_all(chunks) == expected, label


def test_cr_terminated_event_dispatches_at_once() -> None:
    """A CR ends its line at once (dispatching as early as the bytes allow); an LF in the
    next read is the second half of that CRLF, not another blank line."""
    decoder = SSEStreamDecoder()
    assert decoder.feed(b"data: x\r\r") == [message("x")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: y\r") == []
    assert decoder.feed(b"\n\r\n") == [message("y")]
    assert decoder.close() == []


def test_a_leading_bom_is_ignored() -> None:
    assert decode_all([b"\xef\xbb\xbfdata: a\n\n"]) == [message("a")]
    assert decode_all([b"\xef\xbb", b"\xbfdata: a\n\n"]) == [message("a")]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"retry: 3000\ndata: a\n\n", SSEEvent("a", "", "message", 3000)),
        (b"retry: 3s\ndata: a\n\n", SSEEvent("a", "", "message", None)),
        (b"id: 1\0\ndata: a\n\n", SSEEvent("a", "", "message", None)),
        (b"data\n\n", SSEEvent("", "", "message", None)),
        (b"unknown: x\ndata: a\n\n", SSEEvent("a", "", "message", None)),
    ],
    ids=["retry", "retry-not-digits", "id-with-nul", "data-without-colon", "unknown-field"],
)
def test_fields_follow_the_spec(stream: bytes, expected: SSEEvent) -> None:
    assert decode_all([stream]) == [expected]


@pytest.mark.parametrize("token", ["a", "", " x", "a\nb", "a\r\nb", "\r", "日\u2028", "[DONE]"])
@pytest.mark.parametrize("event_id", [None, "7"])
@pytest.mark.parametrize("event", [None, "end"])
def test_encoding_matches_fastapi_byte_for_byte(
    token: str, event_id: str | None, event: str | None
) -> None:
    """The server sends events through `fastapi.sse`; the decoder is tested on our encoder:
    they must write the same bytes."""
    ours = encode_event(token, event_id, event, retry=5, comment="c")
    theirs = format_sse_event(data_str=token, id=event_id, event=event, retry=5, comment="c")
    assert ours == theirs


FIELD_LINES = st.sampled_from(
    ["data: a", "data:b", "data", "data:  c", "id: 3", "id", "event: e", ": ping", ":", "", "x: y"]
)


@given(
    lines=st.lists(st.tuples(FIELD_LINES, st.sampled_from(["\n", "\r", "\r\n"])), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_split_decodes_like_the_whole(lines: list[tuple[str, str]], cuts: list[int]) -> None:
    """Whatever the fields and line ends, reads split anywhere give the same events as the
    stream fed whole (the sans-I/O property the transport relies on)."""
    data = "".join(line + end for line, end in lines).encode()
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert decode_all(chunks) == decode_all([data])


def test_field_without_space_after_colon() -> None:
    assert decode_all([b"data:x\nid:7\n\n"]) == [message("x", "7")]


def test_unterminated_final_event_is_dropped_on_close() -> None:
    decoder = SSEStreamDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.close() == []


def test_unterminated_final_line_is_dropped_on_close() -> None:
    decoder = SSEStreamDecoder()
    assert decoder.feed(b"data: x") == []
    assert decoder.close() == []


def test_feed_returns_only_events_completed_by_those_bytes() -> None:
    decoder = SSEStreamDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [message("a")]
    assert decoder.feed(b"\n") == [message("b")]
    assert decoder.feed(b"") == []
    assert decoder.close() == []


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: \xff\n\n"],
        [b"data: \xe6\x97\n\n"],
        [b"data: \xed\xa0\x80\n\n"],
    ],
    ids=["invalid-start-byte", "truncated-sequence", "surrogate"],
)
def test_invalid_utf8_raises_wire_error(chunks: list[bytes]) -> None:
    """Like `LineDecoder`, bytes that are not UTF-8 are a protocol error (`ProtocolError`)."""
    decoder = SSEStreamDecoder()
    with pytest.raises(ProtocolError):
        for chunk in chunks:
            decoder.feed(chunk)


def test_truncated_utf8_at_close_raises_wire_error() -> None:
    decoder = SSEStreamDecoder()
    assert decoder.feed(b"data: \xe6\x97") == []
    with pytest.raises(ProtocolError):
        decoder.close()
