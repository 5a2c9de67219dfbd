"""What a chart shows: one or more `Subject`s (a run and the point of it that per-point
charts show), the transports they hold, and how an overlay names each run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.analyse.metrics import TransportSummary
from harness.analyse.results import Point, RunResult
from harness.measure.records import PhaseRecord


@dataclass(frozen=True, slots=True)
class Subject:
    """One run on a chart: its label on an overlay ("" when a chart shows one run) and the
    point that per-point charts show."""

    label: str
    run: RunResult
    point: Point

    @property
    def phases(self) -> dict[str, PhaseRecord]:
        return self.point.phases

    @property
    def summaries(self) -> dict[str, TransportSummary]:
        return self.point.summaries


def representative(run: RunResult) -> Point:
    """The point per-point charts show: a plain run's only point; in a sweep, the middle
    value (the lower of the two middle values for an even count)."""
    return run.points[(len(run.points) - 1) // 2]


def subject(run: RunResult, label: str = "") -> Subject:
    return Subject(label, run, representative(run))


def transports_of(subjects: Sequence[Subject]) -> list[str]:
    names: dict[str, None] = {}
    for s in subjects:
        names.update(dict.fromkeys(s.phases))
    return list(names)


def tag(subjects: Sequence[Subject], k: int) -> str:
    """A short name for run k on an overlay (A, B, ...), for labels on bars and violins."""
    return "" if len(subjects) == 1 else chr(ord("A") + k % 26)


def tagged(subjects: Sequence[Subject], k: int, note: str) -> str:
    """`note` under run k's tag on an overlay; just `note` when a chart shows one run."""
    return f"{tag(subjects, k)}\n{note}" if tag(subjects, k) else note


def run_label(subjects: Sequence[Subject], k: int, name: str) -> str:
    """A legend entry: `name`, followed by run k's label on an overlay."""
    label = subjects[k].label
    return f"{name} ({label})" if label else name
