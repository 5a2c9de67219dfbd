"""Open-loop load (`rate`): streams are due on a schedule whatever the server does, wait for
a free slot when all are busy, and that wait counts in their TTFT and E2E (no coordinated
omission). The scheduler on stand-in clients (no sockets), then through a real server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest
from support import NoServer, serve

from clients.interface import StreamClient, StreamResult, Turn
from harness.analyse.metrics import e2e_ms, first_token_ns, queue_wait_ms, summarize, ttft_ms
from harness.analyse.results import load_run
from harness.measure.driver import Benchmark, run_benchmark
from harness.measure.records import RequestRecord
from harness.measure.run.context import NoProgress
from harness.measure.run.jobs import Job
from harness.measure.run.scheduling import run_jobs
from harness.measure.scenario import Scenario
from harness.measure.server_process import ServerProcess
from servers.sources.spec import SourceSpec
from wire.messages import GenerationRequest

NS = 1_000_000_000


@dataclass
class Flight:
    """Streams in flight, in all and per shard, and the most there ever were."""

    now: Counter[int] = field(default_factory=Counter)
    most: int = 0
    most_per_shard: Counter[int] = field(default_factory=Counter)

    def enter(self, shard: int) -> None:
        self.now[shard] += 1
        self.most = max(self.most, self.now.total())
        self.most_per_shard[shard] = max(self.most_per_shard[shard], self.now[shard])

    def leave(self, shard: int) -> None:
        self.now[shard] -= 1


@dataclass
class SleepyClient:
    """A stand-in transport client: each stream takes `duration_s` and ends with no token."""

    transport: str
    shard: int
    duration_s: float
    flight: Flight

    async def stream(
        self, request: GenerationRequest, scheduled_ns: int, turn: Turn | None = None
    ) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        self.flight.enter(self.shard)
        try:
            await asyncio.sleep(self.duration_s)
        finally:
            self.flight.leave(self.shard)
        result.end_ns = time.perf_counter_ns()
        return result

    async def aclose(self) -> None: ...


def sleepy_shards(count: int, duration_s: float) -> tuple[dict[str, list[StreamClient]], Flight]:
    flight = Flight()
    pool: list[StreamClient] = [SleepyClient("sse", s, duration_s, flight) for s in range(count)]
    return {"sse": pool}, flight


def timed_jobs(offsets: list[float]) -> list[Job]:
    return [
        Job("sse", GenerationRequest(seed=k, stream_id=f"s{k}"), at) for k, at in enumerate(offsets)
    ]


async def test_streams_in_flight_stay_capped_and_each_slot_keeps_its_shard() -> None:
    shards, flight = sleepy_shards(2, duration_s=0.05)
    jobs = timed_jobs([0.0] * 20)  # a burst: 20 due at once, 4 slots
    results = await run_jobs(shards, jobs, concurrency=4, timeout_s=10)
    assert [r.stream_id for r in results] == [f"s{k}" for k in range(20)]  # in job order
    assert flight.most == 4  # the cap holds, and is reached
    assert max(flight.most_per_shard.values()) == 2  # slots 0-1 on shard 0, 2-3 on shard 1
    started = sorted(r.started_ns or 0 for r in results)
    assert all((r.started_ns or 0) >= r.scheduled_ns for r in results)
    assert started[4] > started[3]  # the fifth waited for a slot
    assert len({r.scheduled_ns for r in results}) == 1  # due together, whatever they waited


async def test_the_schedule_counts_from_the_given_start() -> None:
    """Processes sharing one schedule share `start_ns`: arrival times count from it, not
    from when run_jobs is called."""
    shards, _ = sleepy_shards(1, duration_s=0.0)
    start = time.perf_counter_ns() + NS // 5  # 0.2 s from now
    results = await run_jobs(shards, timed_jobs([0.0, 0.1]), 2, 10, start_ns=start)
    assert [r.scheduled_ns for r in results] == [start, start + NS // 10]
    assert all(r.started_ns >= r.scheduled_ns for r in results)  # type: ignore[operator]


async def test_a_thousand_streams_in_flight_are_cheap() -> None:
    shards, flight = sleepy_shards(30, duration_s=0.5)
    jobs = timed_jobs([k / 5000 for k in range(1500)])  # 1,500 arrivals in 0.3 s
    began = time.perf_counter()
    results = await run_jobs(shards, jobs, concurrency=1500, timeout_s=10)
    assert time.perf_counter() - began < 5  # about 0.8 s: one timer, no polling
    assert flight.most >= 1000
    assert all(r.started_ns >= r.scheduled_ns for r in results)  # type: ignore[operator]


async def test_jobs_are_all_timed_or_none() -> None:
    shards, _ = sleepy_shards(1, duration_s=0.0)
    jobs = [*timed_jobs([0.0]), Job("sse", GenerationRequest(seed=1, stream_id="s1"))]
    with pytest.raises(ValueError, match="every job has an arrival time"):
        await run_jobs(shards, jobs, 1, 10)


def test_benchmark_jobs_carry_the_scenarios_schedule() -> None:
    closed = Benchmark(Scenario(transports=("sse",), requests=4), NoServer(), NoProgress())
    assert [job.at_s for job in closed.jobs("sse")] == [None] * 4
    scenario = Scenario(transports=("sse",), requests=4, rate=8.0, arrivals="constant")
    timed = Benchmark(scenario, NoServer(), NoProgress())
    assert [job.at_s for job in timed.jobs("sse")] == [0.0, 0.125, 0.25, 0.375]
    assert [job.at_s for job in timed.jobs("websocket")] == [0.0, 0.125, 0.25, 0.375]
    both = timed.interleaved_jobs(["sse", "websocket"])  # one window: 8 per second each
    assert [job.at_s for job in both] == [k / 16 for k in range(8)]
    assert Counter(job.transport for job in both) == {"sse": 4, "websocket": 4}


def test_results_from_before_open_loop_load_without_a_queue_wait() -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "results-v1"
    run = load_run(fixture)
    for phase in run.phases.values():
        assert all(r.started_ns is None for r in phase.requests)
        assert summarize(phase).queue_wait_ms.n == 0


# --- through a real server -----------------------------------------------------------------

# each stream lasts about 0.3 s: 0.1 s to the first token, then 20 tokens at 100 per second
SLOW = SourceSpec(preset="chat", ttft_ms=100, tokens_per_s=100, tokens_per_response=20)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from serve(tmp_path_factory, "slow", SLOW)


def by_index(records: list[RequestRecord]) -> list[RequestRecord]:
    return sorted(records, key=lambda r: r.index)


async def test_rate_runs_without_coordinated_omission(slow_server: ServerProcess) -> None:
    """--rate 20 with one slot on streams of ~0.3 s: arrivals come far faster than one
    slot serves them. Each stream is still due on the constant schedule, waits for the slot,
    and its TTFT and E2E count that wait."""
    rate = 20.0
    scenario = Scenario(
        name="open",
        transports=("sse",),
        requests=6,
        concurrency=1,
        warmup=0,
        rate=rate,
        arrivals="constant",
        source=SLOW,
    )
    (phase,) = await run_benchmark(scenario, slow_server)
    assert phase.setup is not None and phase.setup.load == "open"
    assert (phase.setup.rate, phase.setup.arrivals) == (rate, "constant")
    records = by_index(phase.requests)
    assert [r.error_kind for r in records] == [None] * 6
    scheduled = [r.scheduled_ns for r in records]
    assert scheduled[0] == phase.window_start_ns  # the schedule counts from the window's start
    assert [b - a for a, b in pairwise(scheduled)] == [NS // 20] * 5  # exactly 1 / rate apart
    for record in records:
        assert record.started_ns is not None and record.started_ns >= record.scheduled_ns
    for before, after in pairwise(records):  # one slot: a stream begins once the last ended
        assert after.started_ns >= before.end_ns  # type: ignore[operator]
    waits = [queue_wait_ms(r) for r in records]
    assert all(b > a for a, b in pairwise(waits))  # type: ignore[operator]  # the queue grows
    for record, wait in zip(records, waits, strict=True):
        first = first_token_ns(record)
        started = record.started_ns
        assert first is not None and wait is not None and record.end_ns is not None
        assert started is not None
        from_start_ms = (first - started) / 1e6
        assert ttft_ms(record) == pytest.approx(wait + from_start_ms, abs=1e-6)
        ttft = ttft_ms(record)
        assert ttft is not None and ttft >= wait + from_start_ms - 1e-6
        assert e2e_ms(record) == pytest.approx(wait + (record.end_ns - started) / 1e6)
    summary = summarize(phase)
    assert summary.queue_wait_ms.n == 6
    assert summary.ttft_ms.max > summary.queue_wait_ms.max  # type: ignore[operator]


async def test_closed_loop_streams_never_queue(slow_server: ServerProcess) -> None:
    """The control: one worker starts each stream when the last ends, so nothing waits."""
    scenario = Scenario(
        name="closed", transports=("sse",), requests=2, concurrency=1, warmup=0, source=SLOW
    )
    (phase,) = await run_benchmark(scenario, slow_server)
    assert phase.setup is not None and phase.setup.load == "closed"
    assert phase.setup.rate is None and phase.setup.arrivals is None
    records = by_index(phase.requests)
    assert [r.error_kind for r in records] == [None] * 2
    assert [r.started_ns for r in records] == [r.scheduled_ns for r in records]
    assert [queue_wait_ms(r) for r in records] == [0.0] * 2
    assert summarize(phase).queue_wait_ms.max == 0.0


async def test_a_ramp_starts_the_closed_loops_workers_evenly_over_it() -> None:
    """Known answer: with a 0.4 s ramp, worker w of 4 starts its first stream no earlier
    than 0.1 s * w after the start; without one, all start at once."""
    shards, _ = sleepy_shards(1, duration_s=0.5)
    jobs = [Job("sse", GenerationRequest(seed=k, stream_id=f"r{k}")) for k in range(4)]
    start = time.perf_counter_ns()
    results = await run_jobs(shards, jobs, concurrency=4, timeout_s=10, start_ns=start, ramp_s=0.4)
    firsts = sorted((r.scheduled_ns - start) / NS for r in results)
    for w, first in enumerate(firsts):
        assert first >= 0.1 * w - 0.001
    assert firsts[-1] < 0.5  # every worker began within the ramp (plus scheduling slack)
    start = time.perf_counter_ns()
    results = await run_jobs(shards, jobs, concurrency=4, timeout_s=10, start_ns=start)
    assert max(r.scheduled_ns - start for r in results) / NS < 0.05
