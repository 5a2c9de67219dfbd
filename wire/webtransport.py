"""WebTransport's messages: text messages on one bidirectional WebTransport stream, each a
QUIC variable-length integer (RFC 9000 section 16) giving its UTF-8 length, then the text.

A WebTransport stream is a byte stream, so messages need delimiting; a length prefix, not
a newline, because a `messages` framing may carry any text (WebSocket's carriage, which
this one stands beside). Hand-written rather than aioquic's `Buffer`: `wire/` imports no
network library, and the codec is ten lines.
"""

from __future__ import annotations

from errors import ProtocolError

MAX_VARINT = (1 << 62) - 1
_PREFIX = {1: 0x00, 2: 0x40, 4: 0x80, 8: 0xC0}


def encode_varint(value: int) -> bytes:
    """`value` as a QUIC variable-length integer: 1, 2, 4 or 8 bytes."""
    if not 0 <= value <= MAX_VARINT:
        raise ProtocolError(f"a QUIC varint holds 0 to 2^62-1, not {value}")
    for size in (1, 2, 4, 8):
        if value < 1 << (8 * size - 2):
            raw = bytearray(value.to_bytes(size, "big"))
            raw[0] |= _PREFIX[size]
            return bytes(raw)
    raise AssertionError("unreachable")  # pragma: no cover


def encode_message(text: str) -> bytes:
    data = text.encode()
    return encode_varint(len(data)) + data


class MessageDecoder:
    """Feed the stream's bytes as they arrive; get back the complete messages. A message
    that cannot be read (longer than `max_bytes`: the peer is not let to grow the buffer;
    not UTF-8) ends the decoding: the messages before it are returned, `error` says why,
    and later bytes are ignored."""

    def __init__(self, max_bytes: int = 16 << 20) -> None:
        self.max_bytes = max_bytes
        self.error: ProtocolError | None = None
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        if self.error is not None:
            return []
        self._buffer += data
        messages: list[str] = []
        offset = 0
        buffer = self._buffer
        while offset < len(buffer):
            size = 1 << (buffer[offset] >> 6)
            if len(buffer) - offset < size:
                break
            raw = bytearray(buffer[offset : offset + size])
            raw[0] &= 0x3F
            length = int.from_bytes(raw, "big")
            if length > self.max_bytes:
                return self._failed(
                    messages,
                    f"a WebTransport message of {length} bytes is over the "
                    f"{self.max_bytes} allowed",
                )
            end = offset + size + length
            if len(buffer) < end:
                break
            try:
                messages.append(bytes(buffer[offset + size : end]).decode())
            except UnicodeDecodeError as exc:
                return self._failed(messages, f"a WebTransport message is not valid UTF-8: {exc}")
            offset = end
        del buffer[:offset]
        return messages

    def _failed(self, messages: list[str], why: str) -> list[str]:
        self.error = ProtocolError(why)
        self._buffer = bytearray()
        return messages

    @property
    def pending(self) -> int:
        """Bytes of a message not yet whole (at the stream's end: a message cut short)."""
        return len(self._buffer)
