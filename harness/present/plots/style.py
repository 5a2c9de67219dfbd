"""The charts' shared look, and making and saving a figure.

Matplotlib draws to files only (Agg). Each transport keeps its registry colour across every
chart, and each server stack its own in the stack charts (`stacks.py`); line styles,
markers and hatches tell overlaid runs apart (run k takes entry k).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.analyse.intervals import Interval
from stacks import STACKS
from transports import TRANSPORTS

if TYPE_CHECKING:  # the rc keys matplotlib knows (not in every version the project allows)
    from matplotlib.typing import RcKeyType

SOURCE_COLOR = "#222222"
UNKNOWN_STACK_COLOUR = "#7f7f7f"
FORMATS = ("png", "svg")
PNG_DPI = 150  # reports show PNGs at 100 px per inch: sharp on high-density screens
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")
HATCHES = ("", "//", "..", "xx")
LOG_FLOOR_MS = 1e-3  # log axes: values below 1 microsecond are drawn at 1 microsecond
GAP_FLOOR_MS = 1e-2  # inter-token gaps below 10 microseconds (one read) drawn at 10 microseconds
STYLE: dict[RcKeyType, Any] = {
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "figure.titlesize": 12,
    "svg.fonttype": "none",  # SVG text stays text: smaller, searchable
}


def color(transport: str) -> str:
    """A transport's colour in every chart, from the transport registry (`direct`, the
    live reference, has its own fixed colour)."""
    return TRANSPORTS.colour(transport)


def stack_colour(stack: str) -> str:
    """A server stack's colour in the stack charts, from the stack registry (a stack it
    does not know, from another checkout's results: grey)."""
    return STACKS.get(stack).colour if stack in STACKS else UNKNOWN_STACK_COLOUR


def fmt_value(value: object) -> str:
    """A value as titles and tick labels write it: whole floats without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def new_figure(title: str, *, width: float = 10, height: float = 5.8) -> Figure:
    """A figure with the title wrapped to its width (long scenario lines would be cut)."""
    fig = plt.figure(figsize=(width, height), layout="constrained")
    columns = int(width * 9.5)
    fig.suptitle("\n".join(textwrap.fill(line, columns) for line in title.splitlines()))
    return fig


def save(fig: Figure, out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Write `fig` as `<stem>.png` and `<stem>.svg` in `out_dir`, then close it."""
    png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
    fig.savefig(png, dpi=PNG_DPI)
    fig.set_layout_engine("none")  # the SVG keeps the PNG's layout instead of solving it again
    fig.savefig(svg)
    plt.close(fig)
    return png, svg


def whisker(ax: Axes, x: float, value: float, interval: Interval | None) -> None:
    """The 95% interval of a bar's value, as an error bar (none without an interval)."""
    if interval is None:
        return
    below, above = max(value - interval.lo, 0.0), max(interval.hi - value, 0.0)
    ax.errorbar(x, value, yerr=[[below], [above]], fmt="none", ecolor="#222222", capsize=3)
