"""Which transport is best at a figure, and when they are tied: a best value is named only
when its confidence interval does not overlap the runner-up's. Transports whose intervals
overlap the best one's are tied with it (without intervals: only equal values tie)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from harness.analyse.intervals import Interval

Better = Literal["lower", "higher"]


@dataclass(frozen=True, slots=True)
class Ranked:
    """The best value of a figure and the transports that share it (more than one: tied)."""

    value: float
    leaders: tuple[str, ...]

    @property
    def tied(self) -> bool:
        return len(self.leaders) > 1


def _indistinct(a: float, ia: Interval | None, b: float, ib: Interval | None) -> bool:
    if a == b:
        return True
    return ia is not None and ib is not None and ia.overlaps(ib)


def ranked(
    figures: Mapping[str, tuple[float | None, Interval | None]], better: Better = "lower"
) -> Ranked | None:
    """The best of `figures` (transport -> (value, interval)), with every transport
    indistinct from it; None when fewer than two transports have a value, or all of them
    are indistinct from the best (nothing sets one apart)."""
    present = {n: (v, i) for n, (v, i) in figures.items() if v is not None}
    if len(present) < 2:
        return None
    pick = min if better == "lower" else max
    best_name = pick(present, key=lambda n: present[n][0])
    best, interval = present[best_name]
    leaders = tuple(
        n for n, (v, i) in present.items() if n == best_name or _indistinct(best, interval, v, i)
    )
    if len(leaders) == len(present) and len({v for v, _ in present.values()}) == 1:
        return None  # all equal: no figure to call
    return Ranked(best, leaders)
