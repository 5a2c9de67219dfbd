"""The chart of `bench.py capacity`: streams per server core per transport (capacity
annotated), and how near each probe came to the SLO. Drawn from a `CapacityRun` (what
`capacity.json` holds), as PNG and SVG, in the look and colours of every other chart."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harness.capacity.assess import Probe
from harness.capacity.figures import CapacityRun, TransportCapacity
from harness.present.plots.chart import DrawnChart
from harness.present.plots.style import LINESTYLES, STYLE, color, fmt_value, new_figure, save

STEM = "capacity"
TITLE = "Capacity: concurrent streams per server core within the SLO"
RATIO_FLOOR, RATIO_CEILING = 1e-2, 1e2  # the right panel's y range


def slo_ratio(probe: Probe) -> float:
    """The probe's figure nearest to (or furthest beyond) its limit, as value / limit;
    clipped to the panel's range (a lost token over a limit of 0 is drawn at the top)."""
    ratios = [c.severity for c in probe.verdict.checks]
    worst = max(ratios, default=0.0)
    return float(
        np.clip(worst if math.isfinite(worst) else RATIO_CEILING, RATIO_FLOOR, RATIO_CEILING)
    )


def bar_label(result: TransportCapacity) -> str:
    """`400 streams, 0.62 cores` (`≥` when no probe failed), or why there is no number."""
    if not result.capacity:
        return "0 streams:\nfails unloaded" if result.stopped == "unloaded" else "0 streams"
    bound = "≥ " if result.limiting_concurrency is None else ""
    cores = result.server_cores_busy
    return f"{bound}{result.capacity:,} streams" + ("" if cores is None else f"\n{cores:.2f} cores")


def capacity_chart(run: CapacityRun, title: str) -> Figure:
    """Left: concurrent streams one server core holds within the SLO (the capacity divided
    by the server cores busy at it), per transport; each bar is labelled with the capacity
    and the cores it kept busy. A transport with no bar failed the SLO even unloaded, or
    used no measurable CPU. Right: every probe of the search, concurrency against how near
    it came to the SLO (its figure nearest its limit, value / limit; above 1 fails); dots
    passed, crosses failed, pale marks failed on timing alone and were re-run; with several
    server stacks, a bar and a line per transport and stack (line styles tell the stacks
    apart)."""
    fig = new_figure(title, width=12, height=6)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
    cells, stacks = run.cells, run.stacks
    names = [run.name(c) for c in cells]  # with its stack when the run has several
    heights = [c.streams_per_core or 0.0 for c in cells]
    left.bar(range(len(cells)), heights, color=[color(c.transport) for c in cells], width=0.6)
    for pos, cell in enumerate(cells):
        left.annotate(
            bar_label(cell),
            (pos, heights[pos]),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    left.set_xticks(range(len(names)), names, rotation=20)
    left.set_xlabel("transport" if len(stacks) < 2 else "transport on stack")
    left.set_ylabel("concurrent streams per server core")
    left.margins(y=0.25)
    left.grid(True, axis="y", alpha=0.3)

    for cell, name in zip(cells, names, strict=True):
        probes = sorted(cell.probes, key=lambda p: p.concurrency)
        final = [p for p in probes if not p.superseded]
        right.plot(
            [p.concurrency for p in final],
            [slo_ratio(p) for p in final],
            color=color(cell.transport),
            linestyle=LINESTYLES[stacks.index(cell.stack) % len(LINESTYLES)],
            linewidth=1.5,
            label=name,
        )
        for p in probes:
            right.scatter(
                p.concurrency,
                slo_ratio(p),
                marker="o" if p.passed else "x",
                s=36,
                color=color(cell.transport),
                alpha=0.35 if p.superseded else 1.0,
                zorder=3,
            )
    right.axhline(1.0, color="#444444", linestyle="--", linewidth=1)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_ylim(RATIO_FLOOR * 0.8, RATIO_CEILING * 1.25)
    right.set_xlabel("concurrent streams (log scale)")
    right.set_ylabel("nearest SLO figure / its limit (log scale; > 1 fails)")
    right.grid(True, which="both", alpha=0.3)
    marks = [
        Line2D([], [], marker="o", linestyle="", color="#555555", label="passed"),
        Line2D([], [], marker="x", linestyle="", color="#555555", label="failed"),
    ]
    handles, _ = right.get_legend_handles_labels()
    right.legend(handles=handles + marks, loc="upper left", fontsize=9)
    return fig


def source_text(scenario: dict[str, Any]) -> str:
    """`source mock chat (first token 100 ms, 50 tok/s, 40 tokens)` from a saved scenario."""
    source = scenario.get("source", {})
    kind = source.get("kind", "mock")
    what = source.get("trace") if kind == "trace" else source.get("preset")
    overrides = [
        f"{label}{fmt_value(source[key])}{unit}"
        for key, label, unit in (
            ("ttft_ms", "first token ", " ms"),
            ("tokens_per_s", "", " tok/s"),
            ("tokens_per_response", "", " tokens"),
        )
        if source.get(key) is not None
    ]
    return f"source {kind} {what}" + (f" ({', '.join(overrides)})" if overrides else "")


def context(run: CapacityRun) -> str:
    """The chart's second title line: scenario, source and SLO."""
    name = run.scenario.get("name", "run")
    return f"scenario {name} · {source_text(run.scenario)}\nSLO: {run.slo.text()}"


def drawn(
    chart: Callable[[CapacityRun, str], Figure],
    run: CapacityRun,
    out_dir: Path,
    stem: str,
    title: str,
) -> DrawnChart:
    """`chart` of `run` as `stem.png` and `stem.svg` in `out_dir`, captioned by its doc."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(STYLE):
        png, svg = save(chart(run, f"{title}\n{context(run)}"), out_dir, stem)
    caption = " ".join((inspect.getdoc(chart) or "").split())
    return DrawnChart(stem, title, caption, png, svg)


def draw_capacity(run: CapacityRun, out_dir: Path) -> DrawnChart:
    """`capacity.png` and `capacity.svg` in `out_dir`."""
    return drawn(capacity_chart, run, out_dir, STEM, TITLE)
