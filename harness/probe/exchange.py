"""What one request saw on the network, as plain data: the input of the pure analysis.

`read.py` fills it from a socket; tests build it by hand. Every stamp is
`time.perf_counter_ns()` taken as the network read that carried the bytes returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from harness.probe.http1 import Head


class Ending(StrEnum):
    COMPLETE = "complete"  # the HTTP body ended as framed; a WebSocket close frame came
    EOF = "eof"  # the peer closed before the end (HTTP body cut, WebSocket without close frame)
    TIMEOUT = "timeout"  # --timeout ran out first
    ERROR = "error"  # no usable response: connect failed, malformed HTTP, refused handshake
    STOPPED = "stopped"  # the probe stopped reading on purpose (it had seen enough)


@dataclass(frozen=True, slots=True)
class WSMessage:
    stamp_ns: int
    read_no: int  # the network read that completed it (0-based)
    text: str


@dataclass
class Exchange:
    transport: str  # "http" or "websocket"
    t_sent_ns: int  # the request's last byte written (WebSocket: the first message sent)
    head: Head | None = None
    head_ns: int | None = None
    # HTTP: (stamp, body bytes) per network read that carried body bytes, after transfer
    # decoding (chunked) and before content decoding (gzip)
    reads: list[tuple[int, bytes]] = field(default_factory=list)
    messages: list[WSMessage] = field(default_factory=list)  # WebSocket: data messages
    end_ns: int = 0
    ending: Ending = Ending.COMPLETE
    error: str | None = None
    close_code: int | None = None  # WebSocket: the code of the close frame received
    close_reason: str = ""
    wire_reads: int = 0  # every network read, head and framing included
    reused: bool = False  # sent on a keep-alive connection an earlier request used
