"""The driver's streams in M processes (a scenario's `client_processes`), merged into one
result set exactly as if one process had run them.

One process of clients tops out near one core; past that the harness measures itself. So
a phase with M > 1 runs its jobs in M child processes (multiprocessing's `spawn` context:
fresh interpreters, nothing inherited but the environment), which `Benchmark.phase` starts
and stops for each phase; M == 1 stays in the driver's own process.

1. Job k goes to child k % M, with its share of the concurrency (`processes.split`: the
   shares differ by at most one and sum to `concurrency`). Each child opens its own clients
   (`run.shards.open_shards`: no connection pool crosses a process; child c's shard i
   speaks to server (c + i) % N), runs its own warm-up (`warmup` streams per transport, ids
   of its own), and reports `ready`.
2. When every child is ready the parent reads the servers' CPU and picks the measured
   window's start `start_ns`, `START_AHEAD_S` ahead (`perf_counter_ns`, CLOCK_MONOTONIC: one
   clock for every process on the host), and sends it to each child. A child waits for it,
   reads its own CPU (`time.process_time`: user + system, the whole process), runs its jobs
   (`run.scheduling.run_jobs`: its closed loop, or the open loop's arrivals counted from
   the shared `start_ns`), and reads its CPU again: only the window is counted.
3. Each finished stream is reported on one events queue, (label, failed), so the parent's
   progress bars move; then the child sends its `ChildOutcome`: its results in its job
   order, the server each stream went to, its CPU and when its window ended.
4. The parent puts the results back in job order, takes the sum of the children's CPU as
   the phase's client CPU (each child's in `Measured.client_cpu_s_per_process`, which the
   driver records in `PhaseSetup`), the latest end as the window's end, and reads the
   servers' CPU again. Timelines are then fetched by the driver as always, each from the
   server its stream went to.

A child that fails sends its traceback and the parent raises `ClientProcessError` with it;
one that dies without a word is found by its exit status. Whatever happens, the parent
joins every child it started, and terminates (by its PID) one that does not exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from clients.interface import StreamClient, StreamResult
from errors import ClientProcessError
from harness.measure import event_loop
from harness.measure.paths import Endpoint
from harness.measure.processes import split
from harness.measure.run.context import ProgressSink, RunContext
from harness.measure.run.jobs import Job, job_units
from harness.measure.run.python_clients import stream_servers
from harness.measure.run.scheduling import run_jobs
from harness.measure.run.shards import open_shards
from harness.measure.run.window import Measured, Server, Window
from harness.measure.scenario import Scenario
from transports import TRANSPORTS, TransportRegistry

START_AHEAD_S = 0.1  # from the parent's go to the window's start: every child is waiting by then
POLL_S = 0.5  # how often the parent looks at its children while it waits for their news
JOIN_S = 10.0  # how long a child may take to exit once it has reported


@dataclass(frozen=True)
class ChildPlan:
    """What one client process runs: its jobs (k % M == index), its concurrency, and its
    clients' endpoints (one per server; its shard i speaks to server (index + i) % N)."""

    index: int
    scenario: Scenario
    endpoints: tuple[Endpoint, ...]
    registry: TransportRegistry | None  # None: the default registry (not sent over)
    transports: tuple[str, ...]
    labels: dict[str, str]  # transport -> its progress label
    concurrency: int
    warmups: tuple[tuple[Job, ...], ...]  # per transport, one after another
    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class ChildOutcome:
    index: int
    results: list[StreamResult]  # in the order of the plan's jobs
    routes: dict[str, int]  # stream id -> server index (pinned shards only)
    cpu_s: float  # the process's user + system CPU in the window
    end_ns: int  # when its last stream ended


def shares_of_jobs(jobs: Sequence[Job], processes: int) -> list[list[int]]:
    """The jobs (indices) each process runs: unit u of `job_units` to process u % processes
    (without conversations, job k to process k % processes)."""
    units = job_units(jobs)
    return [[k for unit in units[p::processes] for k in unit] for p in range(processes)]


def plans(
    context: RunContext, transports: Sequence[str], jobs: Sequence[Job], processes: int
) -> list[ChildPlan]:
    """Job k to process k % `processes` (a conversation's turns: all to the process of its
    first turn, `shares_of_jobs`); the concurrency split as evenly as it goes."""
    scenario = context.scenario
    shares = split(scenario.concurrency, processes)
    registry = None if context.registry is TRANSPORTS else context.registry
    labels = {t: context.label(t) for t in transports}
    found: list[ChildPlan] = []
    for index, concurrency in enumerate(shares):
        tag = f"{context.run_tag}-p{index}"  # warm-up stream ids of its own
        warmups = tuple(tuple(w) for w in context.warmups(transports, tag))
        found.append(
            ChildPlan(
                index=index,
                scenario=scenario,
                endpoints=context.endpoints,
                registry=registry,
                transports=tuple(transports),
                labels=labels,
                concurrency=concurrency,
                warmups=warmups if scenario.warmup else (),
                jobs=tuple(jobs[k] for k in shares_of_jobs(jobs, processes)[index]),
            )
        )
    return found


def run_in_processes(
    context: RunContext,
    server: Server,
    progress: ProgressSink,
    transports: Sequence[str],
    jobs: Sequence[Job],
    processes: int,
) -> Measured:
    """One phase's jobs in `processes` client processes (blocking: the driver runs it in a
    thread); progress goes to `progress` as the children report it."""
    children = plans(context, transports, jobs, processes)
    spawn = multiprocessing.get_context("spawn")
    events: Any = spawn.Queue()
    pipes = [spawn.Pipe(duplex=False) for _ in children]
    workers = [
        spawn.Process(
            target=child_main,
            args=(plan, events, receive),
            name=f"tokenwire-client-{plan.index}",
            daemon=True,
        )
        for plan, (receive, _) in zip(children, pipes, strict=True)
    ]
    try:
        for worker in workers:
            worker.start()
        for receive, _ in pipes:
            receive.close()  # the child holds its own copy
        news = Inbox(events, workers, progress)
        news.wait("ready")
        cpu0 = server.cpu_seconds()
        start_ns = time.perf_counter_ns() + round(START_AHEAD_S * 1e9)
        for _, send in pipes:
            send.send(start_ns)
        outcomes = news.wait("outcome")
        server_cpu_s = server.cpu_seconds() - cpu0
    finally:
        for _, send in pipes:
            send.close()  # a child still waiting for its start sees the end and stops
        for worker in workers:
            if worker.pid is not None:
                worker.join(JOIN_S)
                if worker.is_alive():
                    worker.terminate()
                    worker.join(JOIN_S)
        events.close()
        events.cancel_join_thread()
    ordered: list[ChildOutcome] = sorted(outcomes.values(), key=lambda o: o.index)
    results: list[StreamResult] = []
    routes: dict[str, int] = {}
    found: dict[int, StreamResult] = {}
    for outcome, share in zip(ordered, shares_of_jobs(jobs, processes), strict=True):
        found.update(zip(share, outcome.results, strict=True))
    results.extend(found[k] for k in range(len(jobs)))
    for outcome in ordered:
        routes |= outcome.routes
    window = Window(
        server,
        start_ns=start_ns,
        end_ns=max(o.end_ns for o in ordered),
        server_cpu_s=server_cpu_s,
        client_cpu_s=sum(o.cpu_s for o in ordered),
        server_rss_bytes=server.rss_bytes(),
    )
    return Measured(window, results, routes, [o.cpu_s for o in ordered])


class Inbox:
    """The parent's side of the events queue: progress to the sink, news collected, children
    watched (one that fails or dies raises `ClientProcessError`)."""

    def __init__(
        self,
        events: Any,
        workers: Sequence[multiprocessing.process.BaseProcess],
        progress: ProgressSink,
    ) -> None:
        self.events = events
        self.workers = workers
        self.progress = progress

    def wait(self, kind: str) -> dict[int, Any]:
        """Every child's news of `kind` (`ready`, `outcome`), relaying progress meanwhile."""
        news: dict[int, Any] = {}
        while len(news) < len(self.workers):
            # a child that had exited before this read has nothing more to come
            exited = [k for k, w in enumerate(self.workers) if k not in news and not w.is_alive()]
            try:
                what, index, body = self.events.get(timeout=POLL_S)
            except queue.Empty:
                if exited:
                    worker = self.workers[exited[0]]
                    raise ClientProcessError(
                        f"client process {exited[0]} (pid {worker.pid}) exited with status "
                        f"{worker.exitcode} before it reported"
                    ) from None
                continue
            if what == "done":
                self.progress.stream_done(*body)
            elif what == "error":
                raise ClientProcessError(f"client process {index} failed:\n{body}")
            elif what == kind:
                news[index] = body
        return news


def child_main(plan: ChildPlan, events: Any, start: Connection) -> None:
    """A client process: its plan on its own event loop; every outcome reported on `events`."""
    try:
        outcome = event_loop.run(run_child(plan, events, start))
        if outcome is not None:
            events.put(("outcome", plan.index, outcome))
    except BaseException:  # reported, so that the parent never waits for it in vain
        events.put(("error", plan.index, traceback.format_exc()))
    finally:
        start.close()
        events.close()
        events.join_thread()  # everything put is in the pipe before the process ends


async def run_child(plan: ChildPlan, events: Any, start: Connection) -> ChildOutcome | None:
    """Clients, warm-up, `ready`; then the window from the parent's `start_ns`. None when
    the parent gave up before the start."""
    scenario = plan.scenario
    registry = plan.registry or TRANSPORTS
    timeout_s = scenario.stream_timeout_s
    shards: dict[str, list[StreamClient]] = {
        t: open_shards(t, scenario, plan.endpoints, registry, plan.concurrency, plan.index)
        for t in plan.transports
    }
    try:
        for warmups in plan.warmups:
            await run_jobs(shards, warmups, plan.concurrency, timeout_s)
        events.put(("ready", plan.index, None))
        try:
            start_ns: int = await asyncio.to_thread(start.recv)
        except EOFError:
            return None
        while (wait_ns := start_ns - time.perf_counter_ns()) > 0:
            await asyncio.sleep(wait_ns / 1e9)

        def on_done(job: Job, result: StreamResult) -> None:
            events.put(("done", plan.index, (plan.labels[job.transport], result.error is not None)))

        cpu0 = time.process_time()
        with event_loop.no_gc_pauses():
            results = await run_jobs(
                shards,
                plan.jobs,
                plan.concurrency,
                timeout_s,
                on_done,
                start_ns=start_ns,
                ramp_s=scenario.ramp_s,
            )
        cpu_s = time.process_time() - cpu0
        end_ns = time.perf_counter_ns()
    finally:
        for pool in shards.values():
            for client in pool:
                with contextlib.suppress(Exception):
                    await client.aclose()
    measured = {r.stream_id for r in results}
    routes = {k: v for k, v in stream_servers(shards).items() if k in measured}
    return ChildOutcome(plan.index, results, routes, cpu_s, end_ns)
