"""Whether a figure changed between two runs beyond their noise: the 95% interval of the
difference (the other run's figure minus the baseline's), each run's streams resampled on
their own (`harness.analyse.intervals`: the runs are independent). A difference whose
interval excludes 0 is a change, improved or regressed as the figure's better direction
says; one whose interval holds 0 is "no change" (beyond noise). Figures measured once per
phase (CPU, memory) have no interval and are not judged here.

`compare` writes one `Change` per compared run, transport and figure (`compare.json`), and
the CI check judges its figures the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from harness.analyse.intervals import (
    Interval,
    difference_interval,
    pooled_resamples,
    pooled_work,
    ratio_resamples,
    resamples_for,
)
from harness.analyse.metrics import (
    RATIOS,
    STREAM_SAMPLES,
    ratio_parts,
    stream_rounds,
    stream_tokens_per_s,
)
from harness.measure.records import PhaseRecord

Verdict = Literal["no change", "improved", "regressed"]
NO_CHANGE: Verdict = "no change"
Better = Literal["lower", "higher"]

# The figures judged: every distribution's p50, p90, p99 and mean, the per-stream rate and
# the ratios, each with the direction that is better.
DISTRIBUTIONS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "added_delay_ms")
STATS = ("p50", "p90", "p99", "mean")
HIGHER_BETTER = frozenset({"tokens_per_s", "aggregate_tokens_per_s"})
FIGURES: tuple[str, ...] = (
    *(f"{d}.{s}" for d in DISTRIBUTIONS for s in STATS),
    "tokens_per_s",
    "aggregate_tokens_per_s",
    "wire_bytes_per_token",
    "requests_per_stream",
)


def better_of(figure: str) -> Better:
    return "higher" if figure in HIGHER_BETTER else "lower"


@dataclass(frozen=True, slots=True)
class Change:
    """One figure of one transport: the baseline's value, this run's, their difference,
    its 95% interval and the verdict."""

    run: str
    transport: str
    metric: str
    baseline: float | None
    value: float | None
    difference: float | None
    interval: Interval | None
    verdict: Verdict | None  # None: no interval (too few streams, or no value)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = None if self.interval is None else [self.interval.lo, self.interval.hi]
        return data


def _groups(phase: PhaseRecord, figure: str) -> list[list[float]]:
    """Per stream (all of them, in order: a stream without a sample has an empty group, so
    the groups line up with the streams' rounds), the figure's samples."""
    if figure == "tokens_per_s":
        return [[v] if (v := stream_tokens_per_s(r)) is not None else [] for r in phase.requests]
    samples = STREAM_SAMPLES[figure]
    return [samples(r) for r in phase.requests]


def figure_value(phase: PhaseRecord, figure: str) -> float | None:
    """The figure as the summary computes it."""
    name, _, stat = figure.partition(".")
    if name in RATIOS:
        top, bottom = ratio_parts(phase, name)
        return sum(top) / sum(bottom) if sum(bottom) > 0 else None
    values = [v for g in _groups(phase, name) for v in g]
    if not values:
        return None
    if stat == "mean":
        return float(np.mean(values))
    q = 50.0 if not stat else float(stat.removeprefix("p"))
    return float(np.percentile(values, q))


def work_of(phase: PhaseRecord, figure: str) -> int:
    """What one resample of the figure costs (`intervals.resamples_for`)."""
    name = figure.partition(".")[0]
    if name in RATIOS:
        return len(phase.requests)
    groups = [g for g in _groups(phase, name) if g]
    return pooled_work(len(groups), sum(map(len, groups))) if len(groups) > 1 else 0


def figure_resamples(
    phase: PhaseRecord, figure: str, salt: str, resamples: int
) -> np.ndarray | None:
    """The figure once per resample of the phase's streams, seeded by figure and `salt`
    (each run its own salt: independent draws)."""
    name, _, stat = figure.partition(".")
    seed = f"{figure}|{salt}"
    rounds = stream_rounds(phase)
    if name in RATIOS:
        return ratio_resamples(*ratio_parts(phase, name), seed, resamples, rounds)
    found = pooled_resamples(_groups(phase, name), seed, resamples, rounds)
    return found.get(stat or "p50")


def judged(difference: Interval | None, better: Better) -> Verdict | None:
    if difference is None:
        return None
    if difference.contains(0.0):
        return NO_CHANGE
    lower = difference.hi < 0
    return "improved" if lower == (better == "lower") else "regressed"


def change(run: str, transport: str, base: PhaseRecord, other: PhaseRecord, figure: str) -> Change:
    """One figure of one transport, `other` against `base`."""
    before, after = figure_value(base, figure), figure_value(other, figure)
    difference = None if before is None or after is None else after - before
    count = resamples_for(max(work_of(base, figure), work_of(other, figure)))
    a = figure_resamples(base, figure, "baseline", count)
    b = figure_resamples(other, figure, run, count)
    interval = None if a is None or b is None else difference_interval(a, b)
    return Change(
        run,
        transport,
        figure,
        before,
        after,
        difference,
        interval,
        judged(interval, better_of(figure)),
    )


def changes(
    run: str,
    base: dict[str, PhaseRecord],
    other: dict[str, PhaseRecord],
    figures: Sequence[str] = FIGURES,
) -> list[Change]:
    """Every figure of every transport both runs measured."""
    return [
        change(run, name, base[name], other[name], figure)
        for name in base
        if name in other
        for figure in figures
    ]
