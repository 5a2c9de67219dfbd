"""Charts come from saved results alone and are real image files.

The synthetic runs here (a plain run and sweeps of concurrency and of the poll interval)
are shared with the report and comparison tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from clients import TRANSPORTS
from harness import plots
from harness.plots import CHARTS, draw_all
from harness.records import PhaseRecord, RequestRecord
from harness.results import Point, RunResult, load_run, save_run

MS = 1_000_000
TOKENS = 12
STREAMS = 6
PER_POINT = {c.stem for c in CHARTS.values() if c.sweep_axis is None}


def synthetic_phase(
    name: str,
    *,
    interval_ms: float = 100,
    load: float = 1.0,
    sweep_value: int | float | str | None = None,
) -> PhaseRecord:
    """Streams whose source emits a token every ~10 ms after ~50 ms; push transports add
    well under a millisecond (times `load`), short polling waits for its next poll."""
    rng = np.random.default_rng(len(name))
    requests = []
    for j in range(STREAMS):
        scheduled = j * 400 * MS
        emit = scheduled + np.cumsum(np.r_[50, rng.uniform(5, 15, TOKENS - 1)]) * MS
        if name == "short_poll":
            polls = np.ceil((emit - scheduled) / (interval_ms * MS)) * interval_ms * MS
            recv = scheduled + polls + 0.3 * MS * load
            requests_made = int(np.ceil((recv[-1] - scheduled) / (interval_ms * MS))) + 1
        elif name == "long_poll":
            recv = emit + rng.uniform(0.5, 3, TOKENS) * MS * load
            requests_made = TOKENS + 1
        else:
            recv = emit + rng.uniform(0.1, 0.6, TOKENS) * MS * load
            requests_made = 1
        recv = np.maximum.accumulate(recv).astype(np.int64)
        requests.append(
            RequestRecord(
                transport=name,
                index=j,
                seed=j,
                stream_id=f"{name}-{j}",
                scheduled_ns=scheduled,
                end_ns=int(recv[-1]) + MS,
                token_index=list(range(TOKENS)),
                recv_ns=[int(r) for r in recv],
                emit_ns=[int(e) for e in emit],
                token_bytes=[4] * TOKENS,
                chunk_sizes=[1] * TOKENS,
                source_tokens=TOKENS,
                bytes_sent=150 * requests_made,
                bytes_received=200 * requests_made + 30 * TOKENS,
                header_bytes=250 * requests_made,
                requests=requests_made,
                sweep_value=sweep_value,
            )
        )
    window = (STREAMS * 400 + 300) * MS
    cpu = {"short_poll": 0.05, "long_poll": 0.08}.get(name, 0.02) * load
    return PhaseRecord(name, 0, window, cpu, cpu * 1.5, sweep_value=sweep_value, requests=requests)


SCENARIO = {
    "name": "synthetic",
    "description": "made-up numbers for tests",
    "transports": list(TRANSPORTS),
    "requests": STREAMS,
    "concurrency": 1,
    "framing": "json",
    "poll_interval_ms": 100.0,
    "source": {"preset": "chat", "ttft_ms": 50.0},
}
METADATA = {"python": "3.11", "platform": "test", "cpu_count": 2, "started_utc": "then"}


def synthetic_run(load: float = 1.0) -> RunResult:
    phases = {name: synthetic_phase(name, load=load) for name in TRANSPORTS}
    return RunResult.single(METADATA, dict(SCENARIO), phases)


def synthetic_sweep(axis: str, values: list[int] | list[str], load: float = 1.0) -> RunResult:
    points = []
    for value in values:
        interval = float(value) if axis == "poll_interval_ms" else 100.0
        scale = load * (float(value) if axis == "concurrency" else 1.0)
        phases = {
            name: synthetic_phase(name, interval_ms=interval, load=scale, sweep_value=value)
            for name in TRANSPORTS
        }
        points.append(Point(value, phases))
    scenario = {**SCENARIO, "name": f"synthetic-{axis}", "sweep": {"axis": axis, "values": values}}
    return RunResult(METADATA, scenario, points, axis)


def assert_valid_images(paths: list[Path], transports: tuple[str, ...] = TRANSPORTS) -> None:
    for path in paths:
        assert path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), path
            height, width, _ = matplotlib.image.imread(path).shape  # decodes every pixel
            assert width > 500 and height > 300, path
        else:
            root = ET.parse(path).getroot()
            assert root.tag == "{http://www.w3.org/2000/svg}svg", path
            text = path.read_text(encoding="utf-8")
            for transport in transports:
                assert transport in text, (path, transport)


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
        ("framing", ["json", "openai"], set()),
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
    assert plots.source_gaps_ms(phases).size == len(TRANSPORTS) * STREAMS * (TOKENS - 1)


def test_results_round_trip(tmp_path: Path) -> None:
    run = synthetic_run()
    save_run(run, tmp_path)
    loaded = load_run(tmp_path)
    assert loaded.phases == run.phases
    assert loaded.summaries == run.summaries
    lines = (tmp_path / "summary.csv").read_text().count("\n")
    assert lines == 1 + len(TRANSPORTS)
