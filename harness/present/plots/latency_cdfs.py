"""Latency distributions as cumulative curves: time to first token, and the gaps between
consecutive tokens next to the source's own gaps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.analyse import metrics
from harness.measure.records import PhaseRecord
from harness.present.plots.style import (
    GAP_FLOOR_MS,
    LINESTYLES,
    LOG_FLOOR_MS,
    SOURCE_COLOR,
    color,
    new_figure,
)
from harness.present.plots.subjects import Subject, run_label

MAX_CDF_POINTS = 2000  # a CDF with more samples is drawn through this many quantiles


def _cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ordered = np.sort(values)
    fraction = np.arange(1, ordered.size + 1) / ordered.size
    if ordered.size > MAX_CDF_POINTS:
        keep = np.unique(np.linspace(0, ordered.size - 1, MAX_CDF_POINTS).astype(int))
        return ordered[keep], fraction[keep]
    return ordered, fraction


def _draw_cdf(ax: Axes, values: np.ndarray, **style: Any) -> None:
    if values.size:
        x, y = _cdf(values)
        ax.step(x, y, where="post", linewidth=2, **style)


def _cdf_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no stream delivered: no legend
        ax.legend(loc="lower right")


def ttft_cdf(subjects: Sequence[Subject], title: str) -> Figure:
    """Share of streams (y) whose first token had arrived by a given time after the request
    was scheduled (x, log scale). Further left is faster; a steep curve means a consistent
    time to first token, a long tail to the right means some users wait much longer."""
    fig = new_figure(title)
    ax = fig.add_subplot()
    for k, s in enumerate(subjects):
        for name, phase in s.phases.items():
            values = np.asarray(
                [v for r in phase.requests if (v := metrics.ttft_ms(r)) is not None]
            )
            _draw_cdf(
                ax,
                np.maximum(values, LOG_FLOOR_MS),
                color=color(name),
                linestyle=LINESTYLES[k % 4],
                label=run_label(subjects, k, name),
            )
    _cdf_axes(ax, "time to first token (ms, log scale)", "fraction of streams")
    return fig


def source_gaps_ms(phases: dict[str, PhaseRecord]) -> np.ndarray:
    """The source's own inter-token gaps: differences of consecutive server emit stamps,
    pooled over every stream of every transport."""
    gaps: list[float] = []
    for phase in phases.values():
        for record in phase.requests:
            emits = sorted(e for e in record.emit_ns if e is not None)
            gaps.extend(np.diff(np.asarray(emits, dtype=np.int64)) / metrics.NS_PER_MS)
    return np.asarray(gaps)


def itl_cdf(subjects: Sequence[Subject], title: str) -> Figure:
    """Gaps between consecutive token arrivals (x, log scale) as a cumulative share (y), per
    transport, next to the gaps at which the source emitted them (black). A transport that
    keeps the model's rhythm lies on the source's curve; polling bunches tokens into few
    responses, so many gaps are near zero and the rest are a poll interval long."""
    fig = new_figure(title)
    ax = fig.add_subplot()
    for k, s in enumerate(subjects):
        style = LINESTYLES[k % 4]
        _draw_cdf(
            ax,
            np.maximum(source_gaps_ms(s.phases), GAP_FLOOR_MS),
            color=SOURCE_COLOR,
            linestyle=style,
            label=run_label(subjects, k, "source (server emit gaps)"),
        )
        for name, phase in s.phases.items():
            gaps = np.asarray([g for r in phase.requests for g in metrics.itl_ms(r)])
            _draw_cdf(
                ax,
                np.maximum(gaps, GAP_FLOOR_MS),
                color=color(name),
                linestyle=style,
                label=run_label(subjects, k, name),
                alpha=0.85,
            )
    _cdf_axes(
        ax,
        "gap between consecutive tokens (ms, log scale; gaps under 10 µs drawn at 10 µs)",
        "fraction of gaps",
    )
    if ax.get_legend_handles_labels()[0]:  # no stream delivered: no legend
        ax.legend(loc="center left")
    return fig
