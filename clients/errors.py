"""The small error tree every client maps library exceptions into (`raise ... from exc`)."""

from __future__ import annotations


class TransportError(Exception):
    """A stream could not be completed. `kind` names the failure in results."""

    kind = "transport"


class ConnectFailed(TransportError):
    kind = "connect"


class HTTPStatusFailed(TransportError):
    kind = "http_status"


class ProtocolViolation(TransportError):
    """The server sent bytes that do not follow the framing (or nothing where a message was due)."""

    kind = "protocol"


class StreamTimedOut(TransportError):
    kind = "timeout"


class StreamIncomplete(TransportError):
    """The connection ended before the terminal message."""

    kind = "incomplete"


class UpstreamFailed(TransportError):
    """The server reported that its source failed."""

    kind = "upstream"
