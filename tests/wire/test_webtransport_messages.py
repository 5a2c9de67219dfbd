"""WebTransport's length-prefixed messages: varints at each size's edges, and messages
decoded fed whole, bytewise, at every split and at random cuts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from errors import ProtocolError
from wire.messages import dumps
from wire.webtransport import MessageDecoder, encode_message, encode_varint

Partitioner = Callable[[bytes, str], Iterator[tuple[str, list[bytes]]]]
ALL_MODES = ["whole", "bytewise", "every_split", "random"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"\x00"),
        (37, b"\x25"),
        (63, b"\x3f"),
        (64, b"\x40\x40"),
        (15293, b"\x7b\xbd"),  # RFC 9000 appendix A.1's examples
        (16383, b"\x7f\xff"),
        (16384, b"\x80\x00\x40\x00"),
        (494878333, b"\x9d\x7f\x3e\x7d"),
        (151288809941952652, b"\xc2\x19\x7c\x5e\xff\x14\xe8\x8c"),
        ((1 << 62) - 1, b"\xff" * 8),
    ],
)
def test_varint_bytes(value: int, expected: bytes) -> None:
    assert encode_varint(value) == expected


@pytest.mark.parametrize("value", [-1, 1 << 62])
def test_varint_out_of_range(value: int) -> None:
    with pytest.raises(ProtocolError, match="varint"):
        encode_varint(value)


def test_message_bytes() -> None:
    assert encode_message("") == b"\x00"
    assert encode_message("hi") == b"\x02hi"
    assert encode_message("日本") == b"\x06" + "日本".encode()
    assert encode_message("x" * 64) == b"\x40\x40" + b"x" * 64


def test_messages_at_every_cut(
    tricky_tokens: list[str], long_token: str, partitions: Partitioner
) -> None:
    texts = [dumps({"i": i, "t": t}) for i, t in enumerate(tricky_tokens)]
    texts += [long_token, "", "a\nb raw", "x" * 20_000]  # any text: newlines, empty, 2-4 byte sizes
    data = b"".join(encode_message(t) for t in texts)
    for mode in ALL_MODES:
        for label, chunks in partitions(data, mode):
            decoder = MessageDecoder()
            got = [m for chunk in chunks for m in decoder.feed(chunk)]
            assert got == texts, label
            assert decoder.pending == 0, label


def test_a_message_cut_short_is_pending() -> None:
    decoder = MessageDecoder()
    assert decoder.feed(encode_message("hello")[:-1]) == []
    assert decoder.pending == 5


def test_oversized_message_refused_before_it_is_read_after_those_before_it() -> None:
    decoder = MessageDecoder(max_bytes=10)
    assert decoder.feed(encode_message("ok") + encode_varint(11)) == ["ok"]
    assert isinstance(decoder.error, ProtocolError)
    assert "11 bytes is over the 10" in str(decoder.error)
    assert decoder.feed(encode_message("later")) == []  # the stream is unreadable from there
    assert decoder.pending == 0


def test_invalid_utf8_refused() -> None:
    decoder = MessageDecoder()
    assert decoder.feed(b"\x02\xff\xfe") == []
    assert decoder.error is not None and "UTF-8" in str(decoder.error)
