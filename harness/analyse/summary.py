"""The summary records: a distribution's statistics (`Distribution`) and one transport's
figures (`TransportSummary`), each with its 95% intervals; how a summary is read by a
figure's name (`TransportSummary.figure`: `ttft_ms.p50`, `wire_bytes_per_token`), and how a
repeated phase's intervals come from its rounds (`over_rounds`). What the figures mean, and
how they are computed: `harness.analyse.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from harness.analyse.intervals import Interval, pooled_intervals
from harness.analyse.replications import replication_interval


@dataclass(frozen=True, slots=True)
class Distribution:
    n: int
    p50: float | None
    p90: float | None
    p99: float | None
    mean: float | None
    max: float | None
    # 95% confidence intervals, resampling streams (harness.analyse.intervals); None where
    # the samples do not come in streams, or fewer than two streams have any
    p50_ci: Interval | None = None
    p90_ci: Interval | None = None
    p99_ci: Interval | None = None
    mean_ci: Interval | None = None

    @classmethod
    def of(cls, samples: Iterable[float]) -> Distribution:
        values = np.fromiter(samples, dtype=float)
        if values.size == 0:
            return cls(0, None, None, None, None, None)
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(
            int(values.size),
            float(p50),
            float(p90),
            float(p99),
            float(values.mean()),
            float(values.max()),
        )

    @classmethod
    def of_streams(
        cls, groups: Sequence[Sequence[float]], name: str, intervals: bool = True
    ) -> Distribution:
        """The pooled samples of every stream (one group each), with their intervals
        (resampling streams) unless `intervals` is False."""
        pooled = cls.of(v for g in groups for v in g)
        if not intervals:
            return pooled
        found = pooled_intervals(groups, name)
        return replace(
            pooled,
            p50_ci=found.get("p50"),
            p90_ci=found.get("p90"),
            p99_ci=found.get("p99"),
            mean_ci=found.get("mean"),
        )

    def interval(self, stat: str) -> Interval | None:
        """The interval of `p50`, `p90`, `p99` or `mean`."""
        found: Interval | None = getattr(self, f"{stat}_ci", None)
        return found


@dataclass(frozen=True, slots=True)
class TransportSummary:
    ttft_ms: Distribution
    itl_ms: Distribution
    tpot_ms: Distribution
    e2e_ms: Distribution
    queue_wait_ms: Distribution
    added_delay_ms: Distribution
    tokens_per_chunk: Distribution
    tokens_per_s: float | None
    aggregate_tokens_per_s: float | None
    wire_bytes_per_token: float | None
    payload_bytes_per_token: float | None
    header_bytes_per_token: float | None
    requests_per_stream: float
    empty_polls: int
    empty_polls_per_stream: float
    server_cpu_ms_per_1k_tokens: float | None
    client_cpu_ms_per_1k_tokens: float | None
    server_rss_mb: float | None
    source_gap_error_ms: Distribution
    token_count_basis: str
    usage_tokens: int | None
    streams: int
    tokens_emitted: int
    tokens_received: int
    tokens_lost: int
    tokens_duplicated: int
    text_mismatches: int
    errors: int
    ttft_minus_direct_ms: Distribution | None = None
    steady_window_s: float | None = None
    demanded_tokens_per_s: float | None = None
    delivered_tokens_per_s: float | None = None
    delivered_ratio: float | None = None
    raw_client_cpu_us_per_token: float | None = None
    client_vs_raw_cpu: float | None = None
    drops: int = 0
    recovery_ms: Distribution | None = None
    left: int = 0
    cancel_after_leave_ms: Distribution | None = None
    cancel_beyond_grace_ms: Distribution | None = None
    # 95% confidence intervals of the scalar figures, resampling streams
    tokens_per_s_ci: Interval | None = None
    aggregate_tokens_per_s_ci: Interval | None = None
    wire_bytes_per_token_ci: Interval | None = None
    payload_bytes_per_token_ci: Interval | None = None
    header_bytes_per_token_ci: Interval | None = None
    requests_per_stream_ci: Interval | None = None
    delivered_ratio_ci: Interval | None = None  # steady % demand: resampling streams
    # measured once per phase: an interval only over the rounds of a repeated run (then
    # every figure's interval is over its rounds: `over_rounds`)
    server_cpu_ms_per_1k_tokens_ci: Interval | None = None
    client_cpu_ms_per_1k_tokens_ci: Interval | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def interval(self, figure: str) -> Interval | None:
        """The interval of a figure: `ttft_ms.p50` (a distribution's statistic) or
        `wire_bytes_per_token` (a scalar); None where it has none."""
        name, _, stat = figure.partition(".")
        if stat:
            value = getattr(self, name, None)
            return value.interval(stat) if isinstance(value, Distribution) else None
        found: Interval | None = getattr(self, f"{name}_ci", None)
        return found

    def figure(self, figure: str) -> float | None:
        """A figure by its name: `ttft_ms.p50` (a distribution's statistic) or
        `wire_bytes_per_token` (a scalar); None where it has no value."""
        name, _, stat = figure.partition(".")
        value = getattr(self, name)
        found = getattr(value, stat, None) if stat else value
        return None if found is None else float(found)


# every figure with an interval: each distribution's statistics, and the scalars
STATS = ("p50", "p90", "p99", "mean")
SCALARS_WITH_INTERVALS = tuple(
    f.name.removesuffix("_ci") for f in fields(TransportSummary) if f.name.endswith("_ci")
)


def over_rounds(
    whole: TransportSummary, rounds: Sequence[TransportSummary], distributions: Iterable[str]
) -> TransportSummary:
    """`whole` (a repeated phase's summary over every round) with the intervals of its
    `distributions` (by name) and of its scalars taken over its `rounds`' figures
    (`harness.analyse.replications`)."""

    def over(figure: str) -> Interval | None:
        return replication_interval(whole.figure(figure), [r.figure(figure) for r in rounds])

    changed: dict[str, Any] = {
        name: replace(getattr(whole, name), **{f"{s}_ci": over(f"{name}.{s}") for s in STATS})
        for name in distributions
    }
    changed |= {f"{name}_ci": over(name) for name in SCALARS_WITH_INTERVALS}
    return replace(whole, **changed)
