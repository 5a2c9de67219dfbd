"""`raw`: plain text as a naive server sends it, as a codec for `wire.framing`.

No message boundaries and no terminal message: over chunked HTTP each token's UTF-8 bytes
go out as they come (one HTTP chunk each, but nothing in the bytes marks where a token
ends); over SSE each token is one event, its line breaks split into several `data:` lines
as the SSE standard requires (the client rejoins them with LF, so a CR or CRLF arrives as
LF: SSE data cannot carry CR). The body's end is the stream's end.

A client cannot know where tokens end: it records the text of each read (chunked) or event
(SSE) as one *piece* (`TextPieces` decodes a byte stream into pieces), and the harness aligns
pieces to the source's tokens by cumulative text length (`harness.measure.run.joining.join`).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

from errors import ProtocolError
from wire.messages import Message, TokenMsg
from wire.sse import split_lines

MEDIA_TYPE = "text/plain; charset=utf-8"


def start(stream_id: str, model: str) -> list[str]:
    return []


def token(stream_id: str, model: str, i: int, text: str) -> str:
    return text


def end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
    """Nothing: the end of the body is the end. A failed generation cannot be said in raw
    text; the server cuts the body short instead (`servers.streaming.StreamAborted`)."""
    return []


def decode(payload: str) -> Message:
    """A piece of text (not necessarily one token: `i` is None, order is all there is)."""
    return TokenMsg(i=None, text=payload)


def sse_form(text: str) -> str:
    """What a text sent as SSE `data` arrives as: CR and CRLF become LF."""
    return "\n".join(split_lines(text))


# The forms text takes on the wire as pieces (`StreamResult.pieces`): what a piece of text
# arrives as, given what was sent.
AS_SENT = "as sent"
AS_SSE_DATA = "as SSE data"
PIECE_FORMS: dict[str, Callable[[str], str]] = {AS_SENT: str, AS_SSE_DATA: sse_form}


class TextPieces:
    """A byte stream into text pieces: each `feed` returns the text its bytes complete
    (one piece, or none while a UTF-8 sequence is still incomplete)."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="strict")

    def feed(self, data: bytes) -> list[str]:
        return self._pieces(data, final=False)

    def close(self) -> list[str]:
        return self._pieces(b"", final=True)

    def _pieces(self, data: bytes, final: bool) -> list[str]:
        try:
            text = self._utf8.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"body is not valid UTF-8: {exc}") from exc
        return [text] if text else []
