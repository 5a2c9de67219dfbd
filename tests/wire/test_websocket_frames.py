"""The client's side of WebSocket framing: masked frames out, the server's frames in, fed
whole, byte by byte and at every split."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from errors import ProtocolError
from wire.websocket_frames import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    Message,
    MessageDecoder,
    client_frame,
    mask,
)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A frame as a server writes it, serialised by the websockets library."""
    return Frame(Opcode(opcode), payload, fin).serialize(mask=False)


STREAM = (
    server_frame(TEXT, b'{"i":0,"t":"a"}')
    + server_frame(TEXT, "é".encode() * 100)  # a 16-bit length
    + server_frame(TEXT, b"x" * 70_000)  # a 64-bit length
    + server_frame(TEXT, b"frag", fin=False)
    + server_frame(PING, b"p")  # a control frame between fragments
    + server_frame(0, b"ment")
    + server_frame(BINARY, b"\x00\x01")
    + server_frame(CLOSE, b"\x03\xe8")
)
EXPECTED = [
    Message(TEXT, b'{"i":0,"t":"a"}'),
    Message(TEXT, "é".encode() * 100),
    Message(TEXT, b"x" * 70_000),
    Message(PING, b"p"),
    Message(TEXT, b"fragment"),
    Message(BINARY, b"\x00\x01"),
    Message(CLOSE, b"\x03\xe8"),
]


def test_whole() -> None:
    assert MessageDecoder().feed(STREAM) == EXPECTED


def test_byte_by_byte() -> None:
    decoder = MessageDecoder()
    got = [m for k in range(len(STREAM)) for m in decoder.feed(STREAM[k : k + 1])]
    assert got == EXPECTED


def test_at_every_split() -> None:
    head = STREAM[:400]  # the short frames; the long one is covered above
    expected = MessageDecoder().feed(head)
    for cut in range(len(head) + 1):
        decoder = MessageDecoder()
        assert decoder.feed(head[:cut]) + decoder.feed(head[cut:]) == expected, cut


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65_535, 65_536])
def test_a_client_frame_is_what_the_library_parses(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = client_frame(TEXT, payload, b"\x01\x02\x03\x04")
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=True)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode == Opcode.TEXT and frame.fin and frame.data == payload


def test_masking_is_its_own_inverse() -> None:
    key = b"\xaa\x55\x0f\xf0"
    assert mask(mask(b"hello, world", key), key) == b"hello, world"
    assert mask(b"", key) == b""


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (bytes([0xC1, 0x01]) + b"a", "RSV"),
        (bytes([0x81, 0x81]) + b"\0\0\0\0a", "masked"),
        (server_frame(0, b"a"), "continuation"),
        (server_frame(TEXT, b"a", fin=False) + server_frame(TEXT, b"b"), "began"),
        (bytes([0x09, 0x01]) + b"p", "control"),
        (bytes([0x83, 0x00]), "opcode"),
    ],
)
def test_protocol_violations_are_named(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        MessageDecoder().feed(data)


def test_a_frame_over_the_limit_is_refused_before_it_is_buffered() -> None:
    with pytest.raises(ProtocolError, match="over the limit"):
        MessageDecoder(max_size=100).feed(server_frame(TEXT, b"x" * 200)[:6])


def test_invalid_utf8_text_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        _ = Message(TEXT, b"\xff").text
