"""NDJSON: `encode_line` and `LineDecoder` fed whole, bytewise and at split points."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from errors import ProtocolError
from wire.messages import dumps
from wire.ndjson import LineDecoder, encode_line

Partitioner = Callable[[bytes, str], Iterator[tuple[str, list[bytes]]]]
ALL_MODES = ["whole", "bytewise", "every_split", "random"]

# Every character `str.splitlines()` treats as a line boundary, except LF itself.
UNICODE_LINE_BREAKS = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def decode_all(chunks: list[bytes]) -> list[str]:
    decoder = LineDecoder()
    return [line for chunk in chunks for line in decoder.feed(chunk)] + decoder.close()


# --- encode_line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"i":0,"t":"a"}', b'{"i":0,"t":"a"}\n'),
        ("", b"\n"),
        ("日本", "日本\n".encode()),
        ("a\u2028b", b"a\xe2\x80\xa8b\n"),
        ("a\u0085b", b"a\xc2\x85b\n"),
    ],
)
def test_encode_line_exact_bytes(payload: str, expected: bytes) -> None:
    assert encode_line(payload) == expected


@pytest.mark.parametrize("payload", ["\n", "a\n", "\na", "a\nb", '{"t":"a"}\n{"t":"b"}'])
def test_encode_line_rejects_raw_newline(payload: str) -> None:
    with pytest.raises(ProtocolError):
        encode_line(payload)


def test_encode_line_accepts_every_json_encoded_token(tricky_token: str) -> None:
    payload = dumps({"i": 0, "t": tricky_token})
    assert decode_all([encode_line(payload)]) == [payload]


# --- LineDecoder --------------------------------------------------------------------------


def test_feed_returns_complete_lines_only() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"ab") == []
    assert decoder.feed(b"c\nd") == ["abc"]
    assert decoder.feed(b"e\nf\ng") == ["de", "f"]
    assert decoder.feed(b"") == []
    assert decoder.close() == ["g"]
    assert decoder.close() == []


def test_close_returns_trailing_line_without_newline() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b'{"done":true}') == []
    assert decoder.close() == ['{"done":true}']


@pytest.mark.parametrize("data", [b"", b"a\n", b"a\nb\n"])
def test_close_after_complete_lines_returns_nothing(data: bytes) -> None:
    decoder = LineDecoder()
    decoder.feed(data)
    assert decoder.close() == []


def test_blank_lines_are_keep_alives_and_skipped() -> None:
    assert decode_all([b"\n\na\n\r\n"]) == ["a"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_crlf_line_endings(partitions: Partitioner, mode: str) -> None:
    data = b"a\r\nb\r\n\r\nc\r\n"
    for label, chunks in partitions(data, mode):
        assert decode_all(chunks) == ["a", "b", "c"], label


def test_lone_cr_is_not_a_line_ending() -> None:
    assert decode_all([b"a\rb\n"]) == ["a\rb"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_multibyte_characters_split_across_reads(partitions: Partitioner, mode: str) -> None:
    lines = ["日本語", "👩‍💻🇯🇵", "x\u2028y\u2029z\u0085", "é", "한국어 text"]
    data = b"".join(encode_line(line) for line in lines)
    for label, chunks in partitions(data, mode):
        assert decode_all(chunks) == lines, label


def test_split_inside_a_four_byte_character() -> None:
    decoder = LineDecoder()
    data = encode_line("😀")
    assert decoder.feed(data[:2]) == []
    assert decoder.feed(data[2:3]) == []
    assert decoder.feed(data[3:]) == ["😀"]


def test_long_line_round_trip(long_token: str, partitions: Partitioner) -> None:
    payload = dumps({"i": 0, "t": long_token})
    data = encode_line(payload) + encode_line("[DONE]")
    for mode in ("whole", "bytewise", "some_splits", "random"):
        for label, chunks in partitions(data, mode):
            assert decode_all(chunks) == [payload, "[DONE]"], label


@pytest.mark.parametrize(
    "data",
    [b"\xff\n", b"ok\n\xe6\x97\n", b"\xed\xa0\x80\n", b"\xc0\x80\n"],
    ids=["invalid-start-byte", "truncated-sequence", "surrogate", "overlong"],
)
def test_invalid_utf8_line_raises_wire_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        LineDecoder().feed(data)


def test_invalid_utf8_trailing_line_raises_wire_error_on_close() -> None:
    decoder = LineDecoder()
    assert decoder.feed(b"ok\n\xe6\x97") == ["ok"]
    with pytest.raises(ProtocolError):
        decoder.close()


# --- the bug LineDecoder avoids -----------------------------------------------------------


@pytest.mark.parametrize("separator", UNICODE_LINE_BREAKS, ids=ascii)
def test_str_splitlines_splits_on_unicode_line_breaks(separator: str) -> None:
    """Why NDJSON is not split with `str.splitlines()` (nor httpx's `aiter_lines`)."""
    assert f"a{separator}b".splitlines() == ["a", "b"]


@pytest.mark.parametrize("separator", UNICODE_LINE_BREAKS, ids=ascii)
def test_line_decoder_splits_on_lf_only(separator: str) -> None:
    assert decode_all([f"a{separator}b\n".encode()]) == [f"a{separator}b"]


def test_json_line_with_u2028_survives_line_decoder_but_not_splitlines() -> None:
    payload = dumps({"i": 0, "t": "x\u2028y"})
    assert payload == '{"i":0,"t":"x\u2028y"}'
    assert payload.splitlines() == ['{"i":0,"t":"x', 'y"}']
    assert decode_all([encode_line(payload)]) == [payload]
