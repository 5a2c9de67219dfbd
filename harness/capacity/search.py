"""The bounded search for a transport's capacity, pure: grow geometrically from `start`
until a probe fails or `maximum` passes, then bisect until the bracket is within
`tolerance` of the fail or `max_probes` have run (`next_step`); `search` runs it against an
oracle that says pass or fail. The definitions are in `harness/capacity/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

TOLERANCE = 0.10  # bisect until (fail - pass) <= 10% of the fail

Outcome = tuple[int, bool]  # (concurrency, passed)


@dataclass(frozen=True, slots=True)
class SearchLimits:
    start: int = 50
    maximum: int = 4000
    max_probes: int = 8
    tolerance: float = TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Step:
    """The search's next move: a concurrency to probe, or None and why it stopped."""

    concurrency: int | None
    why: str  # grow | bisect | max (passed at the maximum) | bracketed | probes


def bracket(history: Sequence[Outcome], floor: int = 0) -> tuple[int, int | None]:
    """(highest pass below the lowest fail, lowest fail). `floor` is a concurrency known to
    pass (the unloaded probe's 1), 0 if none; the lowest fail is None when nothing failed."""
    fails = [c for c, passed in history if not passed]
    high = min(fails) if fails else None
    passes = [c for c, passed in history if passed and (high is None or c < high)]
    return max([floor, *passes]), high


def next_step(history: Sequence[Outcome], limits: SearchLimits, floor: int = 0) -> Step:
    """Where to probe next, given the probes so far (in any order). Pure: the whole search
    is this function and an oracle that says pass or fail."""
    low, high = bracket(history, floor)
    if high is None:
        if low >= limits.maximum:
            return Step(None, "max")
        candidate, why = (limits.start if low < limits.start else low * 2), "grow"
        candidate = min(candidate, limits.maximum)
    else:
        if high - low <= 1 or high - low <= limits.tolerance * high:
            return Step(None, "bracketed")
        candidate, why = (low + high) // 2, "bisect"
        if any(c == candidate for c, _ in history):  # only noise can bring this about
            return Step(None, "bracketed")
    if len(history) >= limits.max_probes:
        return Step(None, "probes")
    return Step(candidate, why)


def search(
    oracle: Callable[[int], bool | None], limits: SearchLimits, floor: int = 0
) -> tuple[list[Outcome], Step]:
    """Probe until `next_step` stops, or the oracle does (it returns None: out of time).
    Returns the outcomes in order and the step that ended the search (`why` "time" when
    the oracle stopped it)."""
    history: list[Outcome] = []
    while True:
        step = next_step(history, limits, floor)
        if step.concurrency is None:
            return history, step
        passed = oracle(step.concurrency)
        if passed is None:
            return history, Step(None, "time")
        history.append((step.concurrency, passed))
