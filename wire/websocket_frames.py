"""WebSocket frames (RFC 6455, section 5) as a client sees them, as pure functions over bytes.

The lean WebSocket client of the benchmark's asyncio driver (`clients.ws_io`) decodes the
server's frames with this. Hand-written rather than `websockets`' own parser because that
one is a generator that yields per field: at 1,000 streams x 50 tokens/s it was a fifth of
the driver's CPU (py-spy, docs/scale.md). No extension is negotiated, so RSV bits are
errors; a server's frames are never masked; control frames may come between the fragments
of a message.
"""

from __future__ import annotations

from dataclasses import dataclass

from errors import ProtocolError

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = (CLOSE, PING, PONG)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, 1.3


@dataclass(frozen=True, slots=True)
class Message:
    """A whole message: a text or binary one, or a control frame (close, ping, pong)."""

    opcode: int
    payload: bytes

    @property
    def text(self) -> str:
        try:
            return self.payload.decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"a text message is not UTF-8: {exc}") from None


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key repeated (masking and unmasking are the same)."""
    n = len(payload)
    if not n:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final frame as a client must send it: masked with `key` (4 random bytes)."""
    n = len(payload)
    if n < 126:
        size = bytes([0x80 | n])
    elif n < 1 << 16:
        size = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        size = bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return bytes([0x80 | opcode]) + size + key + mask(payload, key)


class MessageDecoder:
    """Feed the server's bytes as they arrive; get back the messages they complete."""

    def __init__(self, max_size: int | None = None) -> None:
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._opcode: int | None = None  # the fragmented message's opcode
        self._max_size = max_size

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        at, end = 0, len(buffer)
        while end - at >= 2:
            first, second = buffer[at], buffer[at + 1]
            if first & 0x70:
                raise ProtocolError("a frame sets RSV bits, but no extension was negotiated")
            if second & 0x80:
                raise ProtocolError("a server's frame is masked")
            length, start = second & 0x7F, at + 2
            if length == 126:
                if end - at < 4:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 4], "big"), at + 4
            elif length == 127:
                if end - at < 10:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 10], "big"), at + 10
            if self._max_size is not None and length > self._max_size:
                raise ProtocolError(f"a frame of {length} bytes is over the limit")
            if end < start + length:
                break
            payload = bytes(buffer[start : start + length])
            at = start + length
            message = self._frame(first & 0x80 != 0, first & 0x0F, payload)
            if message is not None:
                messages.append(message)
        del buffer[:at]
        return messages

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> Message | None:
        if opcode in CONTROL:
            if not fin or len(payload) > 125:
                raise ProtocolError("a control frame is fragmented or over 125 bytes")
            return Message(opcode, payload)
        if opcode == CONTINUATION:
            if self._opcode is None:
                raise ProtocolError("a continuation frame without a message to continue")
            self._fragments.append(payload)
        elif opcode in (TEXT, BINARY):
            if self._opcode is not None:
                raise ProtocolError("a new message began before the last one ended")
            self._opcode, self._fragments = opcode, [payload]
        else:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        if not fin:
            return None
        opcode, data = self._opcode, b"".join(self._fragments)
        self._opcode, self._fragments = None, []
        assert opcode is not None
        return Message(opcode, data)
