"""What sweep charts share: one transport's values over a sweep's points, and log-log axes
labelled with plain numbers."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullLocator

from harness.analyse.metrics import TransportSummary
from harness.analyse.results import Point, RunResult
from harness.present.plots.style import fmt_value


def axis_value(point: Point) -> float:
    """The value of a numeric sweep's axis (concurrency, a poll interval) at one point."""
    if point.value is None:
        raise TypeError("a sweep point without a value")
    return float(point.value)


def series(
    run: RunResult, name: str, value: Callable[[TransportSummary], float | None]
) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) over a sweep's points for one transport, skipping points without a value."""
    xs, ys = [], []
    for point in run.points:
        summary = point.summaries.get(name)
        y = None if summary is None else value(summary)
        if y is not None and isinstance(point.value, int | float):
            xs.append(float(point.value))
            ys.append(y)
    return np.asarray(xs), np.asarray(ys)


def log_axes(
    ax: Axes,
    xlabel: str,
    ylabel: str,
    ticks: Collection[float] | None = None,
    yticks: Collection[float] | None = None,
) -> None:
    """Log-log axes; given `ticks` / `yticks`, exactly those are labelled (plain numbers)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ticks is not None:
        ax.set_xticks(list(ticks), [fmt_value(round(t, 1)) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    if yticks is not None:
        ax.set_yticks(list(yticks), [fmt_value(round(t, 1)) for t in yticks])
        ax.yaxis.set_minor_locator(NullLocator())
    ax.grid(True, which="both", alpha=0.3)
