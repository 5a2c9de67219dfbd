"""The driver: runs a scenario's streams through each transport and returns raw records.

Measuring only: no statistics here (see `harness.analyse.metrics`). Per transport: open the clients
(one pooled client per shard of at most `SHARD_SIZE` streams), run a few unmeasured warm-up
streams, then run `requests` streams with `concurrency` in flight (closed loop: a worker
schedules its next stream the moment its previous one ends, and that scheduled time starts
the stream's timers), read both sides' CPU around the measured window, and finally fetch the
server's emit timelines out of band and join them to what the clients saw. Request k uses
source seed k (and prompt k) on every transport.

Sequential order runs the transports one after another, so each has its own window and its
own CPU figures. Interleaved order (the default for live sources, whose timing varies far
more between requests than transports differ) alternates transports request by request in
one shared window; CPU can then not be split between transports and is left out. Against a
live source the run also measures `direct`: the same prompts straight from the upstream.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from clients.asyncio_io import AsyncStreamClient
from clients.direct import direct_exchange, direct_settings
from clients.interface import (
    ClientSettings,
    StreamClient,
    StreamError,
    StreamResult,
    bearer_headers,
)
from errors import ErrorKind, ScenarioError
from harness.measure.browser.client import (
    browser_phase_extra,
    open_browser_shards,
    start_browser_clients,
)
from harness.measure.paths import Endpoint
from harness.measure.records import PhaseRecord, RequestRecord, SweepValue
from harness.measure.scenario import Scenario
from harness.measure.server_process import PROJECT_ROOT
from servers.settings import SERVER_TOKEN_ENV
from transports import DIRECT, TRANSPORTS, TransportRegistry
from wire.messages import GenerationRequest, loads
from wire.raw import sse_form

SHARD_SIZE = 50  # streams per pooled HTTP client: httpcore slows down with huge pools
WARMUP_SEED_BASE = 1_000_000_000
TIMELINE_BATCH = 500
LEFT_STREAM_SLACK_S = 10.0  # beyond the resume grace: how long a left stream may take to end
DEFAULT_PROMPTS = PROJECT_ROOT / "scenarios" / "prompts.txt"


class Server(Protocol):
    """The server under test, as the driver uses it (`ServerProcess`, or one in-process)."""

    base_url: str

    def cpu_seconds(self) -> float: ...
    def rss_bytes(self) -> int: ...


class ProgressSink(Protocol):
    def phase_started(self, transport: str, total: int) -> None: ...
    def stream_done(self, transport: str, failed: bool) -> None: ...
    def phase_finished(self, transport: str) -> None: ...


class NoProgress:
    def phase_started(self, transport: str, total: int) -> None: ...
    def stream_done(self, transport: str, failed: bool) -> None: ...
    def phase_finished(self, transport: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeline:
    """The server's side of one stream (or, for `direct`, the client's own view of it)."""

    tokens: int
    emit_ns: list[int | None]
    texts: list[str]
    error: str | None
    usage_tokens: int | None = None
    planned_delays_ns: list[int] | None = None
    done: bool = True
    ended_ns: int | None = None  # when the generation ended (finished, failed or cancelled)
    problem: dict[str, str] | None = None  # why a live upstream failed it: {code, message}


def server_token() -> str | None:
    """The server's bearer token from `TOKENWIRE_SERVER_TOKEN`, which the server under test
    (a subprocess) inherits too; None when unset."""
    return os.environ.get(SERVER_TOKEN_ENV, "").strip() or None


def client_settings(
    scenario: Scenario, endpoint: Endpoint | str, max_connections: int
) -> ClientSettings:
    """The clients' settings for this scenario, speaking to `endpoint` (the server, or the
    outermost layer of the path in front of it)."""
    if isinstance(endpoint, str):
        endpoint = Endpoint(endpoint)
    return ClientSettings(
        base_url=endpoint.base_url,
        http2=endpoint.http2,
        ca_file=None if endpoint.ca_file is None else str(endpoint.ca_file),
        framing=scenario.framing,
        poll_interval_s=scenario.poll_interval_ms / 1000,
        long_poll_wait_s=scenario.long_poll_wait_s,
        max_connections=max_connections,
        stream_timeout_s=scenario.stream_timeout_s,
        token=server_token(),
        drop_at_token=scenario.faults.drop_at_token,
        leave_at_token=scenario.faults.leave_at_token,
        batch_ms=scenario.batch_ms,
    )


def measured_transports(scenario: Scenario) -> tuple[str, ...]:
    return scenario.transports + ((DIRECT,) if scenario.source.live else ())


def open_shards(
    transport: str,
    scenario: Scenario,
    endpoint: Endpoint | str,
    transports: TransportRegistry = TRANSPORTS,
) -> list[StreamClient]:
    shard_count = -(-scenario.concurrency // SHARD_SIZE)
    size = -(-scenario.concurrency // shard_count)
    settings = client_settings(scenario, endpoint, size)
    if transport == DIRECT:  # the upstream itself, through the same asyncio driver
        upstream = direct_settings(settings, scenario.source)
        logic = direct_exchange(scenario.source)
        return [AsyncStreamClient(DIRECT, logic, upstream) for _ in range(shard_count)]
    if scenario.client == "browser":  # pages of one Chromium (harness.measure.browser)
        return open_browser_shards(transport, scenario, settings, transports)
    logic = transports.get(transport).exchange
    return [AsyncStreamClient(transport, logic, settings) for _ in range(shard_count)]


def load_prompts(scenario: Scenario) -> list[str]:
    """Live sources answer prompts: request k gets line k of the prompts file (cycling)."""
    if not scenario.source.live:
        return [""]
    path = Path(scenario.prompts) if scenario.prompts else DEFAULT_PROMPTS
    if not path.is_absolute() and not path.exists():
        path = PROJECT_ROOT / path
    try:
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ScenarioError(f"cannot read prompts file {path}: {exc.strerror or exc}") from None
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise ScenarioError(f"prompts file {path} holds no prompt")
    return prompts


def make_requests(
    scenario: Scenario, transport: str, run_tag: str, prompts: Sequence[str]
) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            seed=k,
            prompt=prompts[k % len(prompts)],
            max_tokens=scenario.source.max_tokens,
            stream_id=f"{run_tag}-{transport}-{k}",
        )
        for k in range(scenario.requests)
    ]


def warmup_requests(
    scenario: Scenario, transport: str, run_tag: str, prompts: Sequence[str]
) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            seed=WARMUP_SEED_BASE + k,
            prompt=prompts[k % len(prompts)],
            max_tokens=scenario.source.max_tokens,
            stream_id=f"{run_tag}-{transport}-w{k}",
        )
        for k in range(scenario.warmup)
    ]


async def run_stream(
    client: StreamClient, request: GenerationRequest, scheduled_ns: int, timeout_s: float
) -> StreamResult:
    """One stream, bounded in time whatever the transport does."""
    try:
        async with asyncio.timeout(timeout_s):
            return await client.stream(request, scheduled_ns)
    except TimeoutError:
        result = StreamResult(client.transport, request.stream_id or "", scheduled_ns)
        result.error = StreamError(
            ErrorKind.TIMEOUT, f"the stream did not finish within {timeout_s:g} s"
        )
        return result


@dataclass(frozen=True, slots=True)
class Job:
    transport: str
    request: GenerationRequest


async def run_jobs(
    shards: dict[str, list[StreamClient]],
    jobs: Sequence[Job],
    concurrency: int,
    timeout_s: float,
    on_done: Callable[[Job, StreamResult], None] | None = None,
) -> list[StreamResult]:
    """Run jobs in order with `concurrency` workers; worker w always uses shard w // size."""
    results: list[StreamResult | None] = [None] * len(jobs)  # in job order
    queue = iter(range(len(jobs)))

    async def worker(w: int) -> None:
        for k in queue:
            job = jobs[k]
            pool = shards[job.transport]
            client = pool[w * len(pool) // concurrency]
            scheduled = time.perf_counter_ns()
            result = await run_stream(client, job.request, scheduled, timeout_s)
            results[k] = result
            if on_done is not None:
                on_done(job, result)

    async with asyncio.TaskGroup() as group:
        for w in range(min(concurrency, len(jobs))):
            group.create_task(worker(w))
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


async def run_streams(
    shards: Sequence[StreamClient],
    requests: Sequence[GenerationRequest],
    concurrency: int,
    timeout_s: float,
    on_done: Callable[[StreamResult], None] | None = None,
) -> list[StreamResult]:
    """Requests through one transport's shards (results in request order)."""
    transport = shards[0].transport
    return await run_jobs(
        {transport: list(shards)},
        [Job(transport, r) for r in requests],
        concurrency,
        timeout_s,
        None if on_done is None else (lambda job, result: on_done(result)),
    )


async def fetch_timelines(base_url: str, ids: Sequence[str]) -> dict[str, Timeline]:
    """The server's emit timelines, fetched out of band after the phase, then dropped."""
    found: dict[str, Timeline] = {}
    headers = bearer_headers(server_token())
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, trust_env=False, timeout=60
    ) as http:
        for start in range(0, len(ids), TIMELINE_BATCH):
            batch = list(ids[start : start + TIMELINE_BATCH])
            response = await http.post(
                "/v1/timelines", json={"ids": batch, "texts": True, "drop": True}
            )
            response.raise_for_status()
            for item in loads(response.content)["timelines"]:
                found[item["id"]] = Timeline(
                    tokens=item["tokens"],
                    emit_ns=item["emit_ns"],
                    texts=item["texts"],
                    error=item["error"],
                    usage_tokens=item.get("usage_tokens"),
                    planned_delays_ns=item.get("planned_delays_ns"),
                    done=bool(item.get("done", True)),
                    ended_ns=item.get("ended_ns"),
                    problem=item.get("problem"),
                )
    return found


async def fetch_ended_timelines(
    base_url: str, ids: Sequence[str], patience_s: float
) -> dict[str, Timeline]:
    """Timelines once their generations have ended: streams a client left on purpose run on
    until the server cancels them (a resume grace later), and that end is what the fault
    benchmark measures. Waits at most `patience_s` for the last ones."""
    found = await fetch_timelines(base_url, ids)
    deadline = time.monotonic() + patience_s
    running = [i for i, timeline in found.items() if not timeline.done]
    while running and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        found |= await fetch_timelines(base_url, running)
        running = [i for i in running if not found[i].done]
    return found


def own_timeline(result: StreamResult) -> Timeline:
    """`direct` has no relay: its record of the source is what it received itself."""
    return Timeline(
        tokens=len(result.texts),
        emit_ns=[None] * len(result.texts),
        texts=list(result.texts),
        error=None,
        usage_tokens=result.end_tokens,
    )


def relayed_problems(timeline: Timeline | None) -> list[dict[str, str]]:
    """The live upstream's problem that failed the server's generation, if one did."""
    if timeline is None or timeline.problem is None:
        return []
    problem = timeline.problem
    return [{"code": problem["code"], "severity": "problem", "message": problem["message"]}]


@dataclass(frozen=True, slots=True)
class Received:
    """The tokens a client received: index, arrival stamp and text of each, tokens per read;
    `extra`: text past the source's last token (pieces only)."""

    indices: list[int]
    recv_ns: list[int]
    texts: list[str]
    chunk_sizes: list[int]
    extra: bool = False


def received_tokens(result: StreamResult, timeline: Timeline | None) -> Received:
    """What the client received, token by token. A framing without token boundaries (`raw`)
    delivers pieces of text: token i counts as received with the piece that brought its
    last character, found by cumulative length against the source's token texts (in the form
    they take on the wire: `StreamResult.pieces`). What that cannot tell: where tokens end
    within a piece, and duplicates (a repeated text only shifts what follows: mismatches)."""
    if result.pieces is None or timeline is None:
        return Received(result.indices, result.recv_ns, result.texts, result.chunk_sizes)
    form = sse_form if result.pieces == "sse" else str
    ends = list(itertools.accumulate(len(form(t)) for t in timeline.texts))
    piece_ends = list(itertools.accumulate(len(p) for p in result.texts))
    received = "".join(result.texts)
    indices: list[int] = []
    recv_ns: list[int] = []
    texts: list[str] = []
    start = k = 0
    for i, end in enumerate(ends):
        k = bisect.bisect_left(piece_ends, end, lo=k)
        if k == len(piece_ends):
            break  # its last character never came: this token and the rest are lost
        indices.append(i)
        recv_ns.append(result.recv_ns[k])
        texts.append(received[start:end])
        start = end
    chunk_sizes = [len(list(run)) for _, run in itertools.groupby(recv_ns)]
    extra = len(received) > (ends[-1] if ends else 0)
    return Received(indices, recv_ns, texts, chunk_sizes, extra)


def join(index: int, seed: int, result: StreamResult, timeline: Timeline | None) -> RequestRecord:
    """Pair each received token with its server emit stamp and check its text."""
    emit: list[int | None] = []
    got = received_tokens(result, timeline)
    mismatches = int(got.extra)
    for i, text in zip(got.indices, got.texts, strict=True):
        known = timeline is not None and 0 <= i < len(timeline.texts)
        emit.append(timeline.emit_ns[i] if known else None)  # type: ignore[union-attr]
        if not known or timeline.texts[i] != text:  # type: ignore[union-attr]
            mismatches += 1
    error = result.error
    if error is None and timeline is None:
        error = StreamError(ErrorKind.TIMELINE, "the server has no timeline for this stream")
    return RequestRecord(
        transport=result.transport,
        index=index,
        seed=seed,
        stream_id=result.stream_id,
        scheduled_ns=result.scheduled_ns,
        end_ns=result.end_ns,
        token_index=list(got.indices),
        recv_ns=list(got.recv_ns),
        emit_ns=emit,
        token_bytes=[len(t.encode()) for t in got.texts],
        chunk_sizes=list(got.chunk_sizes),
        source_tokens=timeline.tokens if timeline is not None else 0,
        usage_tokens=timeline.usage_tokens if timeline is not None else None,
        planned_delays_ns=None if timeline is None else timeline.planned_delays_ns,
        text_mismatches=mismatches,
        bytes_sent=result.bytes_sent,
        bytes_received=result.bytes_received,
        header_bytes=result.header_bytes,
        requests=result.requests,
        empty_polls=result.empty_polls,
        http_version=result.http_version,
        drops_ns=list(result.drops_ns),
        left_ns=result.left_ns,
        source_ended_ns=None if timeline is None else timeline.ended_ns,
        source_error=None if timeline is None else timeline.error,
        error_kind=None if error is None else error.kind,
        error_message=None if error is None else error.message,
        problems=[*result.problems, *relayed_problems(timeline)],
    )


@dataclass
class Window:
    """A measured window: wall-clock bounds and the CPU both sides spent in it."""

    server: Server
    start_ns: int = 0
    end_ns: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    server_rss_bytes: int = 0
    _cpu0: tuple[float, float] = field(default=(0.0, 0.0))

    def open(self) -> None:
        self._cpu0 = (self.server.cpu_seconds(), time.thread_time())
        self.start_ns = time.perf_counter_ns()

    def close(self) -> None:
        self.end_ns = time.perf_counter_ns()
        # the driver's event-loop thread only: progress drawing runs in another thread
        self.client_cpu_s = time.thread_time() - self._cpu0[1]
        self.server_cpu_s = self.server.cpu_seconds() - self._cpu0[0]
        self.server_rss_bytes = self.server.rss_bytes()


async def records_for(
    server: Server,
    jobs: Sequence[Job],
    results: Sequence[StreamResult],
    sweep_value: SweepValue | None,
    left_stream_patience_s: float = 0.0,
) -> list[RequestRecord]:
    relayed = [r.stream_id for job, r in zip(jobs, results, strict=True) if job.transport != DIRECT]
    patience_s = 0.0 if not any(r.left_ns for r in results) else left_stream_patience_s
    timelines = await fetch_ended_timelines(server.base_url, relayed, patience_s)
    records = []
    for job, result in zip(jobs, results, strict=True):
        timeline = own_timeline(result) if job.transport == DIRECT else None
        record = join(
            job.request.seed, job.request.seed, result, timeline or timelines.get(result.stream_id)
        )
        record.sweep_value = sweep_value
        records.append(record)
    return records


def diagonal(jobs: Sequence[Sequence[Job]], seed: int) -> list[Job]:
    """Interleave per-transport job lists for a live source.

    Transport j runs request k in round k + j, so each transport's request k runs close in
    time to every other's, yet no two neighbours share a request (a model server that reuses
    the previous prompt's cache would otherwise answer whichever transport came second far
    faster). Within a round the order is shuffled (seeded), because a model server's first
    token also depends on which request ran just before: measured on llama.cpp, a fixed
    order moved one transport's TTFT against `direct` by about 10 ms by position alone.
    """
    rng = random.Random(seed)
    order: list[Job] = []
    for r in range(max(len(j) for j in jobs) + len(jobs) - 1):
        round_jobs = [jobs[j][r - j] for j in range(len(jobs)) if 0 <= r - j < len(jobs[j])]
        rng.shuffle(round_jobs)
        if order and len(round_jobs) > 1 and round_jobs[0].request.seed == order[-1].request.seed:
            round_jobs.append(round_jobs.pop(0))  # never the same request twice in a row
        order += round_jobs
    return order


def _label(transport: str, sweep_value: SweepValue | None) -> str:
    return transport if sweep_value is None else f"{transport} @ {sweep_value}"


@dataclass
class Benchmark:
    """One run of a scenario (one sweep point) against one server."""

    scenario: Scenario
    server: Server
    progress: ProgressSink
    sweep_value: SweepValue | None = None
    transports: TransportRegistry = TRANSPORTS
    endpoint: Endpoint | None = None  # where clients connect (a path's); None: the server
    run_tag: str = field(default_factory=lambda: f"r{time.time_ns() % 10**10:09x}")

    def __post_init__(self) -> None:
        self.prompts = load_prompts(self.scenario)
        if self.endpoint is None:
            self.endpoint = Endpoint(self.server.base_url)

    def jobs(self, transport: str) -> list[Job]:
        requests = make_requests(self.scenario, transport, self.run_tag, self.prompts)
        return [Job(transport, r) for r in requests]

    async def warm_up(self, shards: dict[str, list[StreamClient]]) -> None:
        for transport in shards:
            warmups = warmup_requests(self.scenario, transport, self.run_tag, self.prompts)
            jobs = [Job(transport, r) for r in warmups]
            await run_jobs(shards, jobs, self.scenario.concurrency, self.scenario.stream_timeout_s)

    def on_done(self, job: Job, result: StreamResult) -> None:
        self.progress.stream_done(_label(job.transport, self.sweep_value), result.error is not None)

    async def measure(self, shards: dict[str, list[StreamClient]], jobs: list[Job]) -> Window:
        window = Window(self.server)
        for transport in shards:
            total = sum(1 for job in jobs if job.transport == transport)
            self.progress.phase_started(_label(transport, self.sweep_value), total)
        window.open()
        self.results = await run_jobs(
            shards,
            jobs,
            self.scenario.concurrency,
            self.scenario.stream_timeout_s,
            self.on_done,
        )
        window.close()
        for transport in shards:
            self.progress.phase_finished(_label(transport, self.sweep_value))
        return window

    async def phase(self, transports: Sequence[str], jobs: list[Job]) -> list[PhaseRecord]:
        shards = {
            t: open_shards(t, self.scenario, self.endpoint, self.transports) for t in transports
        }
        try:
            await start_browser_clients(shards)  # Chromium and its clock check: before any window
            if self.scenario.warmup:
                await self.warm_up(shards)
            window = await self.measure(shards, jobs)
        finally:
            for pool in shards.values():
                for client in pool:
                    await client.aclose()
        patience_s = self.scenario.faults.resume_grace_s + LEFT_STREAM_SLACK_S
        records = await records_for(self.server, jobs, self.results, self.sweep_value, patience_s)
        shared = len(transports) > 1
        extra: dict[str, Any] = {"order": "interleaved" if shared else "sequential"}
        extra["path"] = self.scenario.path
        extra.update(browser_phase_extra(shards, window))  # {} for Python clients
        faults = self.scenario.faults
        if faults.drop_at_token or faults.leave_at_token:
            extra["resume_grace_s"] = faults.resume_grace_s
        if shared:
            extra["cpu"] = "not split: transports shared one window"
            extra["window_server_cpu_s"] = window.server_cpu_s
            extra["window_client_cpu_s"] = window.client_cpu_s
        return [
            PhaseRecord(
                transport=transport,
                window_start_ns=window.start_ns,
                window_end_ns=window.end_ns,
                server_cpu_s=None if shared else window.server_cpu_s,
                client_cpu_s=None if shared else window.client_cpu_s,
                server_rss_bytes=window.server_rss_bytes,
                sweep_value=self.sweep_value,
                requests=[r for r in records if r.transport == transport],
                extra=dict(extra),
            )
            for transport in transports
        ]

    async def run(self) -> list[PhaseRecord]:
        transports = measured_transports(self.scenario)
        if not self.scenario.interleaved:
            return [
                phase
                for transport in transports
                for phase in await self.phase([transport], self.jobs(transport))
            ]
        jobs = [self.jobs(t) for t in transports]
        return await self.phase(list(transports), diagonal(jobs, self.scenario.seed))


async def run_benchmark(
    scenario: Scenario,
    server: Server,
    progress: ProgressSink | None = None,
    sweep_value: SweepValue | None = None,
    transports: TransportRegistry = TRANSPORTS,
    endpoint: Endpoint | None = None,
) -> list[PhaseRecord]:
    """Run one scenario (one sweep point) against a running server, its clients speaking to
    `endpoint` (the outermost layer of the scenario's path; default: the server itself).
    Raw records out; timelines are fetched from the server directly, out of band."""
    benchmark = Benchmark(
        scenario, server, progress or NoProgress(), sweep_value, transports, endpoint
    )
    return await benchmark.run()
