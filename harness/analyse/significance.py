"""Whether a figure changed between two runs beyond their noise: the interval of the
difference (the other run's figure minus the baseline's). A difference whose interval
excludes 0 is a change, improved or regressed as the figure's better direction says; one
whose interval holds 0 is "no change" (beyond noise).

The interval's basis (`Change.basis`): when either run was repeated, its rounds, each with a
server and clients of its own (`rounds`: Welch's interval, `harness.analyse.replications`),
which holds what varies between runs; otherwise each run's streams resampled on their own
(`streams`: `harness.analyse.intervals`), which holds only the noise within each run, so two
runs of one round each can differ "beyond noise" where the machine alone moved them.

A comparison judges many figures at once (24 per transport), and at 95% each, about one in
twenty of the figures that did not change would be called changed: an A/A comparison of
144 figures names seven changes that are noise. So one comparison's figures (one compared
run at one point) are judged as a family: Benjamini-Hochberg finds the changes at a false
discovery rate of 5% (of the changes named, at most 5% noise, on average), and every
interval of the family is given at the level that agrees with that verdict, 1 - max(R, 1)
x 0.05 / m for R changes among m figures (Benjamini and Yekutieli's false-coverage
intervals; `Change.level`). With nothing changed (R = 0) that is 1 - 0.05 / m, so a
comparison with no real change names none in 95% of runs. A figure judged alone
(`change`) gets the plain 95% interval.

`compare` writes one `Change` per compared run, transport and figure (`compare.json`), and
the CI check judges its figures the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np

from harness.analyse.intervals import (
    LEVEL,
    Interval,
    bounds,
    pooled_resamples,
    pooled_work,
    ratio_resamples,
    resamples_for,
)
from harness.analyse.metrics import (
    RATIOS,
    STREAM_SAMPLES,
    ratio_parts,
    stream_tokens_per_s,
    summarize,
)
from harness.analyse.replications import round_phases, welch
from harness.analyse.summary import TransportSummary
from harness.measure.records import PhaseRecord

FALSE_DISCOVERY_RATE = 0.05  # of one comparison's changes, at most this share noise
Verdict = Literal["no change", "improved", "regressed"]
Basis = Literal["rounds", "streams"]
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
    basis: Basis | None = None  # what the interval resampled (module docstring)
    level: float | None = None  # the interval's level (module docstring: a family's)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = None if self.interval is None else [self.interval.lo, self.interval.hi]
        return data


def _groups(phase: PhaseRecord, figure: str) -> list[list[float]]:
    """Per stream, the figure's samples."""
    if figure == "tokens_per_s":
        return [[v] if (v := stream_tokens_per_s(r)) is not None else [] for r in phase.requests]
    samples = STREAM_SAMPLES[figure]
    return [samples(r) for r in phase.requests]


@dataclass(frozen=True, slots=True)
class Side:
    """One run's phase of one transport, as compared: its summary and each round's."""

    phase: PhaseRecord
    salt: str  # its bootstrap's seed (each run its own: independent draws)
    whole: TransportSummary
    rounds: tuple[TransportSummary, ...]  # one per round; one round: the whole

    @classmethod
    def of(cls, phase: PhaseRecord, salt: str) -> Side:
        whole = summarize(phase, intervals=False)
        parts = round_phases(phase) if len(phase.rounds) > 1 else []
        rounds = tuple(summarize(p, intervals=False) for p in parts) or (whole,)
        return cls(phase, salt, whole, rounds)


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
    if name in RATIOS:
        return ratio_resamples(*ratio_parts(phase, name), seed, resamples)
    found = pooled_resamples(_groups(phase, name), seed, resamples)
    return found.get(stat or "p50")


def judged(difference: Interval | None, better: Better) -> Verdict | None:
    if difference is None:
        return None
    if difference.contains(0.0):
        return NO_CHANGE
    lower = difference.hi < 0
    return "improved" if lower == (better == "lower") else "regressed"


class Noise(Protocol):
    """How far a difference is from what noise alone makes: its p-value, and its interval
    at any level (the two agree: the `level` interval excludes 0 when p < 1 - level)."""

    def p_value(self) -> float: ...
    def interval(self, level: float = LEVEL) -> Interval | None: ...


@dataclass(frozen=True, slots=True)
class Resampled:
    """The difference once per resample of each run's streams (resample k against k)."""

    differences: np.ndarray

    def p_value(self) -> float:
        found = self.differences[np.isfinite(self.differences)]
        if found.size == 0:
            return 1.0
        tail = min(float(np.mean(found <= 0)), float(np.mean(found >= 0)))
        return min(1.0, 2 * tail)

    def interval(self, level: float = LEVEL) -> Interval | None:
        return bounds(self.differences, level)


def _resampled(base: Side, other: Side, figure: str) -> Resampled | None:
    count = resamples_for(max(work_of(base.phase, figure), work_of(other.phase, figure)))
    a = figure_resamples(base.phase, figure, base.salt, count)
    b = figure_resamples(other.phase, figure, other.salt, count)
    if a is None or b is None:
        return None
    n = min(a.size, b.size)
    return Resampled(b[:n] - a[:n])


@dataclass(frozen=True, slots=True)
class Measured:
    """One figure of one transport before the family's level is known."""

    transport: str
    figure: str
    before: float | None
    after: float | None
    noise: Noise | None
    basis: Basis | None

    @property
    def difference(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before

    def judged(self, run: str, level: float) -> Change:
        interval = None if self.noise is None else self.noise.interval(level)
        verdict = judged(interval, better_of(self.figure))
        basis = self.basis if interval is not None else None
        level_of = level if interval is not None else None
        return Change(
            run,
            self.transport,
            self.figure,
            self.before,
            self.after,
            self.difference,
            interval,
            verdict,
            basis,
            level_of,
        )


def measured(transport: str, base: Side, other: Side, figure: str) -> Measured:
    """One figure of one transport, `other` against `base`: over the rounds when either
    was repeated, else over each run's streams."""
    before, after = base.whole.figure(figure), other.whole.figure(figure)
    repeated = max(len(base.rounds), len(other.rounds)) > 1
    noise: Noise | None = None
    if before is not None and after is not None and repeated:
        noise = welch(
            after - before,
            [r.figure(figure) for r in base.rounds],
            [r.figure(figure) for r in other.rounds],
        )
    elif before is not None and after is not None:
        noise = _resampled(base, other, figure)
    basis: Basis | None = None if noise is None else "rounds" if repeated else "streams"
    return Measured(transport, figure, before, after, noise, basis)


def family_level(p_values: Sequence[float], rate: float = FALSE_DISCOVERY_RATE) -> float:
    """The level of every interval of one comparison of m figures: Benjamini-Hochberg
    finds R changes at false discovery rate `rate`, and each interval is then at
    1 - max(R, 1) x rate / m (Benjamini-Yekutieli), so that an interval excludes 0 exactly
    when its figure is one of the R. One figure: 1 - rate."""
    m = len(p_values)
    if m == 0:
        return 1 - rate
    ranked = sorted(p_values)
    found = max((k for k in range(1, m + 1) if ranked[k - 1] <= k * rate / m), default=0)
    return 1 - max(found, 1) * rate / m


def change(run: str, transport: str, base: Side, other: Side, figure: str) -> Change:
    """One figure of one transport, `other` against `base`, judged alone (at 95%)."""
    return measured(transport, base, other, figure).judged(run, LEVEL)


def changes(
    run: str,
    base: dict[str, PhaseRecord],
    other: dict[str, PhaseRecord],
    figures: Sequence[str] = FIGURES,
) -> list[Change]:
    """Every figure of every transport both runs measured, judged as one family (module
    docstring): its false discovery rate held at 5%."""
    found = []
    for name in base:
        if name in other:
            a, b = Side.of(base[name], "baseline"), Side.of(other[name], run)
            found += [measured(name, a, b, figure) for figure in figures]
    level = family_level([m.noise.p_value() for m in found if m.noise is not None])
    return [m.judged(run, level) for m in found]
