"""tokenwire's one exception tree. Library exceptions are mapped into it at the boundary
(`raise ... from exc`); nothing outside this module defines another root.

    TokenwireError
    ├── UserError                 input a user can fix: the CLI prints one line, exit status 2
    │   ├── UsageError            a bad command line
    │   ├── ScenarioError         a scenario file or value that cannot run
    │   ├── ResultsError          a results folder that cannot be read or is not supported
    │   │   └── BaselineError     a baseline that cannot be made or read
    │   ├── ServerStartError      the benchmark server (or a local model) did not start
    │   ├── ServerSettingsError   a server setting that cannot be used (token file, origin, bind)
    │   ├── LoadError             a load test that cannot run or whose results cannot merge
    │   └── SourceSettingsError   (also a SourceError) bad source settings or trace file
    ├── SourceError               a token source could not produce its stream
    │   ├── SourceSettingsError
    │   └── UpstreamUnavailable   (also a UserError) a live upstream refused or failed
    │       └── UpstreamProblem   its answer is not a usable stream; `code` names why
    ├── ProtocolError             bytes that do not follow the wire protocol (pure codecs)
    ├── ClientProcessError        one of the driver's client processes failed or died
    ├── TransportError            one stream could not be completed: recorded per stream,
    │   │                         its `kind` (an `ErrorKind`) names the failure in results
    │   ├── ConnectFailed         no connection
    │   ├── HTTPStatusFailed      an unexpected HTTP status, or a refused WebSocket upgrade
    │   ├── ProtocolViolation     the peer broke the framing (wraps a ProtocolError)
    │   ├── StreamTimedOut        the stream did not finish in time
    │   ├── StreamIncomplete      the connection ended before the terminal message
    │   └── UpstreamFailed        the server reported that its source failed
    └── RequestRefused            the server refuses a request: a 4xx (or 503) JSON answer
"""

from __future__ import annotations

from enum import StrEnum


class TokenwireError(Exception):
    """The root: every error tokenwire raises on purpose."""


# --- user errors --------------------------------------------------------------------------


class UserError(TokenwireError):
    """Input the user can fix. The CLI prints the message as one line and exits with 2."""


class UsageError(UserError):
    """A bad command line."""


class ScenarioError(UserError, ValueError):
    """A scenario file or value that cannot run (the message names the field and the fix)."""


class ResultsError(UserError, ValueError):
    """A results folder that cannot be read, or one of an unsupported schema version."""


class BaselineError(ResultsError):
    """A baseline that cannot be made (e.g. from runs with injected regressions) or read."""


class ServerStartError(UserError, RuntimeError):
    """The benchmark server or a local model server did not start."""


class ServerSettingsError(UserError, ValueError):
    """A server setting that cannot be used: an unreadable token file, a malformed token or
    origin, or a network-reachable address without a token."""


class LoadError(UserError, RuntimeError):
    """A load test that cannot run, or whose per-process results cannot be merged."""


# --- sources ------------------------------------------------------------------------------


class SourceError(TokenwireError, RuntimeError):
    """A token source could not produce its stream."""


class SourceSettingsError(SourceError, UserError):
    """Bad source settings (preset, profile, URL, model) or an unreadable trace file."""


class UpstreamUnavailable(SourceError, UserError):
    """A live upstream refused a request or failed (recording, relaying)."""


class UpstreamProblem(UpstreamUnavailable):
    """A live upstream answered, but not with a usable stream. `code` is the problem's code
    in `wire.problems` (the codes `bench.py probe` reports: `sse_framing`, `truncated`,
    `http_status`, ...), `detail` the finding's one-line message. The relay's source raises
    it for one stream (the generation fails with it); `bench.py run` raises it when a live
    upstream produced no token at all."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ClientProcessError(TokenwireError, RuntimeError):
    """One of the driver's client processes (`client_processes` > 1) failed or died; the
    message carries its traceback or exit status."""


# --- protocol -----------------------------------------------------------------------------


class ProtocolError(TokenwireError, ValueError):
    """Bytes on the wire that do not follow the protocol (bad framing, JSON or fields).
    Raised by the pure codecs in `wire/`."""


# --- one stream's failure -----------------------------------------------------------------


class ErrorKind(StrEnum):
    """How a stream failed, as results record it."""

    TRANSPORT = "transport"
    CONNECT = "connect"
    HTTP_STATUS = "http_status"
    PROTOCOL = "protocol"
    TIMEOUT = "timeout"
    INCOMPLETE = "incomplete"
    UPSTREAM = "upstream"
    TIMELINE = "timeline"  # the server has no timeline for the stream (set by the driver)
    NOT_RUN = "not_run"  # a conversation's turn after one that failed (set by the driver)


class TransportError(TokenwireError):
    """One stream could not be completed. `kind` names the failure in results."""

    kind = ErrorKind.TRANSPORT


class ConnectFailed(TransportError):
    kind = ErrorKind.CONNECT


class HTTPStatusFailed(TransportError):
    kind = ErrorKind.HTTP_STATUS


class ProtocolViolation(TransportError):
    """The server sent bytes that do not follow the framing (or nothing where a message was due)."""

    kind = ErrorKind.PROTOCOL


class StreamTimedOut(TransportError):
    kind = ErrorKind.TIMEOUT


class StreamIncomplete(TransportError):
    """The connection ended before the terminal message."""

    kind = ErrorKind.INCOMPLETE


class UpstreamFailed(TransportError):
    """The server reported that its source failed."""

    kind = ErrorKind.UPSTREAM


# --- the server's answers -----------------------------------------------------------------


class RequestRefused(TokenwireError):
    """A request the server refuses: answered as `{"error": message}` with its status (4xx,
    or 503 when the server is at a limit; `retry_after_s` then becomes `Retry-After`)."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
