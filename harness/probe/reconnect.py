"""The reconnect check (pure): after an SSE stream that ended without a terminal event, a
reconnect made as EventSource makes it (with Last-Event-ID when the stream sent ids) shows
whether a browser would repeat the answer forever, keep reconnecting, or stop.
`session.py` makes the request; this module says when it is needed and what it got.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from errors import ProtocolError
from harness.probe.analyse import RunAnalysis, analyse_run
from harness.probe.decode import SSE, SSE_TYPE
from harness.probe.exchange import Ending, Exchange
from harness.probe.http1 import Head
from wire.content import ContentDecoder
from wire.sse import SSEStreamDecoder


@dataclass(frozen=True, slots=True)
class Reconnect:
    """What a reconnect made as EventSource makes it got, after a stream without a terminal
    event. `outcome`: no_content (204: EventSource stops), refused (another status or type:
    EventSource fails and stops), fresh (events from the beginning again), resumed (events
    after Last-Event-ID), empty (200 and no event: EventSource keeps reconnecting), failed."""

    outcome: str
    status: int | None
    last_event_id: str | None
    events: int
    detail: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def needs_reconnect_check(run: RunAnalysis) -> bool:
    """An SSE stream that ended without any terminal event: would EventSource loop?"""
    return (
        run.streamed
        and run.container == SSE
        and bool(run.events)
        and run.reading.terminal is None
        and run.reading.error is None
        and run.ending in (Ending.COMPLETE, Ending.EOF)
    )


class EnoughEvents:
    """A `read.StopReading`: True once the body has completed `limit` SSE events."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._content: ContentDecoder | None = None
        self._sse = SSEStreamDecoder()

    def __call__(self, head: Head, body: bytes) -> bool:
        if self._content is None:
            self._content = ContentDecoder(head.get("content-encoding"))
        try:
            self.count += len(self._sse.feed(self._content.feed(body)))
        except ProtocolError:
            return True
        return self.count >= self.limit


def classify_reconnect(
    first: RunAnalysis, exchange: Exchange, last_event_id: str | None
) -> Reconnect:
    again = analyse_run(exchange, first.kind)
    status = again.status
    n = len(again.events)
    if exchange.head is None:
        return Reconnect("failed", None, last_event_id, 0, exchange.error or "no response")
    if status == 204:
        return Reconnect("no_content", status, last_event_id, 0, "204 No Content")
    media = exchange.head.media_type
    if status != 200 or media != SSE_TYPE:
        return Reconnect("refused", status, last_event_id, 0, f"{status} {media or 'untyped'}")
    if not again.events:
        return Reconnect("empty", status, last_event_id, 0, "200 and no event")
    firsts = [e.data for e in first.events[:2]]
    first_id = next((e.id for e in first.events if e.id), "")
    fresh = (
        not first.ids_sent
        or [e.data for e in again.events[:2]] == firsts[: min(2, n)]
        or (again.events[0].id == first_id and bool(first_id))
    )
    if fresh:
        shown = again.events[0].data[:60]
        detail = f"200 and the first event again ({shown!r})"
        return Reconnect("fresh", status, last_event_id, n, detail)
    return Reconnect("resumed", status, last_event_id, n, f"200 and {n} more event(s)")
