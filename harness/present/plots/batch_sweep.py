"""The chart of a `batch_ms` sweep: the webhook trade-off between POSTs per stream and added
delay, for the transports the batch window paces (the registry's `callback` kind), with
the other transports as references."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from harness.analyse.results import RunResult
from harness.present.plots.style import LOG_FLOOR_MS, fmt_value, new_figure
from harness.present.plots.subjects import Subject
from harness.present.plots.tradeoff import interval_tradeoff
from transports import TRANSPORTS, Kind


def _batch_series(run: RunResult, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(batch_ms, requests per stream, mean added delay) over the sweep's points."""
    windows, requests, delays = [], [], []
    for point in run.points:
        summary = point.summaries.get(name)
        if summary is None or not isinstance(point.value, int | float):
            continue
        delay = summary.added_delay_ms.mean
        if delay is not None and summary.requests_per_stream > 0:
            windows.append(float(point.value))
            requests.append(summary.requests_per_stream)
            delays.append(max(delay, LOG_FLOOR_MS))
    return np.asarray(windows), np.asarray(requests), np.asarray(delays)


def _window_axis(ax: Axes, windows: np.ndarray, ylabel: str) -> None:
    """batch_ms on a symmetric log scale (0, one POST per token, has a place), each value
    labelled."""
    positive = windows[windows > 0]
    ax.set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 1.0)
    ax.set_xticks(list(windows), [fmt_value(round(float(w), 1)) for w in windows])
    ax.set_xlabel("batch_ms (symmetric log scale; 0: one POST per token)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def batch_window(subjects: Sequence[Subject], title: str) -> Figure:
    """Top: what the webhook batch window trades. Mean added delay per token against POSTs
    per stream, both log scale; each webhook point is labelled with its batch_ms (0: one POST
    per token, the fewest milliseconds and the most requests). The transports the window
    does not touch are drawn once each, at their median over the sweep, as references.
    Bottom left: the webhook's mean added delay follows about half the window (dotted: a
    token waits from its emit to the window's close, between the whole window and nothing)
    plus the cost of one POST; bottom right: its requests per stream (the subscription and
    every POST) fall as the window grows."""
    fig = new_figure(title, width=11, height=10)
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    top = fig.add_subplot(grid[0, :])
    delay_ax, posts_ax = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    batched = TRANSPORTS.of_kind(Kind.CALLBACK)
    all_windows, _ = interval_tradeoff(subjects, top, (delay_ax, posts_ax), _batch_series, batched)
    top.set_xscale("log")
    top.set_yscale("log")
    top.set_xlabel("HTTP requests per stream (log scale)")
    top.set_ylabel("mean added delay per token (ms, log scale)")
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="upper right")
    windows = np.asarray(sorted(set(all_windows)))
    if windows.size:
        delay_ax.plot(
            windows,
            np.maximum(windows / 2, LOG_FLOOR_MS),
            color="#888888",
            linestyle=":",
            label="batch_ms / 2",
        )
        _window_axis(delay_ax, windows, "mean added delay (ms)")
        _window_axis(posts_ax, windows, "HTTP requests per stream (log scale)")
        posts_ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: fmt_value(round(float(v), 1)))
        posts_ax.yaxis.set_major_formatter(plain)
        posts_ax.yaxis.set_minor_formatter(plain)
        delay_ax.legend(loc="upper left")
        posts_ax.legend(loc="upper right")
    return fig
