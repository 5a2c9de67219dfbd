"""The driver: runs a scenario's streams through each transport and returns raw records.

Measuring only: no statistics here (see `harness.metrics`). For each transport, in turn:
open the clients (one pooled client per shard of at most `SHARD_SIZE` streams), run a few
unmeasured warm-up streams, then run `requests` streams with `concurrency` in flight
(closed loop: a worker schedules its next stream the moment its previous one ends, and
that scheduled time starts the stream's timers), read both sides' CPU around the phase,
and finally fetch the server's emit timelines out of band and join them to what the
clients saw. Request k uses source seed k on every transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from clients import CLIENTS
from clients.base import ClientSettings, StreamClient, StreamError, StreamResult
from harness.records import PhaseRecord, RequestRecord
from harness.scenario import Scenario
from harness.server_process import ServerProcess
from wire.messages import GenerationRequest, loads

SHARD_SIZE = 50  # streams per pooled HTTP client: httpcore slows down with huge pools
WARMUP_SEED_BASE = 1_000_000_000
TIMELINE_BATCH = 500


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
    tokens: int
    emit_ns: list[int]
    texts: list[str]
    error: str | None


def client_settings(scenario: Scenario, base_url: str, max_connections: int) -> ClientSettings:
    return ClientSettings(
        base_url=base_url,
        framing=scenario.framing,
        poll_interval_s=scenario.poll_interval_ms / 1000,
        long_poll_wait_s=scenario.long_poll_wait_s,
        max_connections=max_connections,
        stream_timeout_s=scenario.stream_timeout_s,
    )


def open_shards(transport: str, scenario: Scenario, base_url: str) -> list[StreamClient]:
    shard_count = -(-scenario.concurrency // SHARD_SIZE)
    size = -(-scenario.concurrency // shard_count)
    settings = client_settings(scenario, base_url, size)
    return [CLIENTS[transport](settings) for _ in range(shard_count)]


async def run_stream(
    client: StreamClient, request: GenerationRequest, scheduled_ns: int, timeout_s: float
) -> StreamResult:
    """One stream, bounded in time whatever the transport does."""
    try:
        async with asyncio.timeout(timeout_s):
            return await client.stream(request, scheduled_ns)
    except TimeoutError:
        result = StreamResult(client.transport, request.stream_id or "", scheduled_ns)
        result.error = StreamError("timeout", f"the stream did not finish within {timeout_s:g} s")
        return result


async def run_streams(
    shards: Sequence[StreamClient],
    requests: Sequence[GenerationRequest],
    concurrency: int,
    timeout_s: float,
    on_done: Any = None,
) -> list[StreamResult]:
    results: list[StreamResult | None] = [None] * len(requests)  # in request order
    queue = iter(range(len(requests)))
    per_shard = -(-concurrency // len(shards))

    async def worker(w: int) -> None:
        client = shards[w // per_shard]
        for k in queue:
            scheduled = time.perf_counter_ns()
            result = await run_stream(client, requests[k], scheduled, timeout_s)
            results[k] = result
            if on_done is not None:
                on_done(result)

    async with asyncio.TaskGroup() as group:
        for w in range(min(concurrency, len(requests))):
            group.create_task(worker(w))
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


async def fetch_timelines(base_url: str, ids: Sequence[str]) -> dict[str, Timeline]:
    """The server's emit timelines, fetched out of band after the phase, then dropped."""
    found: dict[str, Timeline] = {}
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60) as http:
        for start in range(0, len(ids), TIMELINE_BATCH):
            batch = list(ids[start : start + TIMELINE_BATCH])
            response = await http.post(
                "/v1/timelines", json={"ids": batch, "texts": True, "drop": True}
            )
            response.raise_for_status()
            for item in loads(response.content)["timelines"]:
                found[item["id"]] = Timeline(
                    item["tokens"], item["emit_ns"], item["texts"], item["error"]
                )
    return found


def join(index: int, seed: int, result: StreamResult, timeline: Timeline | None) -> RequestRecord:
    """Pair each received token with its server emit stamp and check its text."""
    emit: list[int | None] = []
    mismatches = 0
    for i, text in zip(result.indices, result.texts, strict=True):
        known = timeline is not None and 0 <= i < len(timeline.emit_ns)
        emit.append(timeline.emit_ns[i] if known else None)  # type: ignore[union-attr]
        if not known or timeline.texts[i] != text:  # type: ignore[union-attr]
            mismatches += 1
    error = result.error
    if error is None and timeline is None:
        error = StreamError("timeline", "the server has no timeline for this stream")
    return RequestRecord(
        transport=result.transport,
        index=index,
        seed=seed,
        stream_id=result.stream_id,
        scheduled_ns=result.scheduled_ns,
        end_ns=result.end_ns,
        token_index=list(result.indices),
        recv_ns=list(result.recv_ns),
        emit_ns=emit,
        token_bytes=[len(t.encode()) for t in result.texts],
        chunk_sizes=list(result.chunk_sizes),
        source_tokens=timeline.tokens if timeline is not None else 0,
        text_mismatches=mismatches,
        bytes_sent=result.bytes_sent,
        bytes_received=result.bytes_received,
        header_bytes=result.header_bytes,
        requests=result.requests,
        empty_polls=result.empty_polls,
        error_kind=None if error is None else error.kind,
        error_message=None if error is None else error.message,
    )


def measured_requests(scenario: Scenario, transport: str, run_tag: str) -> list[GenerationRequest]:
    return [
        GenerationRequest(seed=k, stream_id=f"{run_tag}-{transport}-{k}")
        for k in range(scenario.requests)
    ]


async def run_phase(
    transport: str,
    scenario: Scenario,
    server: ServerProcess,
    run_tag: str,
    progress: ProgressSink,
    sweep_value: int | float | str | None = None,
) -> PhaseRecord:
    label = transport if sweep_value is None else f"{transport} @ {sweep_value}"
    shards = open_shards(transport, scenario, server.base_url)
    try:
        if scenario.warmup:
            warmups = [
                GenerationRequest(
                    seed=WARMUP_SEED_BASE + k, stream_id=f"{run_tag}-{transport}-w{k}"
                )
                for k in range(scenario.warmup)
            ]
            await run_streams(shards, warmups, scenario.concurrency, scenario.stream_timeout_s)
        requests = measured_requests(scenario, transport, run_tag)
        progress.phase_started(label, len(requests))
        server_cpu0, client_cpu0 = server.cpu_seconds(), time.thread_time()
        window_start = time.perf_counter_ns()
        results = await run_streams(
            shards,
            requests,
            scenario.concurrency,
            scenario.stream_timeout_s,
            on_done=lambda r: progress.stream_done(label, r.error is not None),
        )
        window_end = time.perf_counter_ns()
        client_cpu = time.thread_time() - client_cpu0
        server_cpu = server.cpu_seconds() - server_cpu0
        rss = server.rss_bytes()
    finally:
        for shard in shards:
            await shard.aclose()
    progress.phase_finished(label)
    timelines = await fetch_timelines(server.base_url, [r.stream_id for r in results])
    records = [
        join(k, request.seed, result, timelines.get(result.stream_id))
        for k, (request, result) in enumerate(zip(requests, results, strict=True))
    ]
    for record in records:
        record.sweep_value = sweep_value
    return PhaseRecord(
        transport=transport,
        window_start_ns=window_start,
        window_end_ns=window_end,
        server_cpu_s=server_cpu,
        client_cpu_s=client_cpu,
        server_rss_bytes=rss,
        sweep_value=sweep_value,
        requests=records,
    )


async def run_benchmark(
    scenario: Scenario,
    server: ServerProcess,
    progress: ProgressSink | None = None,
    sweep_value: int | float | str | None = None,
) -> list[PhaseRecord]:
    run_tag = f"r{time.time_ns() % 10**10:x}"
    sink = progress or NoProgress()
    return [
        await run_phase(transport, scenario, server, run_tag, sink, sweep_value)
        for transport in scenario.transports
    ]
