"""Charts of a sweep over named values (paths, framings): each transport side by side at
every value, so one run compares, say, loopback, nginx and an emulated 4G network."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.present.plots.style import HATCHES, LOG_FLOOR_MS, color, new_figure
from harness.present.plots.subjects import Subject, run_label, transports_of


def side_by_side(subjects: Sequence[Subject], title: str) -> Figure:
    """Each transport at each value of the swept axis, side by side: time to first token
    (top) and transport-added delay per token (bottom), medians as bars and the 99th
    percentile as a tick above each bar, log scale. Compare a transport's bars across
    values to see what the path (or framing) costs it; compare neighbouring bars to see
    which transport suffers least there. Overlaid runs are hatched."""
    fig = new_figure(title, width=13, height=8)
    axes = fig.subplots(2, 1, sharex=True)
    values = [str(p.value) for p in subjects[0].run.points]
    names = transports_of(subjects)
    slots = max(1, len(names) * len(subjects))
    width = 0.8 / slots
    for ax, key, what in (
        (axes[0], "ttft_ms", "time to first token (ms, log)"),
        (axes[1], "added_delay_ms", "added delay per token (ms, log)"),
    ):
        for k, s in enumerate(subjects):
            by_value = {str(p.value): p.summaries for p in s.run.points}
            for j, name in enumerate(names):
                offset = (j * len(subjects) + k - (slots - 1) / 2) * width
                p50s, p99s = [], []
                for value in values:
                    summary = by_value.get(value, {}).get(name)
                    dist = None if summary is None else getattr(summary, key)
                    p50s.append(np.nan if dist is None or dist.p50 is None else dist.p50)
                    p99s.append(np.nan if dist is None or dist.p99 is None else dist.p99)
                xs = np.arange(len(values)) + offset
                ax.bar(
                    xs,
                    np.maximum(p50s, LOG_FLOOR_MS),
                    width=width,
                    color=color(name),
                    hatch=HATCHES[k % len(HATCHES)],
                    edgecolor="white" if k == 0 else color(name),
                    label=run_label(subjects, k, name) if key == "ttft_ms" else None,
                )
                ax.plot(xs, np.maximum(p99s, LOG_FLOOR_MS), "_", color="black", markersize=10)
        ax.set_yscale("log")
        ax.set_ylabel(what)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[1].set_xticks(np.arange(len(values)), values)
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="bars p50, ticks p99")
    return fig
