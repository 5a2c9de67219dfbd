"""The one interface every transport client implements, and the record it returns.

Clock: `time.perf_counter_ns()` (CLOCK_MONOTONIC on Linux, shared with the server process),
read once per network read at the I/O boundary; every token completed by that read gets
that stamp, and the read's token count is kept as a chunk size ("chunks are not tokens").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from errors import ErrorKind, ProtocolViolation, TransportError, UpstreamFailed
from transports import TRANSPORTS
from wire.messages import EndMsg, GenerationRequest, IgnoredMsg, Message, TokenMsg, ToolCall
from wire.webhook import SECRET_ENV as WEBHOOK_SECRET_ENV


def webhook_secret_from_env() -> str | None:
    """The webhook signing secret the server under test shares (`TOKENWIRE_WEBHOOK_SECRET`,
    which `harness.measure.server_process.start_server` sets when it is unset)."""
    return os.environ.get(WEBHOOK_SECRET_ENV, "").strip() or None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    base_url: str
    framing: str = "json"
    max_connections: int = 1  # connections this client may open at once
    stream_timeout_s: float = 300.0  # a whole stream must finish within this
    http2: bool = False  # speak HTTP/2 (over TLS behind a path that offers it, else h2c)
    # speak HTTP/3 (QUIC, clients.h3_io) to the URL's host and UDP port, trusting `ca_file`
    http3: bool = False
    ca_file: str | None = None  # trust this certificate (a path's self-signed one)
    token: str | None = field(default=None, repr=False)  # sent as `Authorization: Bearer`
    drop_at_token: int = 0  # fault benchmark: drop the connection after this many tokens, resume
    leave_at_token: int = 0  # fault benchmark: drop the connection for good after this many
    # the transports' own settings given (`transports.Knob`: poll_interval_ms, ...); the
    # rest take their defaults
    knobs: tuple[tuple[str, float], ...] = ()
    lean_http: bool = True  # asyncio driver: plain HTTP/1.1 through clients.h1_io, not httpx
    # webhook: the secret deliveries are signed with (the server's), to verify them
    webhook_secret: str | None = field(default_factory=webhook_secret_from_env, repr=False)

    def knob(self, name: str) -> float:
        """The value of a transport's setting: as given, else its default."""
        return dict(self.knobs).get(name, TRANSPORTS.knob(name).default)

    def fault_due(self, result: StreamResult) -> Fault | None:
        """The fault the plan calls for now that `result` holds its tokens, if any (none once
        the terminal message has arrived: a finished stream has nothing left to drop)."""
        if result.end_ns is not None:
            return None
        received = len(result.indices)
        if self.leave_at_token and received >= self.leave_at_token:
            return Fault.LEAVE
        if self.drop_at_token and received >= self.drop_at_token and not result.drops_ns:
            return Fault.DROP
        return None


class Fault(Enum):
    DROP = "drop"  # drop the connection, then resume
    LEAVE = "leave"  # drop the connection and never come back


def bearer_headers(token: str | None) -> dict[str, str]:
    """The header that carries a server token on every request and WebSocket upgrade."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True, slots=True)
class Turn:
    """A stream that is one turn of a conversation (`harness.measure.run.conversations`).
    A WebSocket client keeps its connection for the conversation's next turn unless this is
    the `last`; with `keepalive` False, an HTTP client sends `Connection: close` (HTTP/1.1)
    or uses a connection of its own (HTTP/2), so the turn pays a new connection, as behind
    a proxy or a serverless platform that closes connections."""

    conversation: str
    index: int
    last: bool = True
    keepalive: bool = True
    state: str = "client"  # who keeps the conversation: client or server (for the records)


@dataclass(frozen=True, slots=True)
class StreamError:
    kind: ErrorKind
    message: str


@dataclass(slots=True)
class StreamResult:
    """What one client saw of one stream. Times are perf_counter_ns values."""

    transport: str
    stream_id: str
    scheduled_ns: int  # when the stream was due: the start of its timers (TTFT, E2E)
    # when it began: the driver sets it (harness.measure.run.scheduling.run_stream); later than
    # `scheduled_ns` when an open-loop arrival waited for a free slot. None: not recorded
    started_ns: int | None = None
    indices: list[int] = field(default_factory=list)
    recv_ns: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    chunk_sizes: list[int] = field(default_factory=list)
    end_ns: int | None = None
    end_tokens: int | None = None  # the count the terminal message reported, if any
    bytes_sent: int = 0
    bytes_received: int = 0
    header_bytes: int = 0  # HTTP request and response heads (WebSocket: the upgrade)
    requests: int = 0
    empty_polls: int = 0
    http_version: str | None = None  # of the last HTTP exchange ("HTTP/1.1", "HTTP/2", "HTTP/3")
    # HTTP/3: packets its QUIC connection lost while the stream's exchanges were open, as the
    # client sees them (`clients.h3_io.LossTrace`); None: not over QUIC
    packets_lost: int | None = None
    drops_ns: list[int] = field(default_factory=list)  # connections dropped on purpose, resumed
    left_ns: int | None = None  # when the client left the stream for good, on purpose
    # what `direct` found wrong with a live upstream's stream: {code, severity, message}, with
    # the codes of `wire.problems`; severity `problem` when it failed the stream, else `warning`
    problems: list[dict[str, str]] = field(default_factory=list)
    error: StreamError | None = None
    # a framing without token boundaries (`raw`): `texts` are the text of each read (or SSE
    # event), not tokens, and `harness.measure.run.joining.join` aligns them to the source's
    # tokens by length. The value is the form text takes on the wire (`wire.raw.PIECE_FORMS`:
    # as sent, or as SSE data, where CR and CRLF arrive as LF). None: every received message
    # is one token.
    pieces: str | None = None
    connections: int = 0  # new connections the stream opened
    tls_handshakes: int = 0  # of them, those that began with a TLS handshake (https, wss)
    turn: Turn | None = None  # the conversation's turn this stream is, if it is one
    tool_call: ToolCall | None = None  # the call the answer ended with, if it ended with one

    @classmethod
    def start(cls, transport: str, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        return cls(transport, request.stream_id or "", scheduled_ns)

    def fail(self, exc: TransportError) -> None:
        self.error = StreamError(kind=exc.kind, message=str(exc) or type(exc).__name__)

    def next_index(self) -> int:
        """The index of the next token wanted (after the highest one received)."""
        return max(self.indices, default=-1) + 1

    def add_bytes(self, sent_received: tuple[int, int]) -> None:
        self.bytes_sent += sent_received[0]
        self.bytes_received += sent_received[1]

    def take(self, messages: list[Message], now_ns: int) -> bool:
        """Record the messages one network read completed, stamped `now_ns` (the read's
        stamp, taken by the driver); True once the stream has ended."""
        tokens = 0
        ended = False
        for message in messages:
            if ended:
                raise ProtocolViolation(f"message after the terminal message: {message!r}")
            if isinstance(message, TokenMsg):
                self.indices.append(len(self.indices) if message.i is None else message.i)
                self.recv_ns.append(now_ns)
                self.texts.append(message.text)
                tokens += 1
            elif isinstance(message, EndMsg):
                if message.error is not None:
                    raise UpstreamFailed(message.error)
                self.end_ns = now_ns
                self.end_tokens = message.tokens
                self.tool_call = message.tool_call
                ended = True
            else:
                assert isinstance(message, IgnoredMsg)
        if tokens:
            self.chunk_sizes.append(tokens)
        return ended


@contextlib.contextmanager
def failures_recorded(result: StreamResult) -> Iterator[StreamResult]:
    """Transport failures end the stream and are recorded in it; anything else propagates."""
    try:
        yield result
    except TransportError as exc:
        result.fail(exc)


class StreamClient(Protocol):
    """A transport's client. The driver only ever calls these two methods."""

    transport: str

    async def stream(
        self, request: GenerationRequest, scheduled_ns: int, turn: Turn | None = None
    ) -> StreamResult:
        """Run one stream (a conversation's `turn`, if given) to its end. Transport failures
        are recorded in `StreamResult.error`; anything else is a bug and propagates."""
        ...

    async def aclose(self) -> None: ...
