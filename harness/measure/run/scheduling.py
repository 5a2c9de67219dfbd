"""Scheduling a phase's jobs on its clients: a closed loop by default, an open loop with a
scenario `rate`; each stream bounded in time whatever its transport does.

The load is a closed loop by default: a worker schedules its next stream the moment its
previous one ends, and that scheduled time starts the stream's timers. A scenario `rate`
makes it an open loop: request k is due at the k-th time of a seeded arrival schedule
(`harness.measure.arrivals`) from the window's start, whatever the server does; it starts
then if fewer than `concurrency` streams are in flight, else it waits for one to end, and
its timers still start at the time it was due, so the wait counts in its TTFT and E2E (a
closed loop, which waits for the server before it schedules, hides that wait: coordinated
omission). Each stream records when it began (`started_ns`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

from clients.interface import StreamClient, StreamError, StreamResult, Turn
from errors import ErrorKind
from harness.measure.run.jobs import Job, job_units
from wire.messages import GenerationRequest

Shards = Mapping[str, Sequence[StreamClient]]  # transport -> one client per shard
OnDone = Callable[[Job, StreamResult], None]  # called as each stream ends


async def run_stream(
    client: StreamClient,
    request: GenerationRequest,
    scheduled_ns: int,
    timeout_s: float,
    started_ns: int | None = None,
    turn: Turn | None = None,
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
            result = await client.stream(request, started, turn)
    except TimeoutError:
        result = StreamResult(client.transport, request.stream_id or "", started, turn=turn)
        result.error = StreamError(
            ErrorKind.TIMEOUT, f"the stream did not finish within {timeout_s:g} s"
        )
    result.started_ns = result.scheduled_ns
    result.scheduled_ns -= started - scheduled_ns
    return result


def not_run(job: Job, failed: StreamResult) -> StreamResult:
    """A conversation's turn after one that failed: never sent, recorded as not run."""
    now = time.perf_counter_ns()
    result = StreamResult(job.transport, job.request.stream_id or "", now, turn=job.turn)
    result.started_ns = now
    result.error = StreamError(
        ErrorKind.NOT_RUN, f"not run: turn {failed.stream_id} of its conversation failed"
    )
    return result


def _in_job_order(results: Sequence[StreamResult | None]) -> list[StreamResult]:
    done = [r for r in results if r is not None]
    if len(done) != len(results):
        raise AssertionError("a job ended without a result")
    return done


async def run_jobs(
    shards: Shards,
    jobs: Sequence[Job],
    concurrency: int,
    timeout_s: float,
    on_done: OnDone | None = None,
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
    units = job_units(jobs)  # a conversation's turns: one unit, run in order by one worker
    queue = iter(units)
    workers = min(concurrency, len(units))
    start = time.perf_counter_ns() if start_ns is None else start_ns

    async def worker(w: int) -> None:
        if ramp_s > 0:
            begin = start + round(w * ramp_s * 1e9 / workers)
            while (wait_ns := begin - time.perf_counter_ns()) > 0:
                await asyncio.sleep(wait_ns / 1e9)
        for unit in queue:
            failed: StreamResult | None = None
            for k in unit:
                job = jobs[k]
                pool = shards[job.transport]
                client = pool[w * len(pool) // concurrency]
                if failed is not None:
                    result = not_run(job, failed)
                else:
                    if job.pause_s:  # the tool runs: the turn's timers start when it is done
                        await asyncio.sleep(job.pause_s)
                    scheduled = time.perf_counter_ns()
                    result = await run_stream(
                        client, job.request, scheduled, timeout_s, turn=job.turn
                    )
                    if result.error is not None:
                        failed = result
                results[k] = result
                if on_done is not None:
                    on_done(job, result)

    async with asyncio.TaskGroup() as group:
        for w in range(workers):
            group.create_task(worker(w))
    return _in_job_order(results)


async def open_loop(
    shards: Shards,
    jobs: Sequence[Job],
    concurrency: int,
    timeout_s: float,
    on_done: OnDone | None,
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
    return _in_job_order(results)
