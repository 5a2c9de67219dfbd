"""The race: one representative request's tokens arriving over time on every transport,
next to the source emitting them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.analyse import metrics
from harness.measure.records import PhaseRecord, RequestRecord
from harness.present.plots.style import LINESTYLES, SOURCE_COLOR, color, new_figure
from harness.present.plots.subjects import Subject, run_label


def race_index(phases: dict[str, PhaseRecord]) -> int | None:
    """The representative request: among requests every transport completed without error,
    the one whose source timeline (last emit - scheduled send) is the median. Of a
    repeated run, the first round's."""
    complete: dict[int, list[float]] = {}
    for phase in phases.values():
        for record in phase.requests:
            emits = [e for e in record.emit_ns if e is not None]
            if record.error_kind is None and emits and record.repeat == 0:
                complete.setdefault(record.index, []).append(
                    (max(emits) - record.scheduled_ns) / metrics.NS_PER_MS
                )
    candidates = {k: float(np.median(v)) for k, v in complete.items() if len(v) == len(phases)}
    if not candidates:
        return None
    middle = float(np.median(list(candidates.values())))
    return min(candidates, key=lambda k: (abs(candidates[k] - middle), k))


def _record(phase: PhaseRecord, index: int) -> RequestRecord | None:
    return next((r for r in phase.requests if r.index == index and r.repeat == 0), None)


def race(subjects: Sequence[Subject], title: str) -> Figure:
    """One representative request (the same seed, so the same text and source timing on
    every transport): cumulative tokens received (y) against time since the request was
    scheduled (x). The black line is the source emitting them (median over transports); a
    curve hugging it adds nothing, a staircase is polling delivering tokens in batches. A
    cross marks the terminal message."""
    index = race_index(subjects[0].phases)
    fig = new_figure(title + ("" if index is None else f"\nrequest #{index}"))
    ax = fig.add_subplot()
    for k, s in enumerate(subjects):
        style = LINESTYLES[k % 4]
        emit_offsets: dict[int, list[float]] = {}
        for name, phase in s.phases.items():
            record = None if index is None else _record(phase, index)
            if record is None or not record.recv_ns:
                continue
            for i, emit in zip(record.token_index, record.emit_ns, strict=True):
                if emit is not None:
                    emit_offsets.setdefault(i, []).append(
                        (emit - record.scheduled_ns) / metrics.NS_PER_MS
                    )
            times = (np.asarray(record.recv_ns, dtype=np.int64) - record.scheduled_ns) / 1e6
            counts = np.arange(1, times.size + 1)
            ax.step(
                np.concatenate(([0.0], times)),
                np.concatenate(([0], counts)),
                where="post",
                color=color(name),
                linestyle=style,
                linewidth=2,
                label=run_label(subjects, k, name),
            )
            if record.end_ns is not None:
                end = (record.end_ns - record.scheduled_ns) / metrics.NS_PER_MS
                ax.plot([end], [counts[-1]], marker="x", color=color(name), markersize=9)
        if emit_offsets:
            source = np.sort([float(np.median(v)) for v in emit_offsets.values()])
            ax.step(
                np.concatenate(([0.0], source)),
                np.arange(0, source.size + 1),
                where="post",
                color=SOURCE_COLOR,
                linestyle=style,
                linewidth=1.2,
                label=run_label(subjects, k, "source (server emit)"),
            )
    ax.set_xlabel("time since the request was scheduled (ms)")
    ax.set_ylabel("tokens received (cumulative)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no stream delivered: no legend
        ax.legend(loc="lower right")
    return fig
