"""The fault plan's drop, leave and resume, written once for every transport. No I/O here.

The fault benchmark asks a client to cut its stream short on purpose
(`ClientSettings.fault_due`): a `Fault.DROP` loses the connection and resumes the stream
on a new one, a `Fault.LEAVE` loses it and never comes back. A transport writes one
*connection*: a generator that opens the stream (or, `resuming`, asks for the rest of it)
and reads until the stream ends (it returns None) or the plan calls for a fault (it returns
the `Interruption`). `resumable` runs connections until one ends the stream, and records
each fault in the `StreamResult`: a drop's stamp in `drops_ns`, then the next connection
resumes; a leave's stamp in `left_ns`, then the exchange ends.

    def exchange(settings, request, result):
        def connect(resuming: bool) -> Connection:
            yield OpenWebSocket(PATH)
            ...
            if (fault := settings.fault_due(result)) is not None:
                return (yield from drop_connection(fault))
        yield from resumable(result, connect)

What a fault does to the wire is the transport's: a streamed body or a WebSocket is dropped
without a word (`drop_connection`, stamped by the driver's `Drop`); polling holds no
connection between polls (the fault is stamped with the last poll's reply, and the next
poll is the reconnect); a webhook receiver refuses its next delivery (stamped with it).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from clients.exchange import DROP, Effect, Exchange
from clients.interface import Fault, StreamResult


@dataclass(frozen=True, slots=True)
class Interruption:
    """A connection the fault plan cut short: the fault, and when it happened
    (perf_counter_ns, from a reply: exchange logic never reads the clock)."""

    fault: Fault
    at_ns: int


# One connection of a stream: effects until the stream ends (None) or a fault cuts it.
Connection = Generator[Effect, Any, Interruption | None]


def resumable(result: StreamResult, connect: Callable[[bool], Connection]) -> Exchange:
    """Run `connect(resuming)` until a connection ends the stream: the first with False,
    each after a drop with True. A drop is recorded in `result.drops_ns`; a leave in
    `result.left_ns`, and it ends the exchange."""
    resuming = False
    while (cut := (yield from connect(resuming))) is not None:
        if cut.fault is Fault.LEAVE:
            result.left_ns = cut.at_ns
            return
        result.drops_ns.append(cut.at_ns)
        resuming = True


def drop_connection(fault: Fault) -> Generator[Effect, Any, Interruption]:
    """Drop the open connection without a word (`DROP`); the drop's reply is the stamp."""
    dropped_ns: int = yield DROP
    return Interruption(fault, dropped_ns)
