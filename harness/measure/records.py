"""Raw measurement records, as the driver saves them and analysis reads them back.

A `RequestRecord` joins what the client saw of one stream with the server's emit timeline
for it. All times are `time.perf_counter_ns()` values on one host's CLOCK_MONOTONIC, so
client and server stamps are directly comparable. Per-token lists are in arrival order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

SweepValue = int | float | str  # one value of a sweep's axis (see harness.measure.scenario)


@dataclass(slots=True)
class RequestRecord:
    transport: str
    index: int  # position in the run; request k has the same source seed on every transport
    seed: int
    stream_id: str
    scheduled_ns: int  # when the request was due to be sent: the start of every timer
    end_ns: int | None  # terminal message received (None if it never came)
    # when the stream began, having got one of the driver's slots: the scheduled time in a
    # closed loop, later in an open loop (`rate`) when it had to wait; None: not recorded
    # (results from before open-loop load, locust runs)
    started_ns: int | None = None
    token_index: list[int] = field(default_factory=list)  # index of each received token
    recv_ns: list[int] = field(default_factory=list)  # client arrival stamp per token
    emit_ns: list[int | None] = field(default_factory=list)  # server emit stamp per token
    token_bytes: list[int] = field(default_factory=list)  # UTF-8 size of each token's text
    chunk_sizes: list[int] = field(default_factory=list)  # tokens completed per network read
    source_tokens: int = 0  # tokens the source emitted for this stream (server's truth)
    usage_tokens: int | None = None  # a live model's own token count, when it reported one
    planned_delays_ns: list[int] | None = None  # a planned source's intended gaps (mock, trace)
    text_mismatches: int = 0  # received tokens whose text differs from the source's
    bytes_sent: int = 0
    bytes_received: int = 0
    header_bytes: int = 0  # HTTP heads within bytes_sent + bytes_received
    requests: int = 0
    empty_polls: int = 0
    http_version: str | None = None  # of the stream's HTTP exchanges (None: WebSocket only)
    drops_ns: list[int] = field(default_factory=list)  # fault benchmark: drops, each resumed
    left_ns: int | None = None  # fault benchmark: when the client left for good
    source_ended_ns: int | None = None  # when the server's generation ended (any way)
    source_error: str | None = None  # why it ended early ("cancelled: ..."), if it did
    error_kind: str | None = None
    error_message: str | None = None
    # a live upstream's problems on this stream, with `bench.py probe`'s codes (wire.problems):
    # {code, severity, message}; severity `problem` when the stream failed of it (the relay's
    # source, or `direct`), `warning` when it completed anyway (`direct`: buffered)
    problems: list[dict[str, str]] = field(default_factory=list)
    sweep_value: SweepValue | None = None  # the swept axis's value, in a sweep

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class PhaseRecord:
    """One transport's measured phase: the run window and the CPU both sides spent in it.
    `kind` is the transport's kind as the registry names it (`push`, `poll`; see
    `transports.Kind`), None for `direct`, which is no transport; results fill it in
    (`harness.analyse.results`) when whoever made the phase left it out."""

    transport: str
    window_start_ns: int
    window_end_ns: int
    server_cpu_s: float | None  # None when transports shared the window (interleaved)
    client_cpu_s: float | None
    server_rss_bytes: int | None = None
    sweep_value: SweepValue | None = None
    kind: str | None = None
    requests: list[RequestRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests"] = [r.to_json() for r in self.requests]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseRecord:
        names = {f.name for f in fields(cls)} - {"requests"}
        phase = cls(**{k: v for k, v in data.items() if k in names})
        phase.requests = [RequestRecord.from_json(r) for r in data.get("requests", [])]
        return phase
