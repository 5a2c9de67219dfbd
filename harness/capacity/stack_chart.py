"""The stack chart of `bench.py capacity --stack a,b,...`: per transport (a group) and
server stack (a bar in the stack's colour), streams per server core, server CPU per 1,000
tokens and server memory per open stream; a bar whose capacity a threaded stack's thread
limit bound is hatched. Drawn from a `CapacityRun`, as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.capacity.chart import drawn
from harness.capacity.figures import CapacityRun, TransportCapacity
from harness.present.plots.chart import DrawnChart
from harness.present.plots.stack_sweep import (
    BarSeries,
    Marker,
    Reader,
    grouped_bars,
    stack_legend,
)
from harness.present.plots.style import new_figure

STEM = "capacity_stacks"
TITLE = "Capacity per server stack: streams per core, CPU and memory"
BOUND_HATCH = "//"
PANELS = (
    ("streams_per_core", "concurrent streams per server core"),
    ("server_cpu_ms_per_1k_tokens", "server CPU ms per 1,000 tokens at capacity"),
    ("kib_per_stream", "server KiB per open stream"),
)


def stack_capacity_chart(run: CapacityRun, title: str) -> Figure:
    """Per transport (a group) and server stack (a bar in the stack's colour): concurrent
    streams one server core holds within the SLO (left), the server's CPU per 1,000 tokens
    at that capacity (middle) and its memory per open stream (right; the slope of peak
    memory against concurrency). Server figures count the stack's worker processes too. A
    hatched bar is a threaded stack whose capacity stopped at its thread limit (workers x
    threads): it ran out of threads, not of CPU. A missing bar has no figure (the cell
    failed even unloaded, or too few probes completed)."""
    fig = new_figure(title, width=15, height=6)
    axes = fig.subplots(1, len(PANELS))
    transports, stacks = run.transports, run.stacks
    for ax, (field, label) in zip(axes, PANELS, strict=True):
        series = [BarSeries(s, _reader(run, s, field), _bound_hatch(run, s)) for s in stacks]
        grouped_bars(ax, transports, series)
        ax.set_ylabel(label)
    handles = [*stack_legend(stacks)]
    if any(c.bound_by_threads for c in run.cells):
        handles.append(Patch(facecolor="#cccccc", hatch=BOUND_HATCH, label="thread limit bound"))
    # below the panels: inside one, the legend would cover the bars' labels
    fig.legend(handles=handles, title="stack", loc="outside lower center", ncol=len(handles))
    return fig


def _cell(run: CapacityRun, transport: str, stack: str) -> TransportCapacity | None:
    try:
        return run.cell(transport, stack)
    except KeyError:
        return None


def _reader(run: CapacityRun, stack: str, field: str) -> Reader:
    def read(transport: str) -> float | None:
        cell = _cell(run, transport, stack)
        value = None if cell is None else getattr(cell, field)
        return None if value is None else float(value)

    return read


def _bound_hatch(run: CapacityRun, stack: str) -> Marker:
    def hatch(transport: str) -> str:
        cell = _cell(run, transport, stack)
        return BOUND_HATCH if cell is not None and cell.bound_by_threads else ""

    return hatch


def draw_stack_capacity(run: CapacityRun, out_dir: Path) -> DrawnChart:
    """`capacity_stacks.png` and `capacity_stacks.svg` in `out_dir`."""
    return drawn(stack_capacity_chart, run, out_dir, STEM, TITLE)
