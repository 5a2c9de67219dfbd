"""Scenarios: a declarative description of one benchmark run (TOML file + command-line flags).

```toml
name = "default"
description = "..."
transports = "all"            # or ["sse", "websocket"]
requests = 50                 # measured streams per transport
concurrency = 8               # streams in flight at once (with a rate: at most)
rate = 0                      # open loop: requests per second per transport, arriving on a
                              # schedule whatever the server does; a stream that finds all
                              # `concurrency` slots busy waits, and the wait counts in its
                              # TTFT and E2E. 0: closed loop (a stream starts when one ends)
arrivals = "poisson"          # with a rate: poisson (random gaps, seeded by `seed`) | constant
warmup = 2                    # unmeasured streams per transport first
seed = 1                      # the mock's text and timing; request k uses seed k
framing = "json"              # json | openai | vercel-ui | vercel-data | langchain | raw:
                              # json and openai go over every transport (polling keeps its
                              # own envelope); vercel-ui over sse, vercel-data over chunked,
                              # langchain over sse, chunked and websocket, raw over sse and
                              # chunked (wire/framing.py; any other pair is refused)
poll_interval_ms = 100        # short polling
long_poll_wait_s = 30         # long polling
batch_ms = 0                  # webhook: the server batches tokens this long per POST
                              # (0: one POST per token; at most 60000)
stream_timeout_s = 120        # one stream must finish within this
client = "python"             # python | browser (Chromium pages: harness.measure.browser)
ramp_s = 0                    # closed loop: start the concurrency workers evenly over this
                              # many seconds, not all at once (0); streams of equal length
                              # otherwise stay in lockstep, requested in waves
raw_client = false            # after each transport, the same streams through a minimal raw
                              # socket client that only counts tokens: the floor for the
                              # client's CPU per token (harness.measure.raw_client; sse,
                              # chunked and websocket, json framing, python client)
server_processes = "auto"     # servers under test: N processes on N loopback ports; each
                              # client shard sticks to one (shard i -> server i % N), so
                              # every request of a stream goes to the server that has it
client_processes = "auto"     # processes the driver's streams run in: job k in process
                              # k % M, concurrency split evenly, results merged as if one
                              # process had run them. Both: 1 to 64, or "auto" (or 0):
                              # max(1, c // 2) on c cores (os.cpu_count(); 2 cores: 1 and 1).
                              # More than 1 server needs path = "loopback", more than 1 of
                              # either needs client = "python" (auto is then 1);
                              # `bench.py load` runs one server (locust: --workers)

[source]
kind = "mock"                 # mock | openai (a live endpoint) | trace (a recorded trace)
preset = "chat"               # mock: instant | chat | local | reasoning | steady
ttft_ms = 350                 # mock: optional overrides of the preset
tokens_per_s = 80
tokens_per_response = 100
# base_url = "http://127.0.0.1:8080/v1"   openai: the endpoint (key from OPENAI_API_KEY
# model = "smollm2"                        or TOKENWIRE_API_KEY, never from a file)
# temperature = 0.0                        openai: sampling (0: the same text per prompt)
# max_tokens = 64                          openai: cap per response
# trace = "scenarios/traces/x.jsonl"       trace: the file; request k replays its line k
# speed = 1.0                              trace: replay speed factor

prompts = "scenarios/prompts.txt"  # live sources: one prompt per line, request k uses line k
order = "auto"                # sequential | interleaved | auto (interleaved for live sources)
path = "loopback"             # between clients and server: loopback | nginx | nginx-h2 |
                              # net:PROFILE | net:rtt=80ms,... ; layers join with + (server
                              # side first: nginx+net:4g); a comma list compares several
streaming_headers = true      # push responses ask proxies not to buffer them (Cache-Control:
                              # no-cache, X-Accel-Buffering: no); false: a naive server

[sweep]                       # optional: run every value of one axis in one run folder
axis = "concurrency"          # concurrency | rate | poll_interval_ms | long_poll_wait_s |
                              # batch_ms | framing | preset | path | streaming_headers (a
                              # preset or streaming_headers sweep restarts the server at
                              # each point)
values = [1, 10, 50]

[inject]                      # test aid: a deliberate server-side regression
token_delay_ms = 5            # hold every token this long after the source emits it
pad_bytes = 0                 # add this many bytes of padding to every token message

[faults]                      # the fault benchmark: connections dropped on purpose
drop_at_token = 10            # after 10 tokens, drop the connection and resume at once
leave_at_token = 60           # after 60 tokens, leave for good (the server cancels)
resume_grace_s = 1            # the server's wait for a dropped push reader (default 5)

[load]                        # `bench.py load` and scenarios/locustfile.py (locust users)
shape = "steady"              # steady | step (a staircase up to users) | spike
users = 20                    # users per transport: steady throughout; step: the top;
                              # spike: the baseline before and after the spike
spawn_rate = 20               # users started (or stopped) per second
run_time_s = 20               # length of the test (per transport when order is sequential)
step_users = 5                # step: users added at each step
step_time_s = 5               # step: seconds between steps
spike_users = 60              # spike: users at the peak
spike_at_s = 8                # spike: when the peak starts
spike_time_s = 4              # spike: how long it lasts
think_time_s = 0              # a user's pause between streams (0: closed loop)
stop_timeout_s = 10           # at the end, streams in flight get this long to finish
```

In a load test `requests`, `concurrency`, `rate`, `arrivals` and `warmup` do not apply:
locust users stream in a closed loop for `run_time_s`. `order` decides whether the
transports run one after another (sequential: a locust run each, with its own CPU figures)
or together (interleaved: one locust run, users spread evenly over the transports).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints

from errors import ScenarioError, SourceError
from harness.measure.arrivals import ARRIVALS
from harness.measure.browser.capability import CLIENTS, PAGE_FRAMINGS, refuse_for_browser
from harness.measure.paths import LOOPBACK, parse_path, split_paths
from harness.measure.processes import AUTO, PROCESS_FIELDS, auto_processes, check_count, parse_count
from harness.measure.records import SweepValue
from servers.sources.mock import PRESETS
from servers.sources.spec import SOURCE_KINDS, SourceSpec
from transports import TRANSPORTS
from wire.framing import FRAMINGS
from wire.webhook import MAX_BATCH_MS

ORDERS = ("auto", "sequential", "interleaved")
SWEEP_AXES = (
    "concurrency",
    "rate",
    "poll_interval_ms",
    "long_poll_wait_s",
    "batch_ms",
    "framing",
    "preset",
    "path",
    "streaming_headers",
    "client",
)
# axes the server process itself holds: a sweep over one restarts the server at each point
SERVER_AXES = ("preset", "streaming_headers")


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

    def validate(self) -> None:
        if self.drop_at_token < 0 or self.leave_at_token < 0:
            raise ScenarioError("faults.drop_at_token and faults.leave_at_token must be 0 or more")
        if self.leave_at_token and self.drop_at_token >= self.leave_at_token:
            raise ScenarioError("faults.drop_at_token must come before faults.leave_at_token")
        if self.resume_grace_s < 0:
            raise ScenarioError("faults.resume_grace_s must be 0 or more")

    def server_args(self) -> tuple[str, ...]:
        return ("--resume-grace-s", f"{self.resume_grace_s:g}")


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

    def validate(self) -> None:
        if self.shape not in LOAD_SHAPES:
            raise ScenarioError(
                f"unknown load.shape {self.shape!r}; allowed: {', '.join(LOAD_SHAPES)}"
            )
        for name in ("users", "step_users", "spike_users"):
            if getattr(self, name) < 1:
                raise ScenarioError(f"load.{name} must be a positive integer")
        for name in ("spawn_rate", "run_time_s", "step_time_s", "spike_time_s"):
            if not getattr(self, name) > 0:
                raise ScenarioError(f"load.{name} must be a positive number")
        for name in ("spike_at_s", "think_time_s", "stop_timeout_s"):
            if getattr(self, name) < 0:
                raise ScenarioError(f"load.{name} must be 0 or more")
        if self.shape == "spike" and self.spike_at_s + self.spike_time_s > self.run_time_s:
            raise ScenarioError("load: the spike must end within run_time_s")


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
    poll_interval_ms: float = 100.0
    long_poll_wait_s: float = 30.0
    batch_ms: float = 0.0  # webhook: how long the server gathers tokens per POST (0: one each)
    stream_timeout_s: float = 120.0
    source: SourceSpec = field(default_factory=SourceSpec)
    sweep: Sweep | None = None
    inject: Inject = field(default_factory=Inject)
    faults: Faults = field(default_factory=Faults)
    load: Load = field(default_factory=Load)
    prompts: str | None = None  # live sources: a prompts file, request k uses line k
    order: str = "auto"  # sequential | interleaved | auto (interleaved for live sources)
    path: str = LOOPBACK  # between clients and server (harness.measure.paths); a sweep axis
    client: str = "python"  # python | browser: who reads the streams (harness.measure.browser)
    streaming_headers: bool = True  # the server's push responses ask proxies not to buffer
    ramp_s: float = 0.0  # closed loop: workers start evenly over this many seconds
    raw_client: bool = False  # the raw client's floor after each transport (raw_client.py)
    server_processes: int = AUTO  # servers under test (harness.measure.processes); 0: auto
    client_processes: int = AUTO  # processes the driver's clients run in; 0: auto

    @property
    def interleaved(self) -> bool:
        """Live timing varies far more between requests than transports differ, so a live
        run alternates transports request by request instead of running them in turn."""
        return self.order == "interleaved" or (self.order == "auto" and self.source.live)

    def at(self, value: SweepValue) -> Scenario:
        """This scenario at one point of its sweep."""
        assert self.sweep is not None
        if self.sweep.axis == "preset":
            return replace(self, source=SourceSpec(preset=str(value), seed=self.seed))
        swept: dict[str, Any] = {self.sweep.axis: value}  # the axis names a field
        return replace(self, **swept).runnable()

    def runnable(self) -> Scenario:
        """`all` transports read by the browser client: all that a browser can run (a page
        cannot take a webhook's POSTs). A transport named on its own is refused instead."""
        if self.client == "browser" and self.transports == TRANSPORTS.names():
            usable = tuple(t.name for t in TRANSPORTS if t.capabilities.browser)
            return replace(self, transports=usable)
        return self

    def validate(self) -> Scenario:
        """This scenario, checked (ScenarioError names what is wrong), and `runnable`."""
        if self.runnable() is not self:
            return self.runnable().validate()
        if self.with_processes() is not self:
            return self.with_processes().validate()
        for name in ("requests", "concurrency"):
            if getattr(self, name) < 1:
                raise ScenarioError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ScenarioError(f"warmup must be 0 or more, got {self.warmup}")
        if self.seed < 0:
            raise ScenarioError(f"seed must be 0 or more, got {self.seed}")
        for name in ("poll_interval_ms", "long_poll_wait_s", "stream_timeout_s"):
            if not getattr(self, name) > 0:
                raise ScenarioError(f"{name} must be a positive number, got {getattr(self, name)}")
        self.check_rate()
        if not 0 <= self.ramp_s <= 3600:
            raise ScenarioError(f"ramp_s must be from 0 to 3600 seconds, got {self.ramp_s}")
        if not 0 <= self.batch_ms <= MAX_BATCH_MS:
            raise ScenarioError(f"batch_ms must be from 0 to {MAX_BATCH_MS:g}, got {self.batch_ms}")
        if not self.transports:
            raise ScenarioError("transports must name at least one transport")
        if self.framing not in FRAMINGS:
            raise ScenarioError(f"unknown framing {self.framing!r}; allowed: {', '.join(FRAMINGS)}")
        self.check_framing()
        parse_path(self.path)
        if self.order not in ORDERS:
            raise ScenarioError(f"unknown order {self.order!r}; allowed: {', '.join(ORDERS)}")
        try:
            self.source.validate()
        except SourceError as exc:
            raise ScenarioError(str(exc)) from None
        if self.inject.token_delay_ms < 0 or self.inject.pad_bytes < 0:
            raise ScenarioError("inject.token_delay_ms and inject.pad_bytes must be 0 or more")
        self.faults.validate()
        self.check_resume()
        if self.client not in CLIENTS:
            raise ScenarioError(f"unknown client {self.client!r}; allowed: {', '.join(CLIENTS)}")
        if self.client == "browser":
            faults = self.faults.drop_at_token or self.faults.leave_at_token
            refuse_for_browser(self.transports, bool(faults), concurrency=self.concurrency)
        self.check_processes()
        self.check_raw_client()
        self.load.validate()
        if self.sweep is not None:
            for value in self.sweep.values:
                replace(self.at(value), sweep=None).validate()
        return self

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
        one_server = browser or any(p.strip() != LOOPBACK for p in paths)
        auto = auto_processes()
        return replace(
            self,
            server_processes=self.server_processes or (1 if one_server else auto),
            client_processes=self.client_processes or (1 if browser else auto),
        )

    def check_processes(self) -> None:
        """Process counts from 1 to the maximum (0, auto, is resolved before); more than one
        server only on loopback, more than one process of either only with Python clients."""
        for name in PROCESS_FIELDS:
            check_count(name, getattr(self, name))
        if self.server_processes > 1 and self.path.strip() != LOOPBACK:
            raise ScenarioError(
                f"server_processes = {self.server_processes} needs path = loopback: a path's "
                f"layers ({self.path}) front one server; use server_processes = 1 (or auto) "
                "with a path"
            )
        if self.client == "browser":
            many = [n for n in PROCESS_FIELDS if getattr(self, n) > 1]
            if many:
                raise ScenarioError(
                    f"the browser client runs in one process against one server (one "
                    f"Chromium, same-origin pages): use {' and '.join(f'{n} = 1' for n in many)} "
                    'with client = "browser" (auto is 1 there)'
                )

    def check_raw_client(self) -> None:
        """The raw client reads JSON-framed push streams, one transport at a time."""
        if not self.raw_client:
            return
        from harness.measure.raw_client import RAW_TRANSPORTS

        others = [t for t in self.transports if t not in RAW_TRANSPORTS]
        if others:
            raise ScenarioError(
                f"raw_client reads {', '.join(RAW_TRANSPORTS)}, not {', '.join(others)}: "
                "pick those transports or set raw_client = false"
            )
        if self.framing != "json" or self.client != "python" or self.interleaved:
            raise ScenarioError(
                'raw_client needs framing = "json", client = "python" and transports run '
                'one after another (order = "sequential", or "auto" with the mock)'
            )

    def check_rate(self) -> None:
        """An open-loop rate is a finite number of requests per second, 0 for closed loop;
        its arrivals are a kind `harness.measure.arrivals` knows."""
        if not (0 <= self.rate < math.inf):
            raise ScenarioError(
                f"rate must be 0 (closed loop) or a positive number of requests per second "
                f"per transport, got {self.rate}"
            )
        if self.arrivals not in ARRIVALS:
            raise ScenarioError(
                f"unknown arrivals {self.arrivals!r}; allowed: {', '.join(ARRIVALS)} "
                "(they apply with a rate above 0)"
            )

    def check_resume(self) -> None:
        """A planned drop needs transports that can resume (`Capabilities.resume`)."""
        if not self.faults.drop_at_token:
            return
        cannot = [t for t in self.transports if not TRANSPORTS.get(t).capabilities.resume]
        if cannot:
            raise ScenarioError(
                f"faults.drop_at_token drops and resumes streams, and {', '.join(cannot)} "
                "cannot resume: drop them from the transports, or use faults.leave_at_token"
            )

    def check_framing(self) -> None:
        """Every transport must be able to carry the framing (its carriage among the
        framing's); `raw` has no token index to resume from, and the browser client reads
        json and openai."""
        framing = FRAMINGS[self.framing]
        cannot = [t for t in self.transports if not framing.can_travel(TRANSPORTS.get(t).carriage)]
        if cannot:
            carriers = ", ".join(TRANSPORTS.carrying(framing))
            raise ScenarioError(
                f"framing {self.framing} cannot travel over {', '.join(cannot)}; it travels "
                f"over {carriers} (pick them with --transports, or another framing)"
            )
        faults = self.faults.drop_at_token or self.faults.leave_at_token
        if faults and not framing.boundaries:
            raise ScenarioError(
                f"framing {self.framing} has no token boundaries, so a dropped stream has no "
                "index to resume from: drop [faults] or use another framing"
            )
        if self.client == "browser" and self.framing not in PAGE_FRAMINGS:
            raise ScenarioError(
                f"the browser client reads the framings {', '.join(PAGE_FRAMINGS)}, not "
                f'{self.framing}; use client = "python"'
            )

    def paths(self) -> tuple[str, ...]:
        """The path, or every path of a sweep over paths."""
        if self.sweep is not None and self.sweep.axis == "path":
            return tuple(dict.fromkeys([self.path, *(str(v) for v in self.sweep.values)]))
        return (self.path,)

    def server_args(self) -> tuple[str, ...]:
        """The server process's flags this scenario sets (test aids, resume grace, the push
        responses' streaming headers, the Host names its paths' clients use)."""
        streaming = ("--streaming-headers", "1" if self.streaming_headers else "0")
        hosts = dict.fromkeys(h for p in self.paths() for h in parse_path(p).server_hosts())
        allowed = tuple(arg for host in hosts for arg in ("--allowed-host", host))
        return self.inject.server_args() + self.faults.server_args() + streaming + allowed

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["transports"] = list(self.transports)
        if self.sweep is not None:
            data["sweep"] = {"axis": self.sweep.axis, "values": list(self.sweep.values)}
        return data


def parse_transports(value: str | list[str]) -> tuple[str, ...]:
    """`all`, a comma-separated string, or a list of names; unknown names are an error."""
    if isinstance(value, str):
        if value.strip() == "all":
            return TRANSPORTS.names()
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        raise ScenarioError('transports must be "all", "a,b,..." or a list of names')
    unknown = [n for n in names if n not in TRANSPORTS]
    if unknown:
        allowed = ", ".join(TRANSPORTS.names())
        raise ScenarioError(f"unknown transport(s) {', '.join(unknown)}; allowed: all, {allowed}")
    if not names:
        raise ScenarioError(f"no transport given; allowed: all, {', '.join(TRANSPORTS.names())}")
    return tuple(dict.fromkeys(names))


def _allowed_types(cls: type) -> dict[str, tuple[type, ...]]:
    """The types a scenario file may give each plain field of the dataclass `cls`, read from
    its annotations: a `str`, `int`, `float` or `bool` field (or one of them or None) takes
    that type, a float field an int too. Other fields (tables, lists) are parsed on their own."""
    hints = get_type_hints(cls)
    allowed: dict[str, tuple[type, ...]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        types = [t for t in get_args(hint) or (hint,) if t is not type(None)]
        if len(types) == 1 and types[0] in (str, int, float, bool):
            allowed[f.name] = (int, float) if types[0] is float else (types[0],)
    return allowed


_TYPES = _allowed_types(Scenario)
_LOAD_TYPES = _allowed_types(Load)
_INJECT_TYPES = _allowed_types(Inject)
_FAULTS_TYPES = _allowed_types(Faults)
# a source's seed is the scenario's (request k uses seed k), never its own
_SOURCE_TYPES = {k: v for k, v in _allowed_types(SourceSpec).items() if k != "seed"}
_AXIS_TYPES = {axis: {**_TYPES, **_SOURCE_TYPES}[axis] for axis in SWEEP_AXES}
SOURCE_FLAGS = (
    "preset",
    "ttft_ms",
    "tokens_per_s",
    "tokens_per_response",
    "base_url",
    "model",
    "max_tokens",
    "speed",
    "source",
)


def _check_type(where: str, key: str, value: Any, allowed: tuple[type, ...]) -> Any:
    wrong = isinstance(value, bool) != (bool in allowed) or not isinstance(value, allowed)
    if wrong:
        names: dict[type, str] = {float: "number", bool: "true or false"}
        kinds = " or ".join(names.get(t, t.__name__) for t in allowed)
        raise ScenarioError(f"{where}{key} must be {kinds}, got {value!r}")
    return float(value) if float in allowed else value


def _table(where: str, key: str, value: Any, types: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    """The checked fields of a `[key]` table whose fields have the types in `types`."""
    if not isinstance(value, dict) or not set(value) <= set(types):
        raise ScenarioError(f"{where}[{key}] allows only {', '.join(types)}, got {value!r}")
    return {k: _check_type(f"{where}{key}.", k, v, types[k]) for k, v in value.items()}


def scenario_from_dict(data: dict[str, Any], where: str = "") -> Scenario:
    known = {f.name for f in fields(Scenario)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(
            f"{where}unknown scenario field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "transports":
            values[key] = parse_transports(value)
        elif key == "source":
            if not isinstance(value, dict):
                raise ScenarioError(f"{where}[source] must be a table")
            values[key] = source_from_dict(value, where)
        elif key == "sweep":
            if not isinstance(value, dict) or set(value) != {"axis", "values"}:
                raise ScenarioError(f'{where}[sweep] needs exactly axis = "..." and values = [...]')
            values[key] = parse_sweep(value["axis"], value["values"], where)
        elif key == "load":
            values[key] = Load(**_table(where, key, value, _LOAD_TYPES))
        elif key == "inject":
            values[key] = Inject(**_table(where, key, value, _INJECT_TYPES))
        elif key == "faults":
            values[key] = Faults(**_table(where, key, value, _FAULTS_TYPES))
        elif key in PROCESS_FIELDS:
            values[key] = parse_count(where, key, value)
        else:
            values[key] = _check_type(where, key, value, _TYPES[key])
    scenario = Scenario(**values)
    return replace(scenario, source=replace(scenario.source, seed=scenario.seed))


def parse_sweep(axis: object, values: object, where: str = "") -> Sweep:
    if axis not in _AXIS_TYPES:
        raise ScenarioError(f"{where}unknown sweep axis {axis!r}; allowed: {', '.join(SWEEP_AXES)}")
    if isinstance(values, str):
        values = split_paths(values) if axis == "path" else [v.strip() for v in values.split(",")]
        values = [v for v in values if v.strip()]
        if _AXIS_TYPES[axis] == (bool,):
            flags = {"true": True, "false": False}
            if any(v.lower() not in flags for v in values):
                raise ScenarioError(f"{where}sweep values of {axis} must be true or false")
            values = [flags[v.lower()] for v in values]
        elif _AXIS_TYPES[axis] != (str,):
            try:
                values = [float(v) if "." in v else int(v) for v in values]
            except ValueError:
                raise ScenarioError(f"{where}sweep values of {axis} must be numbers") from None
    if not isinstance(values, list) or not values:
        raise ScenarioError(f"{where}sweep values must be a non-empty list")
    checked = tuple(_check_type(f"{where}sweep ", axis, v, _AXIS_TYPES[axis]) for v in values)
    if len(set(checked)) != len(checked):
        raise ScenarioError(f"{where}sweep values repeat: {list(values)}")
    return Sweep(axis=axis, values=checked)


def parse_sweep_flag(text: str) -> Sweep:
    """`--sweep concurrency=1,10,100`."""
    axis, sep, values = text.partition("=")
    if not sep:
        raise ScenarioError(f"--sweep takes AXIS=V1,V2,...; got {text!r}")
    return parse_sweep(axis.strip(), values)


def source_from_dict(data: dict[str, Any], where: str = "") -> SourceSpec:
    unknown = sorted(set(data) - set(_SOURCE_TYPES))
    if unknown:
        raise ScenarioError(
            f"{where}unknown [source] field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(_SOURCE_TYPES)}"
        )
    values = {k: _check_type(f"{where}source.", k, v, _SOURCE_TYPES[k]) for k, v in data.items()}
    if values.get("preset", "chat") not in PRESETS:
        raise ScenarioError(
            f"{where}unknown preset {values['preset']!r}; allowed: {', '.join(PRESETS)}"
        )
    if values.get("kind", "mock") not in SOURCE_KINDS:
        raise ScenarioError(
            f"{where}unknown source kind {values['kind']!r}; allowed: {', '.join(SOURCE_KINDS)}"
        )
    return SourceSpec(**values)


def parse_source_flag(text: str) -> dict[str, str]:
    """`--source mock|openai|trace:PATH`."""
    kind, _, path = text.partition(":")
    if kind == "trace" and path:
        return {"kind": "trace", "trace": path}
    if kind in ("mock", "openai") and not path:
        return {"kind": kind}
    raise ScenarioError(f"--source takes mock, openai or trace:PATH; got {text!r}")


def load_scenario(path: Path) -> Scenario:
    where = f"{path}: "
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}not valid TOML: {exc}") from None
    return scenario_from_dict(data, where)


def with_overrides(scenario: Scenario, **overrides: Any) -> Scenario:
    """Apply command-line flags (None means "not given"); source fields go to [source]."""
    top = {k: v for k, v in overrides.items() if v is not None and k not in SOURCE_FLAGS}
    source = {k: v for k, v in overrides.items() if v is not None and k in SOURCE_FLAGS}
    if "source" in source:
        source.update(parse_source_flag(source.pop("source")))
    if "transports" in top:
        top["transports"] = parse_transports(top["transports"])
    if "sweep" in top and isinstance(top["sweep"], str):
        top["sweep"] = parse_sweep_flag(top["sweep"])
    if "path" in top and len(split_paths(top["path"])) > 1:  # several paths: a sweep over them
        if "sweep" in top or scenario.sweep is not None:
            raise ScenarioError("a comma list of paths is a sweep over paths: drop the other sweep")
        top["sweep"] = parse_sweep("path", split_paths(top.pop("path")))
    updated = replace(scenario, **top)
    if "preset" in source and updated.sweep is not None and updated.sweep.axis == "preset":
        raise ScenarioError("--preset conflicts with a sweep over presets; drop one of them")
    if "preset" in source or source.get("kind", updated.source.kind) != updated.source.kind:
        # a new preset or source kind replaces the file's source, then the flags apply
        updated = replace(updated, source=SourceSpec(**source))
    elif source:
        updated = replace(updated, source=replace(updated.source, **source))
    return replace(updated, source=replace(updated.source, seed=updated.seed)).validate()
