"""A run that sweeps the server stack: its report has the stack charts, with a group per
transport and a bar per stack in the stack's colour whose heights are the summaries'
figures, and its points are labelled by stack name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle
from support import TRANSPORT_NAMES
from synthetic_runs import METADATA, SCENARIO, synthetic_phase

from harness.analyse.results import Point, RunResult, load_run, save_run
from harness.present import plots, report
from harness.present.plots import CHARTS
from harness.present.plots.stack_sweep import stack_costs
from stacks import DEFAULT, STACKS

OTHER = next(s.name for s in STACKS if s.name != DEFAULT and not s.threaded)
CPU_FACTOR = {DEFAULT: 1.0, OTHER: 0.5}  # the other stack spends half the server CPU


def stack_sweep() -> RunResult:
    points = []
    for stack, factor in CPU_FACTOR.items():
        phases = {}
        for name in TRANSPORT_NAMES:
            phase = synthetic_phase(name, sweep_value=stack)
            phases[name] = replace(phase, server_cpu_s=(phase.server_cpu_s or 0) * factor)
        points.append(Point(stack, phases))
    scenario = {**SCENARIO, "sweep": {"axis": "stack", "values": list(CPU_FACTOR)}}
    return RunResult(METADATA, scenario, points, "stack")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult]:
    run_dir = tmp_path_factory.mktemp("stacks")
    save_run(stack_sweep(), run_dir)
    return run_dir, load_run(run_dir)


def test_the_cost_chart_draws_each_stacks_figures_in_its_colour(
    saved: tuple[Path, RunResult],
) -> None:
    _, run = saved
    figure = stack_costs([plots.subject(run)], "title")
    cpu, wire = figure.axes
    assert [t.get_text() for t in cpu.get_xticklabels()] == list(TRANSPORT_NAMES)
    legend = cpu.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == list(CPU_FACTOR)
    for ax, key in ((cpu, "server_cpu_ms_per_1k_tokens"), (wire, "wire_bytes_per_token")):
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(bars) == len(CPU_FACTOR) * len(TRANSPORT_NAMES)
        for point in run.points:  # bars are drawn stack by stack, transports in order
            colour = to_rgb(STACKS.get(str(point.value)).colour)
            mine = [b for b in bars if b.get_facecolor()[:3] == pytest.approx(colour)]
            expected = [getattr(point.summaries[n], key) for n in TRANSPORT_NAMES]
            assert [b.get_height() for b in mine] == pytest.approx(expected)
    default, other = (p.summaries["sse"].server_cpu_ms_per_1k_tokens for p in run.points)
    assert default is not None and other == pytest.approx(default / 2)


def test_the_report_has_the_stack_charts_and_labels_points_by_stack(
    saved: tuple[Path, RunResult],
) -> None:
    run_dir, run = saved
    charts = plots.charts_for([run])
    stems = {c.stem for c in charts if c.sweep_axis}
    assert stems == {"sweep_stack", "sweep_stack_latency"}
    drawn = [plots.draw(CHARTS["sweep_stack"], [plots.subject(run)], run_dir)]
    text = report.render_report(run, drawn, run_dir)
    assert '<figure id="sweep_stack">' in text
    for stack in CPU_FACTOR:
        assert f"<h3>stack = {stack}</h3>" in text
    assert f"sweeping stack over {DEFAULT}, {OTHER}" in (run_dir / "sweep_stack.svg").read_text()
