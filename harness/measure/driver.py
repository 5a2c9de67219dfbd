"""The driver: runs a scenario's streams through each transport and returns raw records.

Measuring only: no statistics here (see `harness.analyse.metrics`). Per transport: open the clients
(one pooled client per shard of at most `SHARD_SIZE` streams), run a few unmeasured warm-up
streams, then run `requests` streams with `concurrency` in flight, read both sides' CPU around
the measured window, and finally fetch the server's emit timelines out of band and join them
to what the clients saw. Request k uses source seed k (and prompt k) on every transport.

The load is a closed loop by default: a worker schedules its next stream the moment its
previous one ends, and that scheduled time starts the stream's timers. A scenario `rate`
makes it an open loop: request k is due at the k-th time of a seeded arrival schedule
(`harness.measure.arrivals`) from the window's start, whatever the server does; it starts
then if fewer than `concurrency` streams are in flight, else it waits for one to end, and
its timers still start at the time it was due, so the wait counts in its TTFT and E2E (a
closed loop, which waits for the server before it schedules, hides that wait: coordinated
omission). Each stream records when it began (`started_ns`).

Sequential order runs the transports one after another, so each has its own window and its
own CPU figures. Interleaved order (the default for live sources, whose timing varies far
more between requests than transports differ) alternates transports request by request in
one shared window; CPU can then not be split between transports and is left out. Against a
live source the run also measures `direct`: the same prompts straight from the upstream.

Several servers (a `ServerGroup`, `server_processes`): shard i speaks to server i % N only
(`PinnedClient`), so every request of a stream stays on one server, and its timeline is
fetched from that server; CPU and RSS are the servers' sums. Several client processes
(`client_processes`): `harness.measure.client_processes` runs the phase's jobs in them and
merges their results, CPU and progress; with one, everything runs here.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

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
from harness.measure import event_loop
from harness.measure.arrivals import arrival_offsets
from harness.measure.browser.client import (
    browser_figures_of,
    open_browser_shards,
    start_browser_clients,
)
from harness.measure.paths import Endpoint
from harness.measure.processes import effective_client_processes
from harness.measure.raw_client import run_raw
from harness.measure.records import (
    PhaseRecord,
    PhaseSetup,
    RawFloor,
    RequestRecord,
    SharedWindow,
    SweepValue,
)
from harness.measure.scenario import Scenario
from harness.measure.server_process import PROJECT_ROOT, ServerGroup
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
    """The server under test, as the driver uses it (`ServerProcess`, or one in-process), or
    several (`ServerGroup`: CPU and RSS summed, a base URL each; see `server_urls`)."""

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


def server_urls(server: Server) -> list[str]:
    """Every server's base URL, in order: a `ServerGroup`'s, or the one server's."""
    return server.base_urls if isinstance(server, ServerGroup) else [server.base_url]


def shard_count(concurrency: int, servers: int = 1) -> int:
    """Shards for `concurrency` streams: at most `SHARD_SIZE` streams each; with several
    servers a multiple of their number, so that each server gets as many (never more
    shards than streams)."""
    count = -(-concurrency // SHARD_SIZE)
    if servers > 1:
        count = min(concurrency, -(-count // servers) * servers)
    return count


class PinnedClient:
    """A shard's client pinned to one server (`server`, its index among the run's servers),
    noting each stream it ran, so that the stream's timeline is fetched from that server."""

    def __init__(self, client: StreamClient, server: int) -> None:
        self.client = client
        self.transport = client.transport
        self.server = server
        self.stream_ids: list[str] = []

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        self.stream_ids.append(request.stream_id or "")
        return await self.client.stream(request, scheduled_ns)

    async def aclose(self) -> None:
        await self.client.aclose()


def stream_servers(shards: Mapping[str, Sequence[StreamClient]]) -> dict[str, int]:
    """The server (index) each stream of pinned shards went to. Streams of unpinned shards
    (one server, or `direct`) are not listed: they went to the first server, if any."""
    return {
        stream_id: client.server
        for pool in shards.values()
        for client in pool
        if isinstance(client, PinnedClient)
        for stream_id in client.stream_ids
    }


def open_shards(
    transport: str,
    scenario: Scenario,
    endpoint: Endpoint | str | Sequence[Endpoint],
    transports: TransportRegistry = TRANSPORTS,
    concurrency: int | None = None,
    server_offset: int = 0,
) -> list[StreamClient]:
    """One pooled client per shard of `concurrency` streams (default: the scenario's). Given
    one endpoint per server (several), shard i speaks to server (i + `server_offset`) % N
    only, as a `PinnedClient`, so that every request of a stream, polls included, goes to
    the server that holds it (client process c passes c: the shards that carry one stream
    more than others then fall on different servers)."""
    endpoints = [endpoint] if isinstance(endpoint, Endpoint | str) else list(endpoint)
    concurrency = scenario.concurrency if concurrency is None else concurrency
    count = shard_count(concurrency, len(endpoints))
    size = -(-concurrency // count)
    settings = client_settings(scenario, endpoints[0], size)
    if transport == DIRECT:  # the upstream itself, through the same asyncio driver
        upstream = direct_settings(settings, scenario.source)
        logic = direct_exchange(scenario.source)
        return [AsyncStreamClient(DIRECT, logic, upstream) for _ in range(count)]
    if scenario.client == "browser":  # pages of one Chromium (harness.measure.browser)
        if len(endpoints) > 1:
            raise ScenarioError("the browser client reads from one server: server_processes = 1")
        return open_browser_shards(transport, scenario, settings, transports)
    logic = transports.get(transport).exchange
    if len(endpoints) == 1:
        return [AsyncStreamClient(transport, logic, settings) for _ in range(count)]
    pinned = [client_settings(scenario, e, size) for e in endpoints]
    servers = [(server_offset + k) % len(endpoints) for k in range(count)]
    return [PinnedClient(AsyncStreamClient(transport, logic, pinned[s]), s) for s in servers]


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
    client: StreamClient,
    request: GenerationRequest,
    scheduled_ns: int,
    timeout_s: float,
    started_ns: int | None = None,
) -> StreamResult:
    """One stream, bounded in time whatever the transport does. It was due at
    `scheduled_ns` and begins at `started_ns` (default: then; later when an open-loop
    arrival waited for a free slot). The client times the stream from its beginning; the
    result is then timed from when it was due, so the wait counts in its TTFT and E2E, and
    `started_ns` keeps the beginning as the client stamped it (the browser client's is when
    its page started the stream: the relay to the page is the harness's, not a wait)."""
    started = scheduled_ns if started_ns is None else started_ns
    try:
        async with asyncio.timeout(timeout_s):
            result = await client.stream(request, started)
    except TimeoutError:
        result = StreamResult(client.transport, request.stream_id or "", started)
        result.error = StreamError(
            ErrorKind.TIMEOUT, f"the stream did not finish within {timeout_s:g} s"
        )
    result.started_ns = result.scheduled_ns
    result.scheduled_ns -= started - scheduled_ns
    return result


@dataclass(frozen=True, slots=True)
class Job:
    transport: str
    request: GenerationRequest
    at_s: float | None = None  # open loop: due this long after the window's start (None: closed)


def with_arrivals(jobs: Sequence[Job], rate: float, arrivals: str, seed: int) -> list[Job]:
    """The jobs, in order, due on an open-loop schedule of `rate` per second (`arrivals`:
    poisson or constant, seeded by `seed`); rate 0: the jobs as they are (closed loop)."""
    if rate <= 0:
        return list(jobs)
    offsets = arrival_offsets(len(jobs), rate, arrivals, seed)
    return [replace(job, at_s=at_s) for job, at_s in zip(jobs, offsets, strict=True)]


async def run_jobs(
    shards: dict[str, list[StreamClient]],
    jobs: Sequence[Job],
    concurrency: int,
    timeout_s: float,
    on_done: Callable[[Job, StreamResult], None] | None = None,
    *,
    start_ns: int | None = None,
    ramp_s: float = 0.0,
) -> list[StreamResult]:
    """Run jobs with at most `concurrency` streams in flight; results in job order.

    A stream holds one of `concurrency` slots while it runs, and slot s always uses shard
    s * len(pool) // concurrency of its transport's pool, so no shard carries more streams
    than its share of the slots (its connection pool's size).

    Closed loop (no job has `at_s`): one worker per slot takes the jobs in order, starting
    its next stream the moment its previous one ends; that moment is the stream's scheduled
    time. Open loop (every job has `at_s`): job k is due at `start_ns + at_s` (`start_ns`:
    the measured window's start, perf_counter_ns; default now; processes that share a
    schedule share it), whatever happens after: see `open_loop`.

    `ramp_s` (closed loop): worker w starts at `start_ns + w * ramp_s / workers` instead of
    all at `start_ns`, as users arrive over time rather than in one instant. With streams of
    equal length (the steady preset) the workers otherwise stay in lockstep: every stream
    ends, and the next one is requested, in the same few milliseconds, wave after wave.
    """
    timed = sum(job.at_s is not None for job in jobs)
    if timed:
        if timed != len(jobs):
            raise ValueError("either every job has an arrival time (at_s) or none has")
        start = time.perf_counter_ns() if start_ns is None else start_ns
        return await open_loop(shards, jobs, concurrency, timeout_s, on_done, start)
    results: list[StreamResult | None] = [None] * len(jobs)  # in job order
    queue = iter(range(len(jobs)))
    workers = min(concurrency, len(jobs))
    start = time.perf_counter_ns() if start_ns is None else start_ns

    async def worker(w: int) -> None:
        if ramp_s > 0:
            begin = start + round(w * ramp_s * 1e9 / workers)
            while (wait_ns := begin - time.perf_counter_ns()) > 0:
                await asyncio.sleep(wait_ns / 1e9)
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
        for w in range(workers):
            group.create_task(worker(w))
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


async def open_loop(
    shards: dict[str, list[StreamClient]],
    jobs: Sequence[Job],
    concurrency: int,
    timeout_s: float,
    on_done: Callable[[Job, StreamResult], None] | None,
    start_ns: int,
) -> list[StreamResult]:
    """Jobs released at their arrival times: one dispatcher takes them in order of `at_s`,
    sleeps until each is due, waits for a free slot if all `concurrency` are taken (the
    arrivals behind it wait too, in order), and starts the stream in a task of its own,
    which gives the slot back when the stream ends. A stream's scheduled time is when it was
    due, whatever it waited, so the wait counts in its TTFT and E2E; its `started_ns` is when
    it got its slot (the dispatcher's own lateness, a millisecond or so on a busy event loop,
    counts as waiting too). Cost: one sleeping timer, and one task per stream in flight."""
    results: list[StreamResult | None] = [None] * len(jobs)  # in job order
    free: asyncio.LifoQueue[int] = asyncio.LifoQueue()  # last freed first: its connections are warm
    for slot in reversed(range(concurrency)):
        free.put_nowait(slot)

    async def stream(k: int, slot: int, scheduled: int) -> None:
        try:
            job = jobs[k]
            pool = shards[job.transport]
            client = pool[slot * len(pool) // concurrency]
            result = await run_stream(
                client, job.request, scheduled, timeout_s, time.perf_counter_ns()
            )
            results[k] = result
            if on_done is not None:
                on_done(job, result)
        finally:
            free.put_nowait(slot)

    async with asyncio.TaskGroup() as group:
        for k in sorted(range(len(jobs)), key=lambda k: jobs[k].at_s or 0.0):
            scheduled = start_ns + round((jobs[k].at_s or 0.0) * 1e9)
            # a timer may fire a little early (the loop's clock resolution): sleep again
            while (wait_ns := scheduled - time.perf_counter_ns()) > 0:
                await asyncio.sleep(wait_ns / 1e9)
            slot = await free.get()
            group.create_task(stream(k, slot, scheduled))
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
        started_ns=result.started_ns,
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
    routes: Mapping[str, int] | None = None,
) -> list[RequestRecord]:
    """The records of a phase's streams, each joined with its timeline, fetched from the
    server the stream went to (`routes`: stream id -> index in `server_urls(server)`; a
    stream not in it went to the first)."""
    urls = server_urls(server)
    relayed: dict[int, list[str]] = {}
    for job, r in zip(jobs, results, strict=True):
        if job.transport != DIRECT:
            relayed.setdefault((routes or {}).get(r.stream_id, 0), []).append(r.stream_id)
    patience_s = 0.0 if not any(r.left_ns for r in results) else left_stream_patience_s
    timelines: dict[str, Timeline] = {}
    for found in await asyncio.gather(
        *(fetch_ended_timelines(urls[k], ids, patience_s) for k, ids in relayed.items())
    ):
        timelines |= found
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
    """One run of a scenario (one sweep point) against one server (or a `ServerGroup`)."""

    scenario: Scenario
    server: Server
    progress: ProgressSink
    sweep_value: SweepValue | None = None
    transports: TransportRegistry = TRANSPORTS
    endpoint: Endpoint | None = None  # where clients connect (a path's); None: the server
    run_tag: str = field(default_factory=lambda: f"r{time.time_ns() % 10**10:09x}")

    def __post_init__(self) -> None:
        self.prompts = load_prompts(self.scenario)
        urls = server_urls(self.server)
        if self.endpoint is not None and len(urls) > 1:
            raise ScenarioError(
                f"a path's endpoint fronts one server, not {len(urls)}: use "
                "server_processes = 1 with a path"
            )
        if self.endpoint is None:
            self.endpoint = Endpoint(self.server.base_url)
        # one per server, in order: where shard i of the run connects (server i % N)
        self.endpoints = [self.endpoint] if len(urls) == 1 else [Endpoint(u) for u in urls]
        self.routes: dict[str, int] = {}  # stream id -> server index, of the last phase
        self.cpu_per_process: list[float] | None = None  # the last phase's client processes

    def jobs(self, transport: str) -> list[Job]:
        """Request k of `transport`; with a rate, due at the k-th time of the scenario's
        arrival schedule (the same on every transport)."""
        requests = make_requests(self.scenario, transport, self.run_tag, self.prompts)
        s = self.scenario
        return with_arrivals([Job(transport, r) for r in requests], s.rate, s.arrivals, s.seed)

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
        with event_loop.no_gc_pauses():
            window.open()
            self.results = await self._run_measured(shards, jobs, window)
            window.close()
        for transport in shards:
            self.progress.phase_finished(_label(transport, self.sweep_value))
        return window

    async def _run_measured(
        self, shards: dict[str, list[StreamClient]], jobs: list[Job], window: Window
    ) -> list[StreamResult]:
        return await run_jobs(
            shards,
            jobs,
            self.scenario.concurrency,
            self.scenario.stream_timeout_s,
            self.on_done,
            start_ns=window.start_ns,  # an open loop's arrival times count from here
            ramp_s=self.scenario.ramp_s,
        )

    async def measure_in_processes(
        self, transports: Sequence[str], jobs: list[Job], processes: int
    ) -> Window:
        """`measure`, its jobs spread over `processes` client processes, each with its own
        clients and warm-up (`harness.measure.client_processes`); sets `results`, `routes`
        and `cpu_per_process`."""
        from harness.measure.client_processes import run_in_processes  # it imports this module

        labels = {t: _label(t, self.sweep_value) for t in transports}
        for transport in transports:
            total = sum(1 for job in jobs if job.transport == transport)
            self.progress.phase_started(labels[transport], total)
        run = await asyncio.to_thread(run_in_processes, self, transports, jobs, processes, labels)
        for transport in transports:
            self.progress.phase_finished(labels[transport])
        self.results, self.routes = run.results, run.routes
        self.cpu_per_process = run.cpu_s_per_process
        return run.window

    async def phase(self, transports: Sequence[str], jobs: list[Job]) -> list[PhaseRecord]:
        s = self.scenario
        processes = effective_client_processes(
            s.client_processes, s.concurrency, len(jobs), s.client
        )
        shards: dict[str, list[StreamClient]] = {}
        self.cpu_per_process = None
        if processes > 1:
            window = await self.measure_in_processes(transports, jobs, processes)
        else:
            shards = {
                t: open_shards(t, self.scenario, self.endpoints, self.transports)
                for t in transports
            }
            try:
                await start_browser_clients(shards)  # Chromium, its clock check: before any window
                if self.scenario.warmup:
                    await self.warm_up(shards)
                window = await self.measure(shards, jobs)
            finally:
                for pool in shards.values():
                    for client in pool:
                        await client.aclose()
            self.routes = stream_servers(shards)
        patience_s = self.scenario.faults.resume_grace_s + LEFT_STREAM_SLACK_S
        records = await records_for(
            self.server, jobs, self.results, self.sweep_value, patience_s, self.routes
        )
        shared = len(transports) > 1
        raw = None
        if self.scenario.raw_client and not shared:
            raw = await self.raw_floor(transports[0], jobs)
        browser = browser_figures_of(shards, window)  # None for Python clients
        setup = self.setup(transports, processes, records, window, raw)
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
                setup=setup,
                browser=browser,
            )
            for transport in transports
        ]

    def setup(
        self,
        transports: Sequence[str],
        processes: int,
        records: Sequence[RequestRecord],
        window: Window,
        raw_client: RawFloor | None,
    ) -> PhaseSetup:
        """How the phase ran: order, path, processes (with the measured streams each server
        served), load (`open`, with the `rate` per transport and the `arrivals`, or
        `closed`), a fault plan's resume grace, the raw client's floor, a shared window's
        CPU."""
        s = self.scenario
        shared = len(transports) > 1
        servers = len(self.endpoints)
        served = [self.routes.get(r.stream_id, 0) for r in records if r.transport != DIRECT]
        faults = s.faults
        return PhaseSetup(
            order="interleaved" if shared else "sequential",
            path=s.path,
            server_processes=servers,
            client_processes=processes,
            load="open" if s.rate > 0 else "closed",
            rate=s.rate if s.rate > 0 else None,
            arrivals=s.arrivals if s.rate > 0 else None,
            resume_grace_s=faults.resume_grace_s
            if faults.drop_at_token or faults.leave_at_token
            else None,
            streams_per_server=[served.count(k) for k in range(servers)] if servers > 1 else None,
            client_cpu_s_per_process=self.cpu_per_process,
            raw_client=raw_client,
            shared_window=SharedWindow(window.server_cpu_s, window.client_cpu_s)
            if shared
            else None,
        )

    async def raw_floor(self, transport: str, jobs: Sequence[Job]) -> RawFloor:
        """The same streams (same seeds, ids of their own) through the raw client, right
        after the phase, against the same servers: the floor for the client's CPU."""
        requests = [replace(job.request, stream_id=f"{job.request.stream_id}-raw") for job in jobs]
        urls = [endpoint.base_url for endpoint in self.endpoints]
        s = self.scenario
        run = await run_raw(transport, urls, requests, s.concurrency, s.ramp_s)
        return RawFloor(streams=run.streams, tokens=run.tokens, cpu_s=run.cpu_s, wall_s=run.wall_s)

    async def run(self) -> list[PhaseRecord]:
        transports = measured_transports(self.scenario)
        if not self.scenario.interleaved:
            return [
                phase
                for transport in transports
                for phase in await self.phase([transport], self.jobs(transport))
            ]
        return await self.phase(list(transports), self.interleaved_jobs(transports))

    def interleaved_jobs(self, transports: Sequence[str]) -> list[Job]:
        """Every transport's jobs in `diagonal` order; with a rate, that order arrives on one
        schedule at `rate` times the transports per second (each transport's share: `rate`)."""
        s = self.scenario
        order = diagonal([self.jobs(t) for t in transports], s.seed)
        return with_arrivals(order, s.rate * len(transports), s.arrivals, s.seed)


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
