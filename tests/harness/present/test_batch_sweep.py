"""A `batch_ms` sweep gets its chart: the webhook's POSTs per stream against its added delay,
from saved results alone, with the other transports as references."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from support import TRANSPORT_NAMES
from synthetic_runs import METADATA, MS, PER_POINT, SCENARIO, assert_valid_images, synthetic_phase

from harness.analyse.results import Point, RunResult, load_run, save_run
from harness.measure.records import PhaseRecord
from harness.present import plots

WINDOWS = [0, 20, 100]


def batched(phase: PhaseRecord, window: int) -> PhaseRecord:
    """The webhook at one window: tokens wait about half of it, POSTs fall with it."""
    requests = []
    for record in phase.requests:
        recv = [r + window * MS // 2 for r in record.recv_ns]
        posts = len(recv) if window == 0 else max(1, len(recv) * 10 // (10 + window))
        requests.append(replace(record, recv_ns=recv, end_ns=recv[-1] + MS, requests=posts + 2))
    return replace(phase, requests=requests)


def batch_sweep() -> RunResult:
    points = []
    for window in WINDOWS:
        phases = {name: synthetic_phase(name, sweep_value=window) for name in TRANSPORT_NAMES}
        phases["webhook"] = batched(phases["webhook"], window)
        points.append(Point(window, phases))
    scenario = {
        **SCENARIO,
        "name": "synthetic-batch",
        "sweep": {"axis": "batch_ms", "values": WINDOWS},
    }
    return RunResult(METADATA, scenario, points, "batch_ms")


def test_a_batch_sweep_adds_its_chart(tmp_path: Path) -> None:
    save_run(batch_sweep(), tmp_path)
    run = load_run(tmp_path)
    charts = plots.charts_for([run])
    assert {c.stem for c in charts} == PER_POINT | {"sweep_batch_ms"}
    chart = next(c for c in charts if c.stem == "sweep_batch_ms")
    drawn = plots.draw(chart, [plots.subject(run)], tmp_path)
    assert "POSTs per stream" in drawn.caption and "batch_ms" in drawn.title + drawn.caption
    assert_valid_images([drawn.png, drawn.svg])
    svg = drawn.svg.read_text(encoding="utf-8")
    for window in WINDOWS:
        assert f"{window} ms" in svg  # each webhook point labelled with its window


def test_titles_name_the_batch_window() -> None:
    run = batch_sweep()
    assert "sweep point batch_ms = 20 (of 0, 20, 100)" in plots.describe(run, run.points[1])
    assert "webhook batch_ms 20" in plots.describe(run, run.points[1])
    assert "sweeping batch_ms over 0, 20, 100" in plots.describe(run, None)


def test_an_overlay_of_two_batch_sweeps_draws(tmp_path: Path) -> None:
    chart = plots.CHARTS["sweep_batch_ms"]
    subjects = [plots.subject(batch_sweep(), "A"), plots.subject(batch_sweep(), "B")]
    drawn = plots.draw(chart, subjects, tmp_path)
    assert_valid_images([drawn.png, drawn.svg])
