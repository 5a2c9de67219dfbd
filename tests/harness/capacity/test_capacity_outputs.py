"""What `bench.py capacity` shows, drawn from a synthetic capacity run: the chart (real
images), the self-contained page and the terminal table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from capacity_fakes import probe
from rich.console import Console
from synthetic_runs import assert_valid_images

from harness.capacity.assess import UNLOADED
from harness.capacity.chart import slo_ratio, source_text
from harness.capacity.figures import CapacityRun, conclude
from harness.capacity.report import capacity_table, probe_line, write_capacity_report
from harness.capacity.search import SearchLimits
from harness.capacity.slo import DesignDelay, Slo

LIMITS = SearchLimits(start=50, maximum=400, max_probes=4)


@pytest.fixture(scope="module")
def capacity_run() -> CapacityRun:
    sse = conclude(
        "sse",
        [
            probe("sse", 1, 1.0, role=UNLOADED, streams=10, steady_streams=9),
            *(probe("sse", c, 2.0) for c in (50, 100, 200, 400)),
        ],
        LIMITS,
        stopped="max",
    )
    websocket = conclude(
        "websocket",
        [
            probe("websocket", 1, 1.0, role=UNLOADED),
            probe("websocket", 50, 3.0),
            probe("websocket", 100, 70.0, superseded=True),
            probe("websocket", 100, 80.0, rerun=True),
            probe("websocket", 75, 10.0),
        ],
        LIMITS,
        stopped="probes",
    )
    short_poll = conclude(
        "short_poll",
        [probe("short_poll", 1, 99.0, role=UNLOADED)],
        LIMITS,
        stopped="unloaded",
        design=DesignDelay(100, "poll interval"),
        strict=True,
    )
    scenario = {"name": "synthetic", "source": {"kind": "mock", "preset": "chat", "ttft_ms": 100}}
    return CapacityRun(
        {"started_utc": "2025-01-01T00:00:00+00:00", "cpu_count": 2, "argv": ["capacity"]},
        scenario,
        Slo(strict=True),
        LIMITS,
        {"streams_per_probe": 2.0},
        [sse, websocket, short_poll],
    )


def test_the_chart_and_the_page_are_written(capacity_run: CapacityRun, tmp_path: Path) -> None:
    page_path = write_capacity_report(capacity_run, tmp_path)
    images = [tmp_path / "capacity.png", tmp_path / "capacity.svg"]
    assert_valid_images(images, ("sse", "websocket", "short_poll"))
    page = page_path.read_text(encoding="utf-8")
    assert page_path.name == "capacity.html"
    assert "data:image/png;base64," in page
    assert not re.search(r"(src|href)=\"https?:", page)  # self-contained: nothing fetched
    for text in (
        "<h2>Capacity</h2>",
        "≥ 400",  # never failed: a lower bound
        "at 100: added delay p99 80 ms &gt; 50 ms",
        "by design: short_poll waits up to its poll interval, 100 ms",
        "(re-run below)",
        "<dt>streams per core</dt>",  # the definitions, from the module docstring
        "source mock chat (first token 100 ms)",
    ):
        assert text in page, text


def test_the_table_names_capacity_limit_and_figures(capacity_run: CapacityRun) -> None:
    console = Console(record=True, width=240)
    console.print(capacity_table(capacity_run, "capacity"))
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "≥ 400" in rows["sse"] and "1,250" in rows["sse"]  # 400 / (1.6 s / 5 s)
    assert "75" in rows["websocket"] and "at 100: added delay p99 80 ms" in rows["websocket"]
    assert "fails even unloaded" in rows["short_poll"]
    assert "20.0 ± 0.0" in rows["sse"]  # KiB per stream: the synthetic slope


def test_streams_per_core_in_the_table_is_capacity_over_cores(capacity_run: CapacityRun) -> None:
    sse = capacity_run.cell("sse")
    assert sse.server_cores_busy == pytest.approx(0.004 * 400 / 5)
    assert sse.streams_per_core == pytest.approx(400 / (0.004 * 400 / 5))  # 1,250


def test_a_probe_line_says_pass_or_what_failed(capacity_run: CapacityRun) -> None:
    failed = capacity_run.cell("websocket").probes[3]
    line = probe_line(failed, 4)
    assert "100 in flight, 200 streams" in line and "FAIL" in line
    assert "added delay p99 80 ms > 50 ms" in line
    assert "pass" in probe_line(capacity_run.cell("sse").probes[0], 1)
    assert slo_ratio(failed) == pytest.approx(80 / 50)


def test_the_source_line_names_preset_and_overrides() -> None:
    scenario = {"source": {"kind": "mock", "preset": "chat", "tokens_per_s": 50.0}}
    assert source_text(scenario) == "source mock chat (50 tok/s)"
    assert source_text({"source": {"kind": "trace", "trace": "t.jsonl"}}) == "source trace t.jsonl"
