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
from harness.present.plots.style import LINESTYLES, MARKERS, color, fmt_value, new_figure
from harness.present.plots.subjects import Subject, run_label, transports_of
from harness.present.plots.sweep_axes import log_axes
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
    all_rates: list[float] = []
    references: list[tuple[float, float, str]] = []
    for k, s in enumerate(subjects):
        marker, style = MARKERS[k % 5], LINESTYLES[k % 4]
        for name in transports_of([s]):
            intervals, rates, delays = _poll_series(s.run, name)
            if intervals.size == 0:
                continue
            all_rates.extend(rates)
            if name not in paced:
                x, y = float(np.median(rates)), float(np.median(delays))
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
            label = run_label(subjects, k, name)
            top.plot(
                rates,
                delays,
                marker=marker,
                linestyle=style,
                linewidth=2,
                markersize=8,
                color=color(name),
                label=label,
            )
            for x, y, interval in zip(rates, delays, intervals, strict=True):
                top.annotate(
                    f"{fmt_value(interval)} ms",
                    (x, y),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=9,
                    color=color(name),
                )
            for ax, values in ((delay_ax, delays), (rate_ax, rates)):
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
    intervals = np.asarray(sorted({float(p.value) for s in subjects for p in s.run.points}))  # type: ignore[arg-type]
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
