"""Conversations (agent loops): cumulative conversation time by turn, a line per transport
and variant (state, keep-alive)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from harness.analyse.conversations import point_conversations
from harness.analyse.results import RunResult
from harness.present.plots.style import color, new_figure
from harness.present.plots.subjects import Subject

STYLES = {
    ("client", True): "-",
    ("server", True): "--",
    ("client", False): ":",
    ("server", False): "-.",
}


def has_conversations(run: RunResult) -> bool:
    """The run measured conversations (`[conversation]` turns)."""
    return any(
        r.conversation is not None
        for point in run.points
        for phase in point.phases.values()
        for r in phase.requests
    )


def conversation_time(subjects: Sequence[Subject], title: str) -> Figure:
    """Left: the median time from a conversation's first request to the end of each turn,
    tool calls included: the slope is a turn's cost, and lines part where a transport pays
    more per turn. Right: the median turn overhead (time to first token from the tool's
    result, minus the source's own first-token delay) at each turn: re-sending a growing
    conversation makes it climb; a new connection a turn lifts it by the handshakes.
    Line style: solid client state with keep-alive, dashed server state, dotted and
    dash-dotted the same without keep-alive (a new connection a turn)."""
    fig = new_figure(title, width=12)
    left, right = fig.subplots(1, 2)
    for s in subjects:
        for f in point_conversations(s.phases):
            v = f.variant
            style = STYLES[(v.state, True if v.keepalive is None else v.keepalive)]
            name = v.label if not s.label else f"{s.label}: {v.label}"
            turns = range(1, f.turns + 1)
            left.plot(
                turns,
                [float("nan") if c is None else c / 1000 for c in f.cumulative_ms],
                style,
                color=color(v.transport),
                label=name,
                marker=".",
            )
            right.plot(
                turns,
                [float("nan") if o is None else o for o in f.overhead_ms],
                style,
                color=color(v.transport),
                marker=".",
            )
    left.set_xlabel("turn")
    left.set_ylabel("conversation time to the turn's end (s)")
    right.set_xlabel("turn")
    right.set_ylabel("turn overhead, median (ms)")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    if left.get_legend_handles_labels()[0]:
        left.legend(fontsize=7)
    return fig
