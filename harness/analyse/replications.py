"""Intervals over rounds: a repeated run's rounds are independent replications.

A run's streams share their run: one server process, one stretch of the machine's time. On
a shared 2-core machine the same code measured minutes apart, each run with its own server,
shifts sub-millisecond figures by more than a bootstrap over one run's streams says (docs/
metrics.md, "Rounds"): what varies from run to run is invisible inside a run. So every
round of a repeated run (`repeat`) gets a server process of its own (`harness.pipeline`),
and each of its phases a client process of its own (`harness.measure.driver`),
and a figure's interval is taken over its rounds, the method of independent replications:
the figure over the whole phase, plus or minus Student's t (R - 1 degrees of freedom) times
the standard deviation of the R rounds' figures over the root of R. Few rounds make it wide,
as they should: three rounds pay t = 4.30 where the normal quantile is 1.96.

Two runs' difference (compare, check): Welch's interval from each side's round figures; a
side with one round (a run without repeats) borrows the other side's spread (Student's
pooled form, the other side's degrees of freedom), which assumes the two vary alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.analyse.intervals import LEVEL, Interval
from harness.measure.records import PhaseRecord


def round_phases(phase: PhaseRecord) -> list[PhaseRecord]:
    """A repeated phase's rounds, each as a phase of its own (its streams, window, CPU)."""
    return [
        replace(
            phase,
            window_start_ns=r.window_start_ns,
            window_end_ns=r.window_end_ns,
            server_cpu_s=r.server_cpu_s,
            client_cpu_s=r.client_cpu_s,
            requests=[q for q in phase.requests if q.repeat == r.repeat],
            setup=None if phase.setup is None else replace(phase.setup, rounds=None),
        )
        for r in phase.rounds
    ]


def _t(level: float, df: float) -> float:
    """Student's t quantile for a two-sided `level`."""
    from scipy.special import stdtrit  # imported here: scipy takes ~0.3 s, most runs need none

    return float(stdtrit(df, 0.5 + level / 2))


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def replication_interval(
    value: float | None, rounds: Sequence[float | None], level: float = LEVEL
) -> Interval | None:
    """`value` (the figure over every round) plus or minus t x s / sqrt(R) of its `rounds`'
    figures. None with fewer than two rounds, or a round without the figure."""
    if value is None or len(rounds) < 2 or any(r is None for r in rounds):
        return None
    found = [float(r) for r in rounds if r is not None]
    half = _t(level, len(found) - 1) * math.sqrt(_variance(found) / len(found))
    return Interval(value - half, value + half)


@dataclass(frozen=True, slots=True)
class Welch:
    """Two runs' difference in a figure, its standard error and degrees of freedom."""

    difference: float
    se: float
    df: float

    def interval(self, level: float = LEVEL) -> Interval:
        half = _t(level, self.df) * self.se
        return Interval(self.difference - half, self.difference + half)

    def p_value(self) -> float:
        """Two-sided: how often a difference this far from 0 comes of noise alone."""
        if self.se == 0:
            return 1.0 if self.difference == 0 else 0.0
        from scipy.special import stdtr  # imported here: as in `_t`

        return float(2 * stdtr(self.df, -abs(self.difference) / self.se))


def welch(
    difference: float, base: Sequence[float | None], other: Sequence[float | None]
) -> Welch | None:
    """`difference` (the other run's figure minus the base's) with its noise from each
    side's round figures (module docstring). None when neither side has two rounds with the
    figure."""
    a = [float(v) for v in base if v is not None]
    b = [float(v) for v in other if v is not None]
    if len(a) != len(base) or len(b) != len(other) or max(len(a), len(b)) < 2:
        return None
    if min(len(a), len(b)) < 2:
        spread = _variance(a if len(a) >= 2 else b)
        return Welch(
            difference,
            math.sqrt(spread * (1 / len(a) + 1 / len(b))),
            max(len(a), len(b)) - 1,
        )
    va, vb = _variance(a) / len(a), _variance(b) / len(b)
    se = math.sqrt(va + vb)
    # Welch-Satterthwaite; rounds with no spread at all on either side: any df will do
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
    return Welch(difference, se, df)


def welch_interval(
    difference: float,
    base: Sequence[float | None],
    other: Sequence[float | None],
    level: float = LEVEL,
) -> Interval | None:
    """The `level` interval of `welch`."""
    found = welch(difference, base, other)
    return None if found is None else found.interval(level)
