"""The transport-added delay per token, as one violin per transport (and run)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.analyse import metrics
from harness.measure.records import PhaseRecord
from harness.present.plots.style import HATCHES, LOG_FLOOR_MS, color, new_figure
from harness.present.plots.subjects import Subject, tag, tagged, transports_of


def _added_delays(phase: PhaseRecord) -> np.ndarray:
    values = np.asarray([d for r in phase.requests for d in metrics.added_delay_ms(r)])
    return np.maximum(values, LOG_FLOOR_MS)


def added_delay(subjects: Sequence[Subject], title: str) -> Figure:
    """How long each token waited between the server emitting it and the client receiving
    it (log scale), one violin per transport: its width shows how common each delay is, the
    solid bar marks the median (p50) and the dashed bar the 99th percentile. Push transports
    add well under a millisecond; polling adds up to a poll interval."""
    fig = new_figure(title)
    ax = fig.add_subplot()
    names = transports_of(subjects)
    width = 0.8 / len(subjects)
    for k, s in enumerate(subjects):
        for pos, name in enumerate(names, start=1):
            if name not in s.phases:
                continue
            values = _added_delays(s.phases[name])
            if values.size == 0:
                continue
            x = pos - 0.4 + width * (k + 0.5)
            parts = ax.violinplot([values], positions=[x], showextrema=False, widths=width)
            for body in parts["bodies"]:  # type: ignore[attr-defined]  # stub: a list, not one
                body.set_facecolor(color(name))
                body.set_edgecolor(color(name))
                body.set_alpha(0.45)
                body.set_hatch(HATCHES[k % 4])
            p50, p99 = np.percentile(values, [50, 99])
            half = width * 0.4
            ax.plot([x - half, x + half], [p50, p50], color=color(name), linewidth=2.5)
            ax.plot([x - half, x + half], [p99, p99], color=color(name), linestyle="--")
            note = tagged(subjects, k, f"p50 {_short(p50)}\np99 {_short(p99)}")
            ax.annotate(note, (x + half, p50), fontsize=9, va="center")
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_xlim(0.5, len(names) + 0.7)
    ax.set_yscale("log")
    ax.set_ylabel("added delay per token (ms, log scale)\nclient receive − server emit")
    ax.set_xlabel("transport (solid bar p50, dashed bar p99; values in ms)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    if len(subjects) > 1:
        ax.legend(
            handles=[
                Patch(
                    facecolor="#bbbbbb",
                    hatch=HATCHES[k % 4],
                    label=f"{tag(subjects, k)}: {s.label}",
                )
                for k, s in enumerate(subjects)
            ],
            loc="upper right",
        )
    return fig


def _short(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
