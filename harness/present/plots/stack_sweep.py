"""Charts across server stacks: transports as groups along the x axis, a bar per stack within
each group in the stack's registry colour (`stacks.py`). `stack_costs` draws a sweep over
stacks (`--stack a,b` or `--sweep stack=a,b`); `grouped_bars` is the drawing that it and the
capacity run's stack chart (`harness.capacity.stack_chart`) share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.analyse.intervals import Interval
from harness.present.plots.style import HATCHES, new_figure, stack_colour, whisker
from harness.present.plots.subjects import Subject, transports_of

Reader = Callable[[str], float | None]  # transport -> a bar's height (None: no bar)
Marker = Callable[[str], str]  # transport -> a bar's hatch ("": none)
Spread = Callable[[str], Interval | None]  # transport -> the bar's 95% interval (None: none)


def _plain(transport: str) -> str:
    return ""


def _no_interval(transport: str) -> Interval | None:
    return None


@dataclass(frozen=True, slots=True)
class BarSeries:
    """One bar per transport group: a stack's (its colour), from `value(transport)` (None:
    no bar), hatched with `hatch(transport)`."""

    stack: str
    value: Reader
    hatch: Marker = _plain
    interval: Spread = _no_interval


def grouped_bars(
    ax: Axes, transports: Sequence[str], series: Sequence[BarSeries], digits: int = 0
) -> None:
    """A group of bars per transport, a bar per series side by side (in its stack's
    colour), each labelled with its value; a missing value leaves its slot empty."""
    width = 0.8 / max(1, len(series))
    for k, bars in enumerate(series):
        offset = -0.4 + width * (k + 0.5)
        for pos, transport in enumerate(transports):
            height = bars.value(transport)
            if height is None:
                continue
            ax.bar(
                pos + offset,
                height,
                width,
                color=stack_colour(bars.stack),
                hatch=bars.hatch(transport),
                edgecolor="white",
            )
            whisker(ax, pos + offset, height, bars.interval(transport))
            ax.annotate(
                f"{height:,.{digits}f}",
                (pos + offset, height),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(range(len(transports)), list(transports))
    ax.set_xlabel("transport")
    ax.margins(y=0.15)
    ax.grid(True, axis="y", alpha=0.3)


def stack_legend(stacks: Sequence[str]) -> list[Patch]:
    return [Patch(facecolor=stack_colour(s), label=s) for s in stacks]


def stack_costs(subjects: Sequence[Subject], title: str) -> Figure:
    """What each server stack costs per token delivered, per transport: server CPU time
    (user + system, its worker processes included) per 1,000 tokens (left) and bytes on
    the wire per token, both directions (right). A group per transport, a bar per stack in
    the stack's colour; overlaid runs are hatched. The stacks serve the same tokens through
    the same transports, so a taller bar is that framework and server's own overhead. Error
    bars: the 95% interval (bytes per token; CPU over the rounds of a repeated run)."""
    fig = new_figure(title, width=13, height=6)
    left, right = fig.subplots(1, 2)
    names = transports_of(subjects)
    stacks = list(dict.fromkeys(str(p.value) for s in subjects for p in s.run.points))
    for ax, key in ((left, "server_cpu_ms_per_1k_tokens"), (right, "wire_bytes_per_token")):
        series = [
            BarSeries(stack, _reader(s, stack, key), _hatched(k), _interval(s, stack, key))
            for k, s in enumerate(subjects)
            for stack in stacks
        ]
        grouped_bars(ax, names, series)
    left.set_ylabel("server CPU ms per 1,000 tokens")
    right.set_ylabel("bytes on the wire per token (both directions)")
    left.legend(handles=stack_legend(stacks), title="stack", loc="upper left")
    return fig


def _reader(subject: Subject, stack: str, key: str) -> Reader:
    """A transport's summary figure `key` at the sweep point of `stack` in the run."""
    summaries = next((p.summaries for p in subject.run.points if str(p.value) == stack), {})

    def read(transport: str) -> float | None:
        summary = summaries.get(transport)
        found = None if summary is None else getattr(summary, key)
        return None if found is None else float(found)

    return read


def _interval(subject: Subject, stack: str, key: str) -> Spread:
    """A transport's interval of figure `key` at the sweep point of `stack` in the run."""
    summaries = next((p.summaries for p in subject.run.points if str(p.value) == stack), {})

    def spread(transport: str) -> Interval | None:
        summary = summaries.get(transport)
        return None if summary is None else summary.interval(key)

    return spread


def _hatched(k: int) -> Marker:
    """Run k's hatch on an overlay (none for the first run)."""

    def hatch(transport: str) -> str:
        return HATCHES[k % len(HATCHES)]

    return hatch
