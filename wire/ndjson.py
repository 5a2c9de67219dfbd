"""Newline-delimited framing (NDJSON and the like) as pure functions over bytes.

Lines are split on the byte 0x0A only. Hand-written rather than httpx's `aiter_lines`
because that splits on every Unicode line break (U+2028, U+0085, ...) and so breaks JSON
strings that legitimately contain them; 0x0A never occurs inside a UTF-8 multi-byte
sequence, so splitting bytes first and decoding whole lines is always safe.
"""

from __future__ import annotations

from errors import ProtocolError

MEDIA_TYPE = "application/x-ndjson"


def encode_line(payload: str) -> bytes:
    if "\n" in payload:
        raise ProtocolError("an NDJSON line must not contain a raw newline")
    return payload.encode() + b"\n"


BLANK = (b"", b"\r")


class LineDecoder:
    """Feed raw bytes as they arrive; get back the complete lines (without the newline).
    A blank line is a keep-alive (the server's `heartbeat_s`), not a message: skipped."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        if b"\n" not in data:
            return []
        *complete, rest = bytes(self._buffer).split(b"\n")
        self._buffer = bytearray(rest)
        return [_decode(line) for line in complete if line not in BLANK]

    def close(self) -> list[str]:
        """End of stream: a trailing line without a newline is still a line."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return [_decode(rest)] if rest not in BLANK else []


def _decode(line: bytes) -> str:
    try:
        return line.decode().removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"line is not valid UTF-8: {exc}") from exc
