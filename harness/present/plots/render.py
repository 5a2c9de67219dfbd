"""Drawing charts to files: one chart, every chart that applies to some subjects, or every
chart of one run, each as PNG and SVG under the shared style."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

from harness.analyse.results import RunResult
from harness.present.plots.catalog import charts_for
from harness.present.plots.chart import Chart, DrawnChart
from harness.present.plots.style import STYLE, save
from harness.present.plots.subjects import Subject, subject
from harness.present.plots.titles import context


def draw(chart: Chart, subjects: Sequence[Subject], out_dir: Path) -> DrawnChart:
    with matplotlib.rc_context(STYLE):
        title = f"{chart.title}\n{context(subjects, sweep=chart.sweep_axis is not None)}"
        png, svg = save(chart.draw(subjects, title), out_dir, chart.stem)
    return DrawnChart(chart.stem, chart.title, chart.caption, png, svg)


def draw_charts(subjects: Sequence[Subject], out_dir: Path) -> list[DrawnChart]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [draw(chart, subjects, out_dir) for chart in charts_for([s.run for s in subjects])]


def draw_run(run: RunResult, out_dir: Path) -> list[DrawnChart]:
    """Every chart that applies to one run, written to `out_dir` as PNG and SVG."""
    return draw_charts([subject(run)], out_dir)


def draw_all(run: RunResult, out_dir: Path) -> list[Path]:
    return [path for drawn in draw_run(run, out_dir) for path in (drawn.png, drawn.svg)]
