"""Conversations (agent loops), from a point's saved records: figures per turn and per
conversation, for each transport and variant (state, keep-alive), and the decomposition of
the difference between a request-per-turn transport and a persistent WebSocket.

Definitions (every time is perf_counter_ns, one clock for client and server):

- **Turn TTFT**: the turn's first token minus the moment its request was sent, which for
  every turn but the first is when the tool's result was sent (the tool's time is not in it).
- **Turn overhead**: turn TTFT minus the source's own first-token delay for that turn (the
  mock's planned delay): what the transport, the path and the server's per-request work
  added before the first token. Needs a planned source (mock or trace).
- **Conversation time**: the last turn's terminal message minus the first turn's send, tool
  calls included; **cumulative time by turn**: each turn's end minus the first turn's send.
- **Upload / download bytes per turn**: the turn's wire bytes each way (TCP_INFO counters),
  heads and WebSocket frames included.
- **Connections and TLS handshakes per conversation**: new connections its turns opened, and
  of them those that began with a TLS handshake (https, wss); a pool warmed before the window
  serves the first turn without one.

The decomposition sets a request-per-turn transport's conversation (state `client`,
keep-alive on: how apps ship SSE) against the WebSocket's with state `server` (how the
Responses API's WebSocket mode runs), and attributes the difference to causes, each
measured by switching that one cause off within the same run: re-uploading the conversation
(`client` state against `server`, keep-alive on), per-request work (the transport with
`server` state against the WebSocket with it: a new HTTP request per turn against a
message), and, as a separate line, what closing connections would add (keep-alive off
against on). Terms are differences of medians over conversations of the turn overheads
summed over the turns after the first, so they add up only approximately; the first turn,
which carries a new WebSocket's handshakes while a request-per-turn transport may find a
warm pooled connection, is a line of its own.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.measure.records import PhaseRecord, RequestRecord
from transports import TRANSPORTS


def persistent(transport: str) -> bool:
    """A transport that keeps one connection for a conversation: a WebSocket (an upgrade)."""
    return transport in TRANSPORTS and TRANSPORTS.get(transport).upgrade_path is not None


@dataclass(frozen=True, slots=True)
class Variant:
    transport: str
    state: str
    keepalive: bool | None  # None: a WebSocket (one connection whatever the setting)

    @property
    def label(self) -> str:
        keep = (
            "" if self.keepalive is None else (", keep-alive" if self.keepalive else ", new conn")
        )
        return f"{self.transport} ({self.state} state{keep})"


@dataclass(slots=True)
class ConversationFigures:
    """One variant's conversations: per-turn medians (index = turn) and totals."""

    variant: Variant
    conversations: int
    complete: int  # conversations whose every turn ended with its terminal message
    tool_calls_ok: int  # turns whose answer ended with exactly the source's tool call
    turns: int
    ttft_ms: list[float | None] = field(default_factory=list)
    overhead_ms: list[float | None] = field(default_factory=list)
    cumulative_ms: list[float | None] = field(default_factory=list)
    upload_bytes: list[float | None] = field(default_factory=list)
    download_bytes: list[float | None] = field(default_factory=list)
    conversation_ms: float | None = None  # median over complete conversations
    # median of each conversation's summed overheads over its turns after the first (the
    # loop's: the first turn's carries the conversation's connection set-up, shown alone)
    overhead_sum_ms: float | None = None
    connections: float | None = None  # mean per conversation
    tls_handshakes: float | None = None  # mean per conversation
    overhead_p50_ms: float | None = None  # median over every turn


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def turn_ttft_ms(record: RequestRecord) -> float | None:
    if not record.recv_ns:
        return None
    return (record.recv_ns[0] - record.scheduled_ns) / 1e6


def turn_overhead_ms(record: RequestRecord) -> float | None:
    ttft = turn_ttft_ms(record)
    if ttft is None or not record.planned_delays_ns:
        return None
    return ttft - record.planned_delays_ns[0] / 1e6


def variant_of(record: RequestRecord) -> Variant:
    keep = None if persistent(record.transport) else record.keepalive
    return Variant(record.transport, record.state or "client", keep)


def conversations_of(records: Iterable[RequestRecord]) -> dict[Variant, list[list[RequestRecord]]]:
    """Each variant's conversations, each its turns in order."""
    grouped: dict[str, list[RequestRecord]] = defaultdict(list)
    for record in records:
        if record.conversation is not None:
            grouped[record.conversation].append(record)
    found: dict[Variant, list[list[RequestRecord]]] = defaultdict(list)
    for turns in grouped.values():
        turns.sort(key=lambda r: r.turn or 0)
        found[variant_of(turns[0])].append(turns)
    return dict(found)


def figures_of(variant: Variant, talks: Sequence[Sequence[RequestRecord]]) -> ConversationFigures:
    turns = max(len(t) for t in talks)
    complete = [t for t in talks if all(r.end_ns is not None and r.error_kind is None for r in t)]
    calls = sum(bool(r.tool_call_ok) for t in talks for r in t)
    figures = ConversationFigures(variant, len(talks), len(complete), calls, turns)
    for k in range(turns):
        at = [t[k] for t in talks if len(t) > k]
        figures.ttft_ms.append(_median(turn_ttft_ms(r) for r in at))
        figures.overhead_ms.append(_median(turn_overhead_ms(r) for r in at))
        figures.upload_bytes.append(_median(float(r.bytes_sent) for r in at))
        figures.download_bytes.append(_median(float(r.bytes_received) for r in at))
        figures.cumulative_ms.append(
            _median((end - t[0].scheduled_ns) / 1e6 for t in complete if (end := t[k].end_ns))
        )
    figures.conversation_ms = _median(
        (t[-1].end_ns - t[0].scheduled_ns) / 1e6 for t in complete if t[-1].end_ns is not None
    )
    sums = []
    for t in complete:
        overheads = [turn_overhead_ms(r) for r in t[1:]]
        if all(o is not None for o in overheads):
            sums.append(sum(o for o in overheads if o is not None))
    figures.overhead_sum_ms = _median(sums)
    figures.connections = statistics.fmean(sum(r.connections for r in t) for t in talks)
    figures.tls_handshakes = statistics.fmean(sum(r.tls_handshakes for r in t) for t in talks)
    figures.overhead_p50_ms = _median(turn_overhead_ms(r) for t in talks for r in t)
    return figures


def point_conversations(phases: Mapping[str, PhaseRecord]) -> list[ConversationFigures]:
    """Every variant's figures at one point, in the run's transport order."""
    records = [r for phase in phases.values() for r in phase.requests]
    found = conversations_of(records)
    order = {name: k for k, name in enumerate(phases)}
    keys = sorted(
        found,
        key=lambda v: (order.get(v.transport, 99), v.state, v.keepalive is False),
    )
    return [figures_of(v, found[v]) for v in keys]


@dataclass(frozen=True, slots=True)
class Term:
    """One line of the decomposition: a cause, the two variants it compares, the difference
    in the median summed turn overhead per conversation (ms)."""

    cause: str
    with_cause: str
    without_cause: str
    ms: float | None


def decomposition(figures: Sequence[ConversationFigures]) -> dict[str, list[Term]]:
    """Per request-per-turn transport: its difference from the WebSocket with server state,
    split into the causes measured by switching each one off (module docstring)."""
    by = {(f.variant.transport, f.variant.state, f.variant.keepalive): f for f in figures}
    names = list(dict.fromkeys(f.variant.transport for f in figures))
    ws = next((by[(t, "server", None)] for t in names if (t, "server", None) in by), None)
    found: dict[str, list[Term]] = {}
    for transport in names:
        if persistent(transport) or ws is None:
            continue
        shipped = by.get((transport, "client", True))
        server = by.get((transport, "server", True))
        if shipped is None:
            continue

        first = None
        if shipped.overhead_ms[0] is not None and ws.overhead_ms[0] is not None:
            first = shipped.overhead_ms[0] - ws.overhead_ms[0]
        terms = [
            Term("first turn (set-up)", shipped.variant.label, ws.variant.label, first),
            Term("total, later turns", shipped.variant.label, ws.variant.label, diff(shipped, ws)),
            Term("re-upload (state)", shipped.variant.label, _label(server), diff(shipped, server)),
            Term("per-request work", _label(server), ws.variant.label, diff(server, ws)),
        ]
        for state in ("client", "server"):
            closed = by.get((transport, state, False))
            opened = by.get((transport, state, True))
            if closed is not None and opened is not None:
                terms.append(
                    Term(
                        f"handshakes (keep-alive off, {state} state)",
                        closed.variant.label,
                        opened.variant.label,
                        diff(closed, opened),
                    )
                )
        found[transport] = terms
    return found


def diff(a: ConversationFigures | None, b: ConversationFigures | None) -> float | None:
    """The difference of two variants' median summed overheads (None: one is missing)."""
    if a is None or b is None or a.overhead_sum_ms is None or b.overhead_sum_ms is None:
        return None
    return a.overhead_sum_ms - b.overhead_sum_ms


def _label(figures: ConversationFigures | None) -> str:
    return "not measured" if figures is None else figures.variant.label
