"""The chart of a path sweep over packet loss (`net:...,loss=X` at several X, e.g.
scenarios/loss.toml): added delay against the loss rate, one line per transport, HTTP
version and path around the loss, so HTTP/2's one connection and HTTP/1.1's many show
side by side as loss grows."""

from __future__ import annotations

import re
from collections.abc import Sequence

from matplotlib.figure import Figure

from harness.analyse.results import Point, RunResult
from harness.present.plots.style import new_figure
from harness.present.plots.subjects import Subject, run_label, transports_of

_LOSS = re.compile(r",?loss=[^,+]*")


def packet_loss_pct(point: Point, name: str) -> float | None:
    """The loss rate of the packet emulator on `name`'s path at this point (None: none)."""
    phase = point.phases.get(name)
    if phase is None:
        return None
    for figures in phase.path_parameters.values():
        if isinstance(figures, dict) and figures.get("emulator") == "packet":
            loss = figures.get("loss_pct")
            return float(loss) if isinstance(loss, int | float) else None
    return None


def has_loss_sweep(run: RunResult) -> bool:
    """A path sweep whose points put the packet emulator at two loss rates or more."""
    rates = {packet_loss_pct(point, name) for point in run.points for name in point.phases} - {None}
    return run.sweep_axis == "path" and len(rates) >= 2


def _line_of(point: Point, name: str) -> str:
    """The path without its loss, and the stream's HTTP versions: what a line is."""
    phase = point.phases[name]
    versions = sorted({r.http_version for r in phase.requests if r.http_version})
    around = _LOSS.sub("", str(point.value)).replace(":,", ":").rstrip(":")
    return f"{name} · {'/'.join(versions) or 'no HTTP'} · {around}"


def loss_sweep(subjects: Sequence[Subject], title: str) -> Figure:
    """Transport-added delay per token against the emulated link's packet loss (per packet
    and direction), one line per transport, HTTP version and path: p99 solid, p50 dashed.
    A lost TCP segment stalls everything behind it on its connection for about a round
    trip, so on one connection shared by many streams (HTTP/2) every stream waits for every
    loss: its p99 rises first, and at higher loss its median too, while with a connection
    per stream (HTTP/1.1) only the tail waits."""
    fig = new_figure(title, width=11, height=7)
    ax = fig.subplots()
    names = transports_of(subjects)
    n = 0
    for k, s in enumerate(subjects):
        lines: dict[str, list[tuple[float, float, float]]] = {}
        for point in s.run.points:
            for name in names:
                loss, summary = packet_loss_pct(point, name), point.summaries.get(name)
                dist = None if summary is None else summary.added_delay_ms
                if loss is None or dist is None or dist.p99 is None or dist.p50 is None:
                    continue
                lines.setdefault(_line_of(point, name), []).append((loss, dist.p50, dist.p99))
        for label, values in sorted(lines.items()):
            values.sort()
            xs = [v[0] for v in values]
            c = f"C{n % 10}"  # a line per path and version, not per transport
            n += 1
            ax.plot(
                xs,
                [v[2] for v in values],
                marker="o",
                color=c,
                label=run_label(subjects, k, f"{label} p99"),
            )
            ax.plot(
                xs,
                [v[1] for v in values],
                marker=".",
                linestyle="--",
                color=c,
                label=run_label(subjects, k, f"{label} p50"),
            )
    ax.set_xlabel("packet loss per direction (%)")
    ax.set_ylabel("added delay per token (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")
    return fig
