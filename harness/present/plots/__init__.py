"""Charts, drawn from saved results only (`harness.analyse.results.load_run`), as PNG and SVG.

Each transport keeps one colour across every chart (the transport registry's); every
chart's title names the scenario. Per-point charts show one point of a run: a plain run's
only point, or a sweep's representative point (`representative`). Sweep charts show every
point of a sweep of their axis. Every chart takes one or more `Subject`s, so
`harness.analyse.compare` overlays several runs with the same code: colour says the
transport, line style / marker / hatch says the run. Each chart function's docstring says
how to read the chart; reports show it as the caption.

One module per job: `style` (look, colours, making and saving a figure), `subjects` (what
a chart shows), `titles`, `chart` (what a chart is), one module per chart family
(`latency_cdfs`, `delay_violins`, `race_timeline`, `cost_bars`, `concurrency_sweep`,
`poll_sweep`, `batch_sweep`, `loss_sweep`, sharing `sweep_axes` and `tradeoff`), `catalog`
(every chart)
and `render` (to files).
"""

from __future__ import annotations

from harness.present.plots.catalog import CHARTS, charts_for
from harness.present.plots.chart import Chart, DrawFn, DrawnChart
from harness.present.plots.concurrency_sweep import (
    concurrency_latency,
    concurrency_throughput,
    stream_rate,
)
from harness.present.plots.cost_bars import cost, cpu
from harness.present.plots.delay_violins import added_delay
from harness.present.plots.latency_cdfs import MAX_CDF_POINTS, itl_cdf, source_gaps_ms, ttft_cdf
from harness.present.plots.loss_sweep import has_loss_sweep, loss_sweep, packet_loss_pct
from harness.present.plots.poll_sweep import poll_interval, requests_per_s_per_stream
from harness.present.plots.race_timeline import race, race_index
from harness.present.plots.render import draw, draw_all, draw_charts, draw_run
from harness.present.plots.style import (
    FORMATS,
    GAP_FLOOR_MS,
    HATCHES,
    LINESTYLES,
    LOG_FLOOR_MS,
    MARKERS,
    PNG_DPI,
    SOURCE_COLOR,
    STYLE,
    color,
)
from harness.present.plots.subjects import Subject, representative, subject, transports_of
from harness.present.plots.titles import context, describe

__all__ = [
    "CHARTS",
    "FORMATS",
    "GAP_FLOOR_MS",
    "HATCHES",
    "LINESTYLES",
    "LOG_FLOOR_MS",
    "MARKERS",
    "MAX_CDF_POINTS",
    "PNG_DPI",
    "SOURCE_COLOR",
    "STYLE",
    "Chart",
    "DrawFn",
    "DrawnChart",
    "Subject",
    "added_delay",
    "charts_for",
    "color",
    "concurrency_latency",
    "concurrency_throughput",
    "context",
    "cost",
    "cpu",
    "describe",
    "draw",
    "draw_all",
    "draw_charts",
    "draw_run",
    "has_loss_sweep",
    "itl_cdf",
    "loss_sweep",
    "packet_loss_pct",
    "poll_interval",
    "race",
    "race_index",
    "representative",
    "requests_per_s_per_stream",
    "source_gaps_ms",
    "stream_rate",
    "subject",
    "transports_of",
    "ttft_cdf",
]
