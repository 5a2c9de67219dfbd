"""Charts come from saved results alone and are real image files.

The synthetic runs here (a plain run and sweeps of concurrency and of the poll interval)
are shared with the report and comparison tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import TRANSPORT_NAMES
from synthetic_runs import (
    MS,
    PER_POINT,
    STREAMS,
    TOKENS,
    assert_valid_images,
    synthetic_phase,
    synthetic_run,
    synthetic_sweep,
)

from harness.analyse.results import load_run, save_run
from harness.present import plots
from harness.present.plots import draw_all


def test_every_per_point_chart_is_written_from_saved_results(tmp_path: Path) -> None:
    save_run(synthetic_run(), tmp_path)
    paths = draw_all(load_run(tmp_path), tmp_path / "charts")
    assert {p.stem for p in paths} == PER_POINT
    assert sorted(p.suffix for p in paths) == sorted([".png", ".svg"] * len(PER_POINT))
    assert_valid_images(paths)


@pytest.mark.parametrize(
    ("axis", "values", "sweep_charts"),
    [
        ("concurrency", [1, 4, 16], {"sweep_concurrency_latency", "sweep_concurrency_throughput"}),
        ("poll_interval_ms", [25, 100, 400], {"sweep_poll_interval"}),
        ("framing", ["json", "openai"], {"sweep_framing"}),
        ("client", ["python", "browser"], {"sweep_client"}),
        ("path", ["loopback", "nginx", "net:4g"], {"sweep_path"}),
        ("stack", ["fastapi@uvicorn", "asgi@uvicorn"], {"sweep_stack", "sweep_stack_latency"}),
    ],
)
def test_sweeps_add_the_charts_of_their_axis(
    tmp_path: Path, axis: str, values: list[int] | list[str], sweep_charts: set[str]
) -> None:
    save_run(synthetic_sweep(axis, values), tmp_path)
    run = load_run(tmp_path)
    charts = plots.charts_for([run])
    assert {c.stem for c in charts} == PER_POINT | sweep_charts
    drawn = [plots.draw(c, [plots.subject(run)], tmp_path) for c in charts if c.sweep_axis]
    for chart in drawn:
        assert chart.caption and chart.title
    assert_valid_images([p for d in drawn for p in (d.png, d.svg)])


def test_titles_state_the_scenario_and_the_point() -> None:
    run = synthetic_sweep("concurrency", [1, 4, 16])
    point_title = plots.describe(run, plots.representative(run))
    assert "scenario synthetic-concurrency" in point_title
    assert "4 in flight" in point_title and "concurrency = 4 (of 1, 4, 16)" in point_title
    sweep_title = plots.describe(run, None)
    assert "sweeping concurrency over 1, 4, 16" in sweep_title
    assert "in flight" not in sweep_title


def test_request_rate_per_stream_is_requests_over_its_life() -> None:
    phase = synthetic_phase("short_poll", interval_ms=25)
    for k, record in enumerate(phase.requests):
        record.requests = 10 * (k + 1)
        record.end_ns = record.scheduled_ns + 2000 * MS  # E2E 2 s: 5, 10, 15, ... per s
    expected = np.mean([5 * (k + 1) for k in range(STREAMS)])
    assert plots.requests_per_s_per_stream(phase) == pytest.approx(expected)


def test_race_picks_a_request_every_transport_completed() -> None:
    run = synthetic_run()
    phases = dict(run.phases)
    phases["sse"].requests[0].error_kind = "timeout"
    index = plots.race_index(phases)
    assert index is not None and index != 0
    assert plots.source_gaps_ms(phases).size == len(TRANSPORT_NAMES) * STREAMS * (TOKENS - 1)


def test_results_round_trip(tmp_path: Path) -> None:
    run = synthetic_run()
    save_run(run, tmp_path)
    loaded = load_run(tmp_path)
    assert loaded.phases == run.phases
    assert loaded.summaries == run.summaries
    lines = (tmp_path / "summary.csv").read_text().count("\n")
    assert lines == 1 + len(TRANSPORT_NAMES)


def test_a_path_sweep_over_packet_loss_adds_the_loss_chart(tmp_path: Path) -> None:
    values = [f"{front}+net:rtt=60ms,loss={loss}%" for loss in (0.2, 2) for front in ("a", "b")]
    run = synthetic_sweep("path", values)
    for point in run.points:
        loss = float(str(point.value).rsplit("=", 1)[1].rstrip("%"))
        for phase in point.phases.values():
            phase.path_parameters = {"net": {"emulator": "packet", "loss_pct": loss}}
            for record in phase.requests:
                record.http_version = "HTTP/2" if str(point.value).startswith("a") else None
    save_run(run, tmp_path)
    loaded = load_run(tmp_path)
    assert plots.has_loss_sweep(loaded)
    point = loaded.points[-1]
    assert plots.packet_loss_pct(point, next(iter(point.phases))) == 2.0
    charts = plots.charts_for([loaded])
    assert {c.stem for c in charts} == PER_POINT | {"sweep_path", "sweep_path_loss"}
    drawn = plots.draw(plots.CHARTS["sweep_path_loss"], [plots.subject(loaded)], tmp_path)
    assert drawn.caption and drawn.title
    assert_valid_images([drawn.png, drawn.svg])
