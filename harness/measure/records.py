"""Raw measurement records, as the driver saves them and analysis reads them back.

A `RequestRecord` joins what the client saw of one stream with the server's emit timeline
for it. All times are `time.perf_counter_ns()` values on one host's CLOCK_MONOTONIC, so
client and server stamps are directly comparable. Per-token lists are in arrival order.

A `PhaseRecord` holds one transport's requests and its measured window, and what was around
them, each part typed and written by one module only:

- `setup`: how the benchmark driver ran the phase (`PhaseSetup`,
  `harness.measure.run.bookkeeping`);
- `load_test`: how a load test ran it instead (`LoadTestSetup`, `harness.load.records`);
- `browser`: the browser client's figures (`BrowserFigures`,
  `harness.measure.browser.client`);
- `path_parameters`: what the path between clients and server recorded of itself (the
  layers' `parameters()`, `harness.pipeline`, once the driver has returned);
- `stack`: the server stack it ran on (`StackSetup`, from `Scenario.stack_setup`:
  `harness.pipeline` and, for load tests, `harness.load.launch`).

A part a run did not have is None (`path_parameters`: empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SweepValue = int | float | str  # one value of a sweep's axis (see harness.measure.scenario)
Stats = dict[str, float | int]  # n, min, p50, p90, p99, max of a sample, in ms (n only if 0)


def known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `data` that name a field of the dataclass `cls` (older or newer
    files may hold others)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


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
    # HTTP/3: packets the stream's QUIC connection lost while its exchanges were open, both
    # ways as the client sees them (gaps in what it received, its own declared lost); None:
    # not over QUIC
    packets_lost: int | None = None
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
    repeat: int = 0  # the round it ran in (`repeat` > 1: rounds 0 .. repeat - 1)
    connections: int = 0  # new connections the stream opened
    tls_handshakes: int = 0  # of them, those that began with a TLS handshake (https, wss)
    # a conversation's turn (`harness.measure.run.conversations`): the conversation's name,
    # the turn's index, who kept the conversation (client, server) and whether HTTP turns
    # reused connections; None: a single stream
    conversation: str | None = None
    turn: int | None = None
    state: str | None = None
    keepalive: bool | None = None
    # the request named a tool: whether the answer ended with exactly the call the source
    # made (`GenerationRequest.tool_call`); None: no tool asked for
    tool_call_ok: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRecord:
        return cls(**known_fields(cls, data))


@dataclass(frozen=True, slots=True)
class RawFloor:
    """The same streams through the raw client right after the phase (`raw_client`): the
    floor for the client's CPU per token (`harness.measure.raw_client`)."""

    streams: int
    tokens: int
    cpu_s: float
    wall_s: float


SHARED_CPU = "not split: transports shared one window"


@dataclass(frozen=True, slots=True)
class SharedWindow:
    """The CPU both sides spent in a window that several transports shared (interleaved
    order): it cannot be split between them, so each phase's own CPU is None."""

    server_cpu_s: float | None  # None: not known (a load test without the server's PID)
    client_cpu_s: float | None
    cpu: str = SHARED_CPU


@dataclass(frozen=True, slots=True)
class Round:
    """One round of a repeated phase (`repeat`): its own window and CPU, and its place in
    the run's order (0: the run's first phase), so drift can be told from a transport."""

    repeat: int
    position: int
    window_start_ns: int
    window_end_ns: int
    server_cpu_s: float | None
    client_cpu_s: float | None

    @property
    def window_s(self) -> float:
        return (self.window_end_ns - self.window_start_ns) / 1e9


@dataclass(frozen=True, slots=True)
class PhaseSetup:
    """How the benchmark driver ran a phase: written by `harness.measure.run.bookkeeping` only.
    Older results leave out what their driver did not record: None, or one process."""

    order: str  # sequential | interleaved
    path: str | None = None  # the scenario's path (`loopback`, `nginx`, `net:4g`, ...)
    server_processes: int = 1
    client_processes: int = 1
    load: str | None = None  # closed | open
    rate: float | None = None  # open: requests per second per transport
    arrivals: str | None = None  # open: poisson | constant
    resume_grace_s: float | None = None  # with a fault plan: the server's wait for a reader
    streams_per_server: list[int] | None = None  # several servers: measured streams each
    client_cpu_s_per_process: list[float] | None = None  # several client processes
    raw_client: RawFloor | None = None
    shared_window: SharedWindow | None = None
    rounds: tuple[Round, ...] | None = None  # a repeated phase's rounds, in order

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseSetup:
        raw = data.get("raw_client")
        rounds = data.get("rounds")
        return cls(
            **known_fields(cls, data)
            | {
                "raw_client": RawFloor(**known_fields(RawFloor, raw))
                if isinstance(raw, Mapping)
                else None,
                "shared_window": shared_window(data),
                "rounds": tuple(Round(**known_fields(Round, r)) for r in rounds)
                if isinstance(rounds, list)
                else None,
            }
        )


@dataclass(frozen=True, slots=True)
class LoadTestSetup:
    """How a load test (`bench.py load`, locust) ran a phase: written by
    `harness.load.records` only."""

    order: str  # sequential | interleaved
    streams_per_worker: dict[str, int] = field(default_factory=dict)  # locust worker -> streams
    hosts: list[str] = field(default_factory=list)  # where the users ran
    shared_window: SharedWindow | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadTestSetup:
        return cls(**known_fields(cls, data) | {"shared_window": shared_window(data)})


def shared_window(data: Mapping[str, Any]) -> SharedWindow | None:
    """The `shared_window` entry of a setup's JSON, as a record (None: not shared)."""
    found = data.get("shared_window")
    return SharedWindow(**known_fields(SharedWindow, found)) if isinstance(found, Mapping) else None


@dataclass(frozen=True, slots=True)
class BrowserFigures:
    """What a phase records of the browser client (`client = "browser"`): written by
    `harness.measure.browser.client` only, which documents each figure."""

    chromium: str  # Chromium's version
    flags: list[str]
    pages: int
    streams_per_page: int
    sse_api: str
    stamps: str
    cdp_clock_check: list[dict[str, Any] | None]  # each session's `clock.check_cdp_clock`
    js_clock: list[dict[str, Any]]  # each page's `JsClock.to_json()`
    js_after_cdp_ms: Stats
    renderer_after_network_process_ms: Stats
    python_after_cdp_ms: Stats
    dispatch_ms: Stats
    stamped_by_page_clock: int
    cdp_unsettled_streams: int
    page_vs_cdp_request_mismatches: int
    page_failures: int
    websocket_permessage_deflate: bool
    wire_bytes: str
    client_cpu: str  # what the phase's `client_cpu_s` counts: Chromium's processes
    python_client_cpu_s: float  # the Python side's, which only relays CDP events
    # not in the first browser results: no samples there
    js_after_network_process_ms: Stats = field(default_factory=lambda: {"n": 0})
    # per stream: token 0's first animation frame after its DOM update, minus its network
    # arrival (page.js `renders`); not in results from before it
    first_render_after_network_ms: Stats = field(default_factory=lambda: {"n": 0})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BrowserFigures:
        return cls(**known_fields(cls, data))


@dataclass(frozen=True, slots=True)
class StackSetup:
    """The server stack a phase ran on (`stacks.py`), as run: its name, the HTTP versions
    its server speaks, and for a threaded stack its worker processes and threads per worker
    (resolved: never 0). Results from before stacks have none: the default stack."""

    name: str
    http_versions: list[str]
    workers: int | None = None  # threaded stacks only
    threads: int | None = None  # threaded stacks only

    @property
    def thread_limit(self) -> int | None:
        """Requests a threaded stack serves at once (workers x threads); None otherwise."""
        if self.workers is None or self.threads is None:
            return None
        return self.workers * self.threads


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
    setup: PhaseSetup | None = None
    load_test: LoadTestSetup | None = None
    browser: BrowserFigures | None = None
    path_parameters: dict[str, Any] = field(default_factory=dict)  # layer name -> its figures
    stack: StackSetup | None = None

    @property
    def server_processes(self) -> int:
        """The servers the phase's streams went to (1 unless the driver recorded more)."""
        return 1 if self.setup is None else self.setup.server_processes

    @property
    def rounds(self) -> tuple[Round, ...]:
        """A repeated phase's rounds (none: one window)."""
        return () if self.setup is None or self.setup.rounds is None else self.setup.rounds

    @property
    def window_s(self) -> float:
        """The time it measured: its window, or its rounds' windows added up."""
        if self.rounds:
            return sum(r.window_s for r in self.rounds)
        return (self.window_end_ns - self.window_start_ns) / 1e9

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests"] = [r.to_json() for r in self.requests]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseRecord:
        parts = {"requests", "setup", "load_test", "browser", "stack"}
        phase = cls(**{k: v for k, v in known_fields(cls, data).items() if k not in parts})
        phase.requests = [RequestRecord.from_json(r) for r in data.get("requests", [])]
        if data.get("setup") is not None:
            phase.setup = PhaseSetup.from_json(data["setup"])
        if data.get("load_test") is not None:
            phase.load_test = LoadTestSetup.from_json(data["load_test"])
        if data.get("browser") is not None:
            phase.browser = BrowserFigures.from_json(data["browser"])
        if isinstance(data.get("stack"), Mapping):
            phase.stack = StackSetup(**known_fields(StackSetup, data["stack"]))
        return phase
