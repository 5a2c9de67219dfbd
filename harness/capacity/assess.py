"""One probe: a real benchmark run of one transport at one concurrency, as the search saw
it (`Probe`), and its figures and verdict from its phase record (`assess`): timing figures
from its steady part (the streams after its first wave), counts, CPU and throughput from
the whole. The definitions are in `harness/capacity/__init__.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.analyse.metrics import Distribution, summarize, ttft_ms
from harness.capacity.slo import NO_DESIGN_DELAY, Check, DesignDelay, Slo, Verdict, check_slo
from harness.measure.records import PhaseRecord

NS_PER_MS = 1_000_000
# a probe's role: the unloaded probe (concurrency 1, first) or one of the search
UNLOADED = "unloaded"
SEARCH = "search"


def steady_part(phase: PhaseRecord, concurrency: int) -> PhaseRecord:
    """The probe without its first wave: streams k >= `concurrency` (request k is the k-th
    started; the first `concurrency` start in the same instant, a burst of new connections
    no real server sees). The whole probe when that leaves nothing."""
    steady = [r for r in phase.requests if r.index >= concurrency]
    return replace(phase, requests=steady) if steady else phase


def ttft_overhead_p99_ms(phase: PhaseRecord) -> float | None:
    """The transport's own share of time to first token: p99 over streams of TTFT minus
    the source's planned first-token delay (None without a planned source or a token)."""
    overheads = []
    for record in phase.requests:
        ttft = ttft_ms(record)
        if ttft is not None and record.planned_delays_ns:
            overheads.append(ttft - record.planned_delays_ns[0] / NS_PER_MS)
    return Distribution.of(overheads).p99


def ttft_reference_ms(phase: PhaseRecord, unloaded_overhead_ms: float | None) -> float | None:
    """What this probe's TTFT p99 would be unloaded: the p99 of its streams' planned
    first-token delays plus the transport's unloaded overhead (see the module docstring)."""
    planned = [r.planned_delays_ns[0] / NS_PER_MS for r in phase.requests if r.planned_delays_ns]
    p99 = Distribution.of(planned).p99
    if p99 is None or unloaded_overhead_ms is None:
        return None
    return p99 + max(unloaded_overhead_ms, 0.0)


@dataclass
class Probe:
    """One real benchmark run of one transport at one concurrency, as the search saw it."""

    transport: str
    concurrency: int
    streams: int
    steady_streams: int  # those after the first wave, whose timing the SLO judges
    role: str  # UNLOADED (concurrency 1, first) or SEARCH
    verdict: Verdict
    window_s: float
    server_cpu_s: float | None
    client_cpu_s: float | None
    server_peak_rss_bytes: int | None
    server_processes: int = 1
    tokens_per_s: float | None = None  # delivered to all clients together
    server_cpu_ms_per_1k_tokens: float | None = None
    errors: int = 0
    ttft_reference_ms: float | None = None
    rerun: bool = False  # this run repeats a failure on timing alone
    superseded: bool = False  # a failure on timing alone whose re-run's verdict counts instead
    duration_s: float = 0.0  # wall time, server start to stop
    summary: dict[str, Any] = field(default_factory=dict)  # the phase's TransportSummary

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def server_cores_busy(self) -> float | None:
        return cores_busy(self.server_cpu_s, self.window_s)

    @property
    def client_cores_busy(self) -> float | None:
        return cores_busy(self.client_cpu_s, self.window_s)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "verdict"}
        data["passed"] = self.passed
        data["checks"] = [c.to_json() for c in self.verdict.checks]
        data["server_cores_busy"] = self.server_cores_busy
        data["client_cores_busy"] = self.client_cores_busy
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Probe:
        names = set(cls.__dataclass_fields__) - {"verdict"}
        verdict = Verdict(tuple(Check.from_json(c) for c in data["checks"]))
        return cls(verdict=verdict, **{k: v for k, v in data.items() if k in names})


def cores_busy(cpu_s: float | None, window_s: float) -> float | None:
    """CPU seconds per second of the window: how many cores the process kept busy."""
    return None if cpu_s is None or window_s <= 0 else cpu_s / window_s


def assess(
    phase: PhaseRecord,
    slo: Slo,
    role: str,
    *,
    concurrency: int,
    unloaded_overhead_ms: float | None,
    design: DesignDelay = NO_DESIGN_DELAY,
    raised: dict[str, float] | None = None,
    server_peak_rss_bytes: int | None = None,
    duration_s: float = 0.0,
    rerun: bool = False,
) -> Probe:
    """A probe's figures and verdict from its phase record: timing figures from its steady
    part, counts, CPU and throughput from the whole. The unloaded probe passes its own
    overhead (`ttft_overhead_p99_ms` of its steady part)."""
    summary = summarize(phase)
    steady = steady_part(phase, concurrency)
    steady_summary = summary if steady is phase else summarize(steady)
    reference = ttft_reference_ms(steady, unloaded_overhead_ms)
    verdict = check_slo(
        steady_summary,
        slo,
        ttft_reference_ms=reference,
        design=design,
        counts=summary,
        raised=raised,
    )
    return Probe(
        transport=phase.transport,
        concurrency=concurrency,
        streams=len(phase.requests),
        steady_streams=len(steady.requests),
        role=role,
        verdict=verdict,
        window_s=phase.window_s,
        server_cpu_s=phase.server_cpu_s,
        client_cpu_s=phase.client_cpu_s,
        server_peak_rss_bytes=server_peak_rss_bytes
        if server_peak_rss_bytes is not None
        else phase.server_rss_bytes,
        server_processes=phase.server_processes,
        tokens_per_s=summary.aggregate_tokens_per_s,
        server_cpu_ms_per_1k_tokens=summary.server_cpu_ms_per_1k_tokens,
        errors=summary.errors,
        ttft_reference_ms=reference,
        rerun=rerun,
        duration_s=duration_s,
        summary=summary.to_json(),
    )
