"""The exchange logic of transports whose stream is one streamed HTTP response (SSE,
chunked): the request it sends, how its body decodes, when it has ended. No I/O here:
the drivers in `clients.asyncio_io` and `clients.blocking_io` perform the effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from clients.exchange import (
    READ_BODY,
    Exchange,
    ExchangeLogic,
    HTTPCall,
    OpenStream,
    Reply,
    require_status,
)
from clients.interface import ClientSettings, StreamResult
from clients.resume import Connection, drop_connection, resumable
from errors import ProtocolViolation, StreamIncomplete
from wire.carriages import LINES
from wire.content import ContentDecoder
from wire.framing import Framing, get_framing
from wire.messages import EndMsg, GenerationRequest
from wire.raw import AS_SENT


class PayloadDecoder(Protocol):
    def feed(self, data: bytes) -> list[str]: ...
    def close(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class HTTPStream:
    """A streamed-response transport without I/O: the request it sends, how it resumes a
    dropped stream, and how its body decodes into framed payloads. Under a framing without
    token boundaries (`raw`) the body decodes with `undelimited` (None: with `decoder`, whose
    payloads are then pieces of text), and `pieces` names the form text takes on the wire
    (`StreamResult.pieces`)."""

    transport: str
    path: str
    media_type: str
    decoder: Callable[[], PayloadDecoder]
    resume: Callable[[Framing, GenerationRequest, StreamResult], HTTPCall]
    headers: tuple[tuple[str, str], ...] = ()
    undelimited: Callable[[], PayloadDecoder] | None = None
    pieces: str = AS_SENT
    carriage: str = LINES  # how its framing travels (`wire.carriages`)

    def call(self, framing: Framing, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(
            "POST",
            self.path,
            params={"framing": framing.name},
            json=request.to_json(),
            headers={"accept": self.media_type_of(framing), **dict(self.headers)},
        )

    def media_type_of(self, framing: Framing) -> str:
        return framing.media_type(self.carriage, self.media_type)


def require_end(result: StreamResult) -> None:
    if result.end_ns is None:
        raise StreamIncomplete("the response ended without a terminal message")


class BodyReader:
    """One streamed response body into a `StreamResult`, network read by network read.
    `feed` gets each read's bytes with the stamp taken as they arrived. A framing without
    token boundaries (`raw`) has no terminal message: the end of the body is the end (a body
    cut short never gets here: the driver raises `StreamIncomplete`)."""

    def __init__(
        self,
        kind: HTTPStream,
        framing: Framing,
        result: StreamResult,
        content_type: str,
        content_encoding: str | None = None,
    ) -> None:
        expected = kind.media_type_of(framing).partition(";")[0]
        if content_type.partition(";")[0].strip().lower() != expected:
            raise ProtocolViolation(f"expected Content-Type {expected}, got {content_type!r}")
        # the clients accept gzip, deflate and br (httpx's Accept-Encoding): undone here,
        # read by read, so a compressor that holds the stream back shows in the timing
        self._content = ContentDecoder(content_encoding)
        if self._content.unsupported:
            raise ProtocolViolation(
                f"cannot decode Content-Encoding {self._content.unsupported} (the request "
                "accepts gzip, deflate and br)"
            )
        undelimited = None if framing.boundaries else kind.undelimited
        self._decoder = undelimited() if undelimited is not None else kind.decoder()
        self._framing = framing
        self._result = result
        if not framing.boundaries:
            result.pieces = kind.pieces

    def feed(self, raw: bytes, now_ns: int) -> None:
        payloads = self._decoder.feed(self._content.feed(raw))
        if payloads:
            self._result.take([self._framing.decode(p) for p in payloads], now_ns)

    def close(self, now_ns: int) -> None:
        """End of body: what the decoders still hold, stamped with the last read's time."""
        rest = self._content.close()
        if rest:
            self.feed(rest, now_ns)
        tail = self._decoder.close()
        if tail:
            self._result.take([self._framing.decode(p) for p in tail], now_ns)
        if not self._framing.boundaries and self._result.end_ns is None:
            self._result.take([EndMsg()], now_ns)


def http_stream_exchange(kind: HTTPStream) -> ExchangeLogic:
    """POST the request, then decode the body read by read until it ends; when the fault
    plan drops the connection, resume the stream with the transport's resume request."""

    def exchange(
        settings: ClientSettings, request: GenerationRequest, result: StreamResult
    ) -> Exchange:
        framing = get_framing(settings.framing)

        def connect(resuming: bool) -> Connection:
            call = (
                kind.resume(framing, request, result) if resuming else kind.call(framing, request)
            )
            reply: Reply = yield OpenStream(call)
            require_status(reply, call)
            headers = reply.headers
            body = BodyReader(
                kind,
                framing,
                result,
                headers.get("content-type", ""),
                headers.get("content-encoding"),
            )
            last_ns = reply.now_ns
            while (arrival := (yield READ_BODY)) is not None:
                body.feed(arrival.data, arrival.now_ns)
                last_ns = arrival.now_ns
                if (fault := settings.fault_due(result)) is not None:
                    return (yield from drop_connection(fault))
            body.close(last_ns)
            require_end(result)
            return None

        yield from resumable(result, connect)

    return exchange
