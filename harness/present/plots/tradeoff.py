"""What the interval sweeps' charts share (the poll interval, the webhook batch window): the
trade-off between requests and added delay, with the transports the interval paces drawn
as labelled lines and the others once each, as references."""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

import numpy as np
from matplotlib.axes import Axes

from harness.analyse.results import RunResult
from harness.present.plots.style import LINESTYLES, MARKERS, color, fmt_value
from harness.present.plots.subjects import Subject, run_label, transports_of

TradeoffSeries = Callable[[RunResult, str], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""(interval values, requests measure, mean added delay) of one transport over a sweep."""


def interval_tradeoff(
    subjects: Sequence[Subject],
    top: Axes,
    lower: tuple[Axes, Axes],
    series: TradeoffSeries,
    paced: Container[str],
) -> tuple[list[float], list[float]]:
    """On `top`, each paced transport's added delay against its requests measure, each point
    labelled with its interval; each other transport once, at its median over the sweep,
    its name fanned out beside it. On `lower` (delay, requests), each paced transport's
    values against the interval. Returns the paced transports' interval values and every
    drawn transport's requests measure."""
    delay_ax, requests_ax = lower
    references: list[tuple[float, float, str]] = []
    paced_intervals: list[float] = []
    all_requests: list[float] = []
    for k, s in enumerate(subjects):
        marker, style = MARKERS[k % 5], LINESTYLES[k % 4]
        for name in transports_of([s]):
            intervals, requests, delays = series(s.run, name)
            if intervals.size == 0:
                continue
            all_requests.extend(requests)
            if name not in paced:
                x, y = float(np.median(requests)), float(np.median(delays))
                top.plot(
                    [x],
                    [y],
                    marker=marker,
                    markersize=11,
                    linestyle="none",
                    color=color(name),
                    label=run_label(subjects, k, f"{name} (reference)"),
                )
                references.append((y, x, name))
                continue
            paced_intervals.extend(intervals)
            label = run_label(subjects, k, name)
            top.plot(
                requests,
                delays,
                marker=marker,
                linestyle=style,
                linewidth=2,
                markersize=8,
                color=color(name),
                label=label,
            )
            for x, y, interval in zip(requests, delays, intervals, strict=True):
                top.annotate(
                    f"{fmt_value(interval)} ms",
                    (x, y),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=9,
                    color=color(name),
                )
            for ax, values in ((delay_ax, delays), (requests_ax, requests)):
                ax.plot(
                    intervals,
                    values,
                    marker=marker,
                    linestyle=style,
                    linewidth=2,
                    color=color(name),
                    label=label,
                )
    for j, (y, x, name) in enumerate(sorted(references)):  # fanned out: they often cluster
        top.annotate(
            name,
            (x, y),
            textcoords="offset points",
            xytext=(22, 16 * (j - (len(references) - 1) / 2)),
            va="center",
            fontsize=10,
            color=color(name),
            arrowprops={"arrowstyle": "-", "color": color(name), "linewidth": 0.8},
        )
    return paced_intervals, all_requests
