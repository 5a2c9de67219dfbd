"""Charts of a concurrency sweep: latency, and tokens per second delivered, against the
number of streams in flight."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.analyse.metrics import TransportSummary
from harness.analyse.results import RunResult
from harness.present.plots.style import (
    LINESTYLES,
    LOG_FLOOR_MS,
    MARKERS,
    color,
    fmt_value,
    new_figure,
)
from harness.present.plots.subjects import Subject, run_label, transports_of
from harness.present.plots.sweep_axes import axis_value, log_axes, series


def concurrency_latency(subjects: Sequence[Subject], title: str) -> Figure:
    """How latency holds up under load: time to first token (left) and transport-added delay
    per token (right) against the number of streams in flight, both axes log scale; solid
    lines are medians (p50), dashed lines the 99th percentile. Flat lines scale; lines that
    bend upwards mark where the transport (or this machine's two cores) saturates."""
    fig = new_figure(title, width=12, height=5.8)
    axes = fig.subplots(1, 2)
    values = sorted({axis_value(p) for s in subjects for p in s.run.points})
    for ax, key, what in (
        (axes[0], "ttft_ms", "time to first token (ms, log scale)"),
        (axes[1], "added_delay_ms", "added delay per token (ms, log scale)"),
    ):
        for k, s in enumerate(subjects):
            for name in transports_of([s]):
                for stat, style in (("p50", "-"), ("p99", "--")):
                    xs, ys = series(s.run, name, _statistic(key, stat))
                    ax.plot(
                        xs,
                        np.maximum(ys, LOG_FLOOR_MS),
                        linestyle=style,
                        marker=MARKERS[k % 5],
                        color=color(name),
                        linewidth=2 if stat == "p50" else 1.3,
                        label=run_label(subjects, k, name) if stat == "p50" else None,
                    )
        log_axes(ax, "concurrent streams (log scale)", what, values)
    axes[0].legend(loc="upper left", title="solid p50, dashed p99")
    return fig


def _statistic(figure: str, stat: str) -> Callable[[TransportSummary], float | None]:
    """One statistic (`p50`, `p99`) of one latency figure of a transport's summary."""
    return lambda summary: getattr(getattr(summary, figure), stat)


def stream_rate(run: RunResult) -> float | None:
    """One stream's own token rate at the sweep's lowest concurrency: tokens the source
    emitted / (last emit - scheduled send), over every stream of every transport there."""
    lowest = min(run.points, key=axis_value)
    tokens, seconds = 0, 0.0
    for phase in lowest.phases.values():
        for record in phase.requests:
            emits = [e for e in record.emit_ns if e is not None]
            if emits:
                tokens += record.source_tokens
                seconds += (max(emits) - record.scheduled_ns) / 1e9
    return tokens / seconds if seconds > 0 else None


def concurrency_throughput(subjects: Sequence[Subject], title: str) -> Figure:
    """Tokens per second delivered to all clients together (y) against the demand (x): the
    streams in flight times one stream's own rate, measured at the lowest concurrency. On
    the dashed diagonal every stream gets its tokens as fast as the source makes them; where
    a line falls below it, the transport (or this machine) cannot keep up."""
    fig = new_figure(title, width=10, height=6.2)
    ax = fig.add_subplot()
    seen: list[float] = []
    rates: list[str] = []
    for k, s in enumerate(subjects):
        rate = stream_rate(s.run)
        if rate is None:
            continue
        rates.append(f"{rate:.0f}")
        for n, name in enumerate(transports_of([s])):
            xs, ys = series(s.run, name, lambda m: m.aggregate_tokens_per_s)
            demand = xs * rate
            ax.plot(
                demand,
                ys,
                marker=MARKERS[k % 5],
                linestyle=LINESTYLES[k % 4],
                color=color(name),
                linewidth=2,
                label=run_label(subjects, k, name),
            )
            seen.extend(demand)
            seen.extend(ys)
            if k == 0 and n == 0:
                for x, c in zip(demand, xs, strict=True):
                    ax.annotate(
                        f"{fmt_value(c)} stream{'' if c == 1 else 's'}",
                        (x, x),
                        textcoords="offset points",
                        xytext=(-8, 8),
                        ha="right",
                        fontsize=9,
                        color="#555555",
                    )
    positive = [v for v in seen if v > 0]
    if positive:
        low, high = min(positive) / 2, max(positive) * 2
        ax.plot([low, high], [low, high], color="#888888", linestyle="--", label="demand met")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
    log_axes(
        ax,
        f"demand: streams in flight × one stream's rate ({' / '.join(rates)} tok/s), tok/s",
        "tokens per second delivered, all streams (log scale)",
    )
    ax.legend(loc="upper left")
    return fig
