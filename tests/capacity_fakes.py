"""Fakes for the capacity tests: a probe with given figures, and a synthetic phase whose
streams arrive a given delay after their plan (what a benchmark run would record)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.capacity.assess import SEARCH, Probe
from harness.capacity.slo import Check, Verdict
from harness.measure.records import PhaseRecord, PhaseSetup, RequestRecord

MS = 1_000_000
TOKENS = 4


def synthetic_phase(
    transport: str, concurrency: int, streams: int, added_ms: float, lost: int = 0
) -> PhaseRecord:
    """`streams` streams whose first token arrives at once and the rest `added_ms` after
    their planned emits; the first `lost` streams lose their last token."""
    records = []
    for k in range(streams):
        start = k * 500 * MS
        emit = [start + (50 + 10 * i) * MS for i in range(TOKENS)]
        recv = [emit[0] + MS // 2] + [e + int(added_ms * MS) for e in emit[1:]]
        kept = TOKENS - 1 if k < lost else TOKENS
        emitted: list[int | None] = list(emit[:kept])
        records.append(
            RequestRecord(
                transport=transport,
                index=k,
                seed=k,
                stream_id=f"{transport}-{k}",
                scheduled_ns=start,
                end_ns=recv[-1] + MS,
                token_index=list(range(kept)),
                recv_ns=recv[:kept],
                emit_ns=emitted,
                token_bytes=[3] * kept,
                chunk_sizes=[1] * kept,
                source_tokens=TOKENS,
                planned_delays_ns=[50 * MS] + [10 * MS] * (TOKENS - 1),
                requests=1,
            )
        )
    return PhaseRecord(
        transport=transport,
        window_start_ns=0,
        window_end_ns=4 * 10**9,
        server_cpu_s=0.002 * concurrency,
        client_cpu_s=0.004 * concurrency,
        server_rss_bytes=80 * 2**20,
        requests=records,
        setup=PhaseSetup(order="sequential", server_processes=1),
    )


def probe(transport: str, concurrency: int, added_ms: float, **changes: Any) -> Probe:
    base = Probe(
        transport=transport,
        concurrency=concurrency,
        streams=2 * concurrency,
        steady_streams=concurrency,
        role=SEARCH,
        verdict=Verdict((Check("added_delay_p99_ms", added_ms, 50.0),)),
        window_s=5.0,
        server_cpu_s=0.004 * concurrency,
        client_cpu_s=0.008 * concurrency,
        server_peak_rss_bytes=80 * 2**20 + 20 * 1024 * concurrency,
        tokens_per_s=40.0 * concurrency,
        server_cpu_ms_per_1k_tokens=100.0,
        duration_s=6.0,
    )
    return replace(base, **changes)
