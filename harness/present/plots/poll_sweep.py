"""The chart of a poll-interval sweep: the polling trade-off between added delay and
requests per second, for the transports paced by the poll interval (the registry's
`interval_paced`), with the other transports as references."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.analyse import metrics
from harness.analyse.results import RunResult
from harness.measure.records import PhaseRecord
from harness.present.plots.style import new_figure
from harness.present.plots.subjects import Subject
from harness.present.plots.sweep_axes import axis_value, log_axes
from harness.present.plots.tradeoff import interval_tradeoff
from transports import TRANSPORTS


def requests_per_s_per_stream(phase: PhaseRecord) -> float | None:
    """HTTP requests per second of a stream's life (requests / E2E), mean over streams."""
    rates = [
        r.requests / (e2e / 1000)
        for r in phase.requests
        if (e2e := metrics.e2e_ms(r)) is not None and e2e > 0
    ]
    return float(np.mean(rates)) if rates else None


def _poll_series(run: RunResult, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    intervals, rates, delays = [], [], []
    for point in run.points:
        phase, summary = point.phases.get(name), point.summaries.get(name)
        if phase is None or summary is None:
            continue
        rate, delay = requests_per_s_per_stream(phase), summary.added_delay_ms.mean
        if rate is not None and delay is not None and isinstance(point.value, int | float):
            intervals.append(float(point.value))
            rates.append(rate)
            delays.append(delay)
    return np.asarray(intervals), np.asarray(rates), np.asarray(delays)


def poll_interval(subjects: Sequence[Subject], title: str) -> Figure:
    """Top: the trade-off every polling user faces. Mean added delay per token against HTTP
    requests per second per stream, both log scale; each short-polling point is labelled with
    its interval, and the dotted line is the theory (delay = half the interval =
    1 / (2 × request rate)). The other transports do not depend on the interval: each is
    drawn once, at its median over the sweep, as a reference. Bottom: short polling's mean
    added delay follows half the interval (left) and its request rate follows 1 / interval
    (right)."""
    fig = new_figure(title, width=11, height=10)
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    top = fig.add_subplot(grid[0, :])
    delay_ax, rate_ax = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    paced = TRANSPORTS.interval_paced()
    _, all_rates = interval_tradeoff(subjects, top, (delay_ax, rate_ax), _poll_series, paced)
    intervals = np.asarray(sorted({axis_value(p) for s in subjects for p in s.run.points}))
    if all_rates:
        r = np.geomspace(min(all_rates) / 1.5, max(all_rates) * 1.5, 50)
        top.plot(r, 1000 / (2 * r), color="#888888", linestyle=":", label="theory: 1 / (2 × rate)")
    delay_ax.plot(intervals, intervals / 2, color="#888888", linestyle=":", label="interval / 2")
    rate_ax.plot(intervals, 1000 / intervals, color="#888888", linestyle=":", label="1 / interval")
    log_axes(
        top,
        "HTTP requests per second per stream (log scale)",
        "mean added delay per token (ms, log scale)",
    )
    top.legend(loc="upper right")
    log_axes(
        delay_ax,
        "poll interval (ms, log scale)",
        "mean added delay (ms, log scale)",
        intervals,
        intervals / 2,
    )
    log_axes(
        rate_ax,
        "poll interval (ms, log scale)",
        "requests/s per stream (log scale)",
        intervals,
        1000 / intervals,
    )
    delay_ax.legend(loc="upper left")
    rate_ax.legend(loc="upper right")
    return fig
