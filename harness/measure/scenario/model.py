"""The scenario as data: what one benchmark run measures (`Scenario`, with its tables
`Inject`, `Faults`, `Load` and its `Sweep`), and what it derives (a sweep's points, the
server's flags, the results' record of it). Reading files and flags is
`harness.measure.scenario.reading`; checking is `harness.measure.scenario.validation`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.measure.browser.capability import STREAMS_PER_PAGE
from harness.measure.paths import LOOPBACK, parse_path
from harness.measure.processes import AUTO, auto_processes
from harness.measure.records import StackSetup, SweepValue
from harness.measure.scenario.http_versions import resolved
from servers.cpus import usable_cpus
from servers.faults import load_faults
from servers.sources.spec import SourceSpec
from stacks import DEFAULT as DEFAULT_STACK
from stacks import DEFAULT_WORKERS, STACKS, default_threads
from transports import TRANSPORTS

KNOB_NAMES = tuple(knob.name for knob in TRANSPORTS.knobs())
DEFAULT_KNOBS = tuple((knob.name, knob.default) for knob in TRANSPORTS.knobs())
ORDERS = ("auto", "sequential", "interleaved")
SWEEP_AXES = (
    "concurrency",
    "rate",
    *(knob.name for knob in TRANSPORTS.knobs()),  # each transport's own settings
    "framing",
    "preset",
    "path",
    "streaming_headers",
    "client",
    "stack",
    "server_faults",
    "heartbeat_s",
    "http",
)
# axes the server process itself holds: a sweep over one restarts the server at each point
SERVER_AXES = ("preset", "streaming_headers", "stack", "server_faults", "heartbeat_s", "http")


@dataclass(frozen=True, slots=True)
class Sweep:
    axis: str
    values: tuple[SweepValue, ...]


@dataclass(frozen=True, slots=True)
class Inject:
    """Deliberate regressions, for testing the regression check (never for real runs)."""

    token_delay_ms: float = 0.0
    pad_bytes: int = 0

    def server_args(self) -> tuple[str, ...]:
        args: tuple[str, ...] = ()
        if self.token_delay_ms:
            args += ("--inject-delay-ms", str(self.token_delay_ms))
        if self.pad_bytes:
            args += ("--inject-pad-bytes", str(self.pad_bytes))
        return args


@dataclass(frozen=True, slots=True)
class Faults:
    """Connection faults the clients make on purpose: the fault benchmark. Counts are tokens
    received; 0 turns a fault off. A drop closes the connection without a word (as a
    network failure does) and resumes at once: SSE reconnects the way EventSource does
    (`Last-Event-ID` and `?stream=`), chunked and WebSocket resume by stream id and next
    index, polling simply polls again. A leave drops the connection for good, so the
    server's cancellation shows (`resume_grace_s` after the drop, by design)."""

    drop_at_token: int = 0
    leave_at_token: int = 0
    resume_grace_s: float = 5.0  # the server's wait for a dropped push reader to come back

    def server_args(self) -> tuple[str, ...]:
        return ("--resume-grace-s", f"{self.resume_grace_s:g}")


CONVERSATION_STATES = ("client", "server")


@dataclass(frozen=True, slots=True)
class Conversation:
    """Agent loops (`harness.measure.run.conversations`): each request is a conversation of
    `turns` streams (0: single streams, the default). A turn's answer streams and ends; the
    client "runs the tool" for `tool_call_ms`, then sends the next turn, whose request
    carries the conversation, grown by `context_bytes` a turn (the answer and the tool's
    result). `state`: who keeps the conversation, `client` (re-sent whole every turn) or
    `server` (the client sends only what is new and the previous turn's id: the Responses
    API's `previous_response_id`); `keepalive`: HTTP turns reuse connections, or not (a new
    connection a turn, as a proxy that closes them forces; WebSocket keeps its one
    connection either way). Several values of `state` and `keepalive` are variants, and
    conversation k runs variant k mod their number, on every transport."""

    turns: int = 0
    tool_call_ms: float = 300.0
    context_bytes: int = 4096
    state: tuple[str, ...] = ("client",)
    keepalive: tuple[bool, ...] = (True,)


LOAD_SHAPES = ("steady", "step", "spike")


@dataclass(frozen=True, slots=True)
class Load:
    """Simulated users per transport over time, for `bench.py load` and the locustfile."""

    shape: str = "steady"
    users: int = 10
    spawn_rate: float = 10.0
    run_time_s: float = 30.0
    step_users: int = 5
    step_time_s: float = 5.0
    spike_users: int = 50
    spike_at_s: float = 10.0
    spike_time_s: float = 5.0
    think_time_s: float = 0.0
    stop_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str = "default"
    description: str = ""
    transports: tuple[str, ...] = TRANSPORTS.names()
    requests: int = 50
    concurrency: int = 8  # streams in flight at once; with a rate, the cap on them
    rate: float = 0.0  # open loop: requests per second per transport (0: closed loop)
    arrivals: str = "poisson"  # with a rate: poisson | constant (harness.measure.arrivals)
    warmup: int = 2
    seed: int = 1
    framing: str = "json"
    # the transports' own settings (`transports.Knob`), every one: (name, value). A scenario
    # file writes each as a field of its own (`poll_interval_ms = 100`), as results do.
    knobs: tuple[tuple[str, float], ...] = DEFAULT_KNOBS
    stream_timeout_s: float = 120.0
    source: SourceSpec = field(default_factory=SourceSpec)
    sweep: Sweep | None = None
    inject: Inject = field(default_factory=Inject)
    faults: Faults = field(default_factory=Faults)
    load: Load = field(default_factory=Load)
    conversation: Conversation = field(default_factory=Conversation)
    prompts: str | None = None  # live sources: a prompts file, request k uses line k
    order: str = "auto"  # sequential | interleaved | auto (interleaved for live sources)
    path: str = LOOPBACK  # between clients and server (harness.measure.paths); a sweep axis
    client: str = "python"  # python | browser: who reads the streams (harness.measure.browser)
    streams_per_page: int = STREAMS_PER_PAGE  # browser: streams one page runs at once
    streaming_headers: bool = True  # the server's push responses ask proxies not to buffer
    server_faults: str = ""  # failure lab: the server's deliberate mistakes (servers/faults.py),
    # joined by + ("nagle+headers_late"; "" or "none": none); a sweep axis
    heartbeat_s: float = 0.0  # keep-alive bytes after this long with nothing to send; 0: none
    ramp_s: float = 0.0  # closed loop: workers start evenly over this many seconds
    repeat: int = 1  # each transport's phase this many times, in rounds (A B C, A B C, ...)
    raw_client: bool = False  # the raw client's floor after each transport (raw_client.py)
    server_processes: int = AUTO  # servers under test (harness.measure.processes); 0: auto
    client_processes: int = AUTO  # processes the driver's clients run in; 0: auto
    server_cpus: str = ""  # pin the server processes to these CPUs ("0", "0-1"; "": not pinned)
    client_cpus: str = ""  # pin the driver's clients to these (servers.cpus)
    stack: str = DEFAULT_STACK  # the server stack, framework@server (stacks.py); a sweep axis
    workers: int = DEFAULT_WORKERS  # a threaded stack's worker processes (1: see validation)
    threads: int = 0  # a threaded stack's threads per worker; 0: `stacks.default_threads`
    # the HTTP version the clients speak: auto (the path's), 1.1, 2 or 3
    # (harness.measure.scenario.http_versions); a sweep axis
    http: str = "auto"

    def knob(self, name: str) -> float:
        """The value of a transport's setting (its default if this scenario lacks it)."""
        return dict(self.knobs).get(name, TRANSPORTS.knob(name).default)

    def with_knob(self, name: str, value: float) -> Scenario:
        return replace(self, knobs=tuple({**dict(self.knobs), name: float(value)}.items()))

    @property
    def interleaved(self) -> bool:
        """Live timing varies far more between requests than transports differ, so a live
        run alternates transports request by request instead of running them in turn."""
        return self.order == "interleaved" or (self.order == "auto" and self.source.live)

    def at(self, value: SweepValue) -> Scenario:
        """This scenario at one point of its sweep."""
        return self._set_at(value).runnable()

    def _set_at(self, value: SweepValue) -> Scenario:
        """This scenario with its sweep's axis set to `value` (`all` not yet resolved)."""
        assert self.sweep is not None
        if self.sweep.axis == "preset":
            return replace(self, source=SourceSpec(preset=str(value), seed=self.seed))
        if self.sweep.axis == "stack":
            return self.on_stack(str(value))
        if self.sweep.axis in KNOB_NAMES:
            assert isinstance(value, int | float) and not isinstance(value, bool)
            return self.with_knob(self.sweep.axis, value)
        swept: dict[str, Any] = {self.sweep.axis: value}  # the axis names a field
        return replace(self, **swept)

    def runnable(self) -> Scenario:
        """`all` transports as all that can run here: those a browser can run, for the
        browser client (a page cannot take a webhook's POSTs); those over QUIC only where
        QUIC can run (`quic_possible`). A transport named on its own is refused instead."""
        if self.transports != TRANSPORTS.names():
            return self
        usable = [t for t in TRANSPORTS if self.client != "browser" or t.capabilities.browser]
        if not self.quic_possible():
            usable = [t for t in usable if not t.quic]
        return replace(self, transports=tuple(t.name for t in usable))

    def quic_possible(self) -> bool:
        """Whether a transport over QUIC can run at every point: a path that carries QUIC,
        and the server's UDP port not HTTP/3's."""
        points = [self] if self.sweep is None else [self._set_at(v) for v in self.sweep.values]
        return all(
            "3" in parse_path(p.path).http_versions(("3",)) and p.http_version() != "3"
            for p in points
        )

    def with_processes(self) -> Scenario:
        """This scenario with `server_processes` and `client_processes` of 0 (auto) resolved
        by the rule of `harness.measure.processes` (1 where more would be refused: a path
        other than loopback, the browser client, at any point of the sweep)."""
        if AUTO not in (self.server_processes, self.client_processes):
            return self
        paths, clients = set(self.paths()), {self.client}
        if self.sweep is not None and self.sweep.axis == "client":
            clients |= {str(v) for v in self.sweep.values}
        browser = clients != {"python"}
        # HTTP/3: the run's one QUIC port and certificate
        one_server = browser or any(p.strip() != LOOPBACK for p in paths) or self.speaks_http3()
        auto = auto_processes()
        return replace(
            self,
            server_processes=self.server_processes or (1 if one_server else auto),
            client_processes=self.client_processes or (1 if browser else auto),
        )

    def on_stack(self, name: str) -> Scenario:
        """This scenario served by the stack `name`: `workers` and `threads` kept for a
        threaded stack, back to their defaults for another (a sweep over stacks, or a
        capacity search over several, sets them for its threaded stacks only)."""
        if name in STACKS and STACKS.get(name).threaded:
            return replace(self, stack=name)
        return replace(self, stack=name, workers=DEFAULT_WORKERS, threads=0)

    def stacks(self) -> tuple[str, ...]:
        """The stack, or every stack of a sweep over stacks."""
        if self.sweep is not None and self.sweep.axis == "stack":
            return tuple(str(v) for v in self.sweep.values)
        return (self.stack,)

    def stack_threads(self) -> int:
        """The threads per worker a threaded stack runs: `threads`, or when 0
        `stacks.default_threads` of the server's CPUs (those of `server_cpus` when pinned,
        else the machine's)."""
        if self.threads:
            return self.threads
        pinned = len(usable_cpus(self.server_cpus)) if self.server_cpus else None
        return default_threads(pinned)

    def stack_args(self) -> tuple[str, ...]:
        """The server's stack flags: none for the default stack (its command line is as it
        always was); `--stack NAME` for another, with `--workers W --threads T` (threads
        resolved) for a threaded one."""
        if self.stack == DEFAULT_STACK:
            return ()
        args: tuple[str, ...] = ("--stack", self.stack)
        if STACKS.get(self.stack).threaded:
            args += ("--workers", str(self.workers), "--threads", str(self.stack_threads()))
        return args

    def http_version(self) -> str:
        """The clients' HTTP version at this point: `http`, with `best` resolved."""
        return resolved(self.http, self.path, self.stack)

    def speaks_http3(self) -> bool:
        """Whether the clients speak HTTP/3 at any point of the scenario."""
        if self.sweep is None:
            return self.http_version() == "3"
        return any(self.at(v).http_version() == "3" for v in self.sweep.values)

    def quic_transports(self) -> tuple[str, ...]:
        """The scenario's transports that travel over QUIC (`webtransport`)."""
        return tuple(t for t in self.transports if t in TRANSPORTS and TRANSPORTS.get(t).quic)

    def stack_setup(self) -> StackSetup:
        """The stack as results record it: resolved, as `stack_args` passes it."""
        stack = STACKS.get(self.stack)
        threaded = stack.threaded
        return StackSetup(
            name=stack.name,
            http_versions=list(stack.http_versions),
            workers=self.workers if threaded else None,
            threads=self.stack_threads() if threaded else None,
        )

    def paths(self) -> tuple[str, ...]:
        """The path, or every path of a sweep over paths."""
        if self.sweep is not None and self.sweep.axis == "path":
            return tuple(dict.fromkeys([self.path, *(str(v) for v in self.sweep.values)]))
        return (self.path,)

    def server_args(self) -> tuple[str, ...]:
        """The server process's flags this scenario sets (test aids, resume grace, the push
        responses' streaming headers, the Host names its paths' clients use, pinning, the
        stack: `stack_args`)."""
        streaming = ("--streaming-headers", "1" if self.streaming_headers else "0")
        hosts = dict.fromkeys(h for p in self.paths() for h in parse_path(p).server_hosts())
        allowed = tuple(arg for host in hosts for arg in ("--allowed-host", host))
        pinned = ("--cpus", self.server_cpus) if self.server_cpus else ()
        own = self.inject.server_args() + self.faults.server_args()
        lab = tuple(arg for name in self.fault_names() for arg in ("--fault", name))
        if self.heartbeat_s:
            lab += ("--heartbeat-s", str(self.heartbeat_s))
        return own + lab + streaming + allowed + pinned + self.stack_args()

    def fault_names(self) -> tuple[str, ...]:
        """The server faults, by name (`servers.faults.FAULTS`)."""
        return load_faults([self.server_faults])

    def to_json(self) -> dict[str, Any]:
        """The scenario as results record it: every transport setting a field of its own,
        given or default (as a scenario file writes them)."""
        data: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if name == "knobs":
                data.update({k: self.knob(k) for k in KNOB_NAMES})
            else:
                data[name] = value
        data["transports"] = list(self.transports)
        data["conversation"] = {
            **asdict(self.conversation),
            "state": list(self.conversation.state),
            "keepalive": list(self.conversation.keepalive),
        }
        if self.sweep is not None:
            data["sweep"] = {"axis": self.sweep.axis, "values": list(self.sweep.values)}
        return data
