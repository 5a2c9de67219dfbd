"""What a chart is: a file stem, a title and a draw function (whose docstring says how to
read the chart; reports show it as the caption), and what drawing one produced."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from harness.analyse.results import RunResult
from harness.present.plots.subjects import Subject

DrawFn = Callable[[Sequence[Subject], str], Figure]


@dataclass(frozen=True, slots=True)
class Chart:
    stem: str
    title: str
    draw: DrawFn
    sweep_axis: str | None = None  # drawn only for a sweep of this axis
    needs: Callable[[RunResult], bool] | None = None  # drawn only for runs it holds for

    @property
    def caption(self) -> str:
        return " ".join((inspect.getdoc(self.draw) or "").split())

    @property
    def every_run(self) -> bool:
        """Drawn for every run: neither a sweep chart nor one that needs something."""
        return self.sweep_axis is None and self.needs is None

    def applies_to(self, runs: Sequence[RunResult]) -> bool:
        if self.needs is not None and not all(self.needs(r) for r in runs):
            return False
        return self.sweep_axis is None or all(r.sweep_axis == self.sweep_axis for r in runs)


@dataclass(frozen=True, slots=True)
class DrawnChart:
    stem: str
    title: str
    caption: str
    png: Path
    svg: Path
