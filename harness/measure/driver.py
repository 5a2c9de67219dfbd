"""The driver: runs a scenario's streams through each transport and returns raw records.

Measuring only: no statistics here (see `harness.analyse.metrics`). Per transport: open the
clients (`run.shards`: one per shard, by the scenario's client kind), start them (the
browser's Chromium and clock check), run a few unmeasured warm-up streams, then run
`requests` streams with `concurrency` in flight (`run.scheduling`: a closed loop, or an
open loop with a `rate`), read both sides' CPU around the measured window (`run.window`),
and finally fetch the server's emit timelines out of band (`run.timelines`) and join them
to what the clients saw (`run.joining`) into the phase's records (`run.bookkeeping`).
Request k uses source seed k (and prompt k) on every transport (`run.jobs`).

Sequential order runs the transports one after another, so each has its own window and its
own CPU figures. Interleaved order (the default for live sources, whose timing varies far
more between requests than transports differ) alternates transports request by request in
one shared window; CPU can then not be split between transports and is left out. Against a
live source the run also measures `direct`: the same prompts straight from the upstream.

Several servers (a `ServerGroup`, `server_processes`): shard i speaks to server i % N only
(`PinnedClient`), so every request of a stream stays on one server, and its timeline is
fetched from that server; CPU and RSS are the servers' sums. Several client processes
(`client_processes`): `harness.measure.client_processes` runs the phase's jobs in them and
merges their results, CPU and progress; with one, everything runs here, except in a
repeated run (`repeat`), whose every phase runs its clients in a process of its own, as
each round has a server of its own (`harness.analyse.replications`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from clients.interface import StreamResult
from errors import ScenarioError
from harness.measure import event_loop
from harness.measure.client_processes import run_in_processes
from harness.measure.paths import Endpoint
from harness.measure.processes import effective_client_processes
from harness.measure.raw_client import run_raw
from harness.measure.records import PhaseRecord, RawFloor, SweepValue
from harness.measure.run.bookkeeping import phase_records, phase_setup
from harness.measure.run.client_kinds import client_kind
from harness.measure.run.context import NoProgress, ProgressSink, RunContext
from harness.measure.run.jobs import (
    Job,
    diagonal,
    job_units,
    load_prompts,
    measured_transports,
    with_arrivals,
)
from harness.measure.run.joining import records_for
from harness.measure.run.python_clients import stream_servers
from harness.measure.run.scheduling import Shards, run_jobs
from harness.measure.run.shards import open_shards
from harness.measure.run.window import Measured, Server, Window, server_urls
from harness.measure.scenario import Scenario
from transports import TRANSPORTS, TransportRegistry

LEFT_STREAM_SLACK_S = 10.0  # beyond the resume grace: how long a left stream may take to end


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
    round: int = 0  # a repeated run's round (from 0), run by `harness.pipeline`
    # without `endpoint`: the certificate the servers' QUIC (WebTransport) answers with
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        urls = server_urls(self.server)
        if self.endpoint is not None and len(urls) > 1:
            raise ScenarioError(
                f"a path's endpoint fronts one server, not {len(urls)}: use "
                "server_processes = 1 with a path"
            )
        endpoint = self.endpoint or Endpoint(self.server.base_url, ca_file=self.ca_file)
        # one per server, in order: where shard i of the run connects (server i % N)
        endpoints = (
            (endpoint,)
            if len(urls) == 1
            else tuple(Endpoint(u, ca_file=self.ca_file) for u in urls)
        )
        prompts = tuple(load_prompts(self.scenario))
        label = self.round + 1 if self.round else None  # progress labels count from 1
        self.context = RunContext(
            self.scenario,
            endpoints,
            self.transports,
            self.run_tag,
            prompts,
            self.sweep_value,
            label,
        )
        self.kind = client_kind(self.scenario.client)

    async def run(self) -> list[PhaseRecord]:
        transports = measured_transports(self.scenario)
        if self.scenario.interleaved:
            return await self.phase(list(transports), self.interleaved_jobs(transports))
        return [
            phase
            for transport in transports
            for phase in await self.phase([transport], self.jobs(transport))
        ]

    def jobs(self, transport: str) -> list[Job]:
        """Request k of `transport`; with a rate, due at the k-th time of the scenario's
        arrival schedule (the same on every transport)."""
        return self.context.jobs(transport)

    def interleaved_jobs(self, transports: Sequence[str]) -> list[Job]:
        """Every transport's jobs in `diagonal` order; with a rate, that order arrives on one
        schedule at `rate` times the transports per second (each transport's share: `rate`)."""
        s = self.scenario
        order = diagonal([self.jobs(t) for t in transports], s.seed)
        return with_arrivals(order, s.rate * len(transports), s.arrivals, s.seed)

    async def phase(self, transports: Sequence[str], jobs: list[Job]) -> list[PhaseRecord]:
        """One measured window of `jobs` over `transports`, with its records."""
        s = self.scenario
        processes = effective_client_processes(
            s.client_processes, s.concurrency, len(job_units(jobs)), self.kind.many_processes
        )
        # a repeated run's rounds are replications: their clients too in a fresh process
        if processes > 1 or (s.repeat > 1 and self.kind.many_processes):
            measured = await self.measure_in_processes(transports, jobs, processes)
        else:
            measured = await self.measure_here(transports, jobs)
        urls = server_urls(self.server)
        patience_s = s.faults.resume_grace_s + LEFT_STREAM_SLACK_S
        records = await records_for(
            urls, jobs, measured.results, self.sweep_value, patience_s, measured.routes
        )
        raw = None
        if s.raw_client and len(transports) == 1:
            raw = await self.raw_floor(transports[0], jobs)
        setup = phase_setup(s, transports, processes, measured, len(urls), records, raw)
        return phase_records(transports, measured, records, setup, self.sweep_value)

    async def measure_here(self, transports: Sequence[str], jobs: list[Job]) -> Measured:
        """The phase in this process: clients opened and started (a browser's Chromium and
        its clock check: before any window), the warm-up, the window; clients closed."""
        s = self.scenario
        shards = {t: open_shards(t, s, self.context.endpoints, self.transports) for t in transports}
        clients = [client for pool in shards.values() for client in pool]
        try:
            await self.kind.start(clients)
            if s.warmup:
                for warmups in self.context.warmups(transports):
                    await run_jobs(shards, warmups, s.concurrency, s.stream_timeout_s)
            window, results = await self.measure(shards, jobs)
        finally:
            for client in clients:
                await client.aclose()
        report = self.kind.report(clients, window)
        window = replace(window, client_cpu_s=report.client_cpu_s)
        return Measured(window, results, stream_servers(shards), browser=report.browser)

    async def measure(self, shards: Shards, jobs: list[Job]) -> tuple[Window, list[StreamResult]]:
        """The measured window: `jobs` on `shards`, the CPU of both sides around them."""
        window = Window(self.server)
        self.phase_started(list(shards), jobs)
        with event_loop.no_gc_pauses():
            window.open()
            results = await run_jobs(
                shards,
                jobs,
                self.scenario.concurrency,
                self.scenario.stream_timeout_s,
                self.on_done,
                start_ns=window.start_ns,  # an open loop's arrival times count from here
                ramp_s=self.scenario.ramp_s,
            )
            window.close()
        self.phase_finished(list(shards))
        return window, results

    async def measure_in_processes(
        self, transports: Sequence[str], jobs: list[Job], processes: int
    ) -> Measured:
        """`measure`, its jobs spread over `processes` client processes, each with its own
        clients and warm-up (`harness.measure.client_processes`)."""
        self.phase_started(transports, jobs)
        measured = await asyncio.to_thread(
            run_in_processes, self.context, self.server, self.progress, transports, jobs, processes
        )
        self.phase_finished(transports)
        return measured

    def phase_started(self, transports: Sequence[str], jobs: Sequence[Job]) -> None:
        for transport in transports:
            total = sum(1 for job in jobs if job.transport == transport)
            self.progress.phase_started(self.context.label(transport), total)

    def phase_finished(self, transports: Sequence[str]) -> None:
        for transport in transports:
            self.progress.phase_finished(self.context.label(transport))

    def on_done(self, job: Job, result: StreamResult) -> None:
        self.progress.stream_done(self.context.label(job.transport), result.error is not None)

    async def raw_floor(self, transport: str, jobs: Sequence[Job]) -> RawFloor:
        """The same streams (same seeds, ids of their own) through the raw client, right
        after the phase, against the same servers: the floor for the client's CPU."""
        requests = [replace(job.request, stream_id=f"{job.request.stream_id}-raw") for job in jobs]
        urls = [endpoint.base_url for endpoint in self.context.endpoints]
        s = self.scenario
        run = await run_raw(transport, urls, requests, s.concurrency, s.ramp_s)
        return RawFloor(streams=run.streams, tokens=run.tokens, cpu_s=run.cpu_s, wall_s=run.wall_s)


async def run_benchmark(
    scenario: Scenario,
    server: Server,
    progress: ProgressSink | None = None,
    sweep_value: SweepValue | None = None,
    transports: TransportRegistry = TRANSPORTS,
    endpoint: Endpoint | None = None,
    round: int = 0,
    ca_file: Path | None = None,
) -> list[PhaseRecord]:
    """Run one scenario (one sweep point; one `round` of a repeated run) against a running
    server, its clients speaking to `endpoint` (the outermost layer of the scenario's path;
    default: the server itself). Raw records out, one phase per transport (of one round:
    `harness.measure.run.rounds` merges a repeated run's); timelines are fetched from the
    server directly, out of band."""
    benchmark = Benchmark(
        scenario,
        server,
        progress or NoProgress(),
        sweep_value,
        transports,
        endpoint,
        round=round,
        ca_file=ca_file,
    )
    return await benchmark.run()
