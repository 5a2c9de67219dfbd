"""Capacity per transport and server stack: the cells a run searches (`--stack a,b`), the
thread limit of a threaded stack and when it bound the capacity, the table, the stack chart
and `capacity.json` (and the version before stacks), from synthetic cells and faked probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from capacity_fakes import probe as fake_probe
from capacity_fakes import synthetic_phase
from matplotlib.patches import Rectangle
from rich.console import Console
from synthetic_runs import assert_valid_images

from bench import build_parser
from harness.capacity import run as capacity_run
from harness.capacity.assess import UNLOADED, Probe
from harness.capacity.figures import CapacityRun, TransportCapacity, conclude
from harness.capacity.report import capacity_table, thread_limit_cell, write_capacity_report
from harness.capacity.run import CapacitySettings, run_capacity, stack_scenarios
from harness.capacity.search import SearchLimits
from harness.capacity.slo import Slo
from harness.capacity.stack_chart import stack_capacity_chart
from harness.cli.capacity import scenario_from_args
from harness.measure.records import PhaseRecord
from harness.measure.scenario import Scenario, with_overrides
from stacks import DEFAULT, STACKS

THREADED = next(s.name for s in STACKS if s.threaded)
PLAIN = next(s.name for s in STACKS if not s.threaded and s.name != DEFAULT)
LIMITS = SearchLimits(start=50, maximum=400, max_probes=8)


def probe(transport: str, concurrency: int, passed: bool, **changes: Any) -> Probe:
    return fake_probe(transport, concurrency, 2.0 if passed else 80.0, duration_s=1.0, **changes)


def cell(
    transport: str,
    stack: str,
    passes: list[int],
    fails: list[int],
    threads: int | None = None,
    cpu_s: float = 0.004,  # server CPU seconds per stream in flight, over a 5 s window
) -> TransportCapacity:
    """A cell whose probes pass at `passes` and fail at `fails` (after its unloaded one)."""
    probes = [probe(transport, 1, True, role=UNLOADED, server_cpu_s=cpu_s)]
    probes += [probe(transport, c, True, server_cpu_s=cpu_s * c) for c in passes]
    probes += [probe(transport, c, False, server_cpu_s=cpu_s * c) for c in fails]
    workers = None if threads is None else 1
    return conclude(
        transport,
        probes,
        LIMITS,
        stopped="bracketed",
        stack=stack,
        workers=workers,
        threads=threads,
    )


@pytest.fixture(scope="module")
def stacks_run() -> CapacityRun:
    cells = [
        cell("sse", DEFAULT, [50, 100], [200]),
        cell("sse", PLAIN, [50, 100, 150], [200], cpu_s=0.002),
        cell("sse", THREADED, [2, 4, 8], [9, 16], threads=8, cpu_s=0.008),  # at its 8 threads
        cell("websocket", DEFAULT, [50], [100], cpu_s=0.005),
        cell("websocket", THREADED, [2, 3], [4], threads=8, cpu_s=0.01),  # well below them
    ]
    scenario = {"name": "stacks", "source": {"kind": "mock", "preset": "chat"}}
    metadata = {"started_utc": "2025-01-01T00:00:00+00:00", "cpu_count": 2}
    return CapacityRun(metadata, scenario, Slo(), LIMITS, {}, cells)


def test_the_thread_limit_bound_a_capacity_that_stopped_at_it(stacks_run: CapacityRun) -> None:
    bound = stacks_run.cell("sse", THREADED)
    assert (bound.capacity, bound.limiting_concurrency, bound.thread_limit) == (8, 9, 8)
    assert bound.bound_by_threads and thread_limit_cell(bound) == "8 = 1 × 8: bound it"
    below = stacks_run.cell("websocket", THREADED)
    assert below.capacity == 3 and not below.bound_by_threads
    assert thread_limit_cell(below) == "8 = 1 × 8"
    plain = stacks_run.cell("sse", PLAIN)
    assert plain.thread_limit is None and not plain.bound_by_threads
    assert thread_limit_cell(plain) == "-"
    beyond = cell("short_poll", THREADED, [50, 100], [200], threads=8)  # polls free threads
    assert beyond.capacity == 100 and not beyond.bound_by_threads


def test_the_table_has_a_row_per_cell_with_stack_and_thread_limit(stacks_run: CapacityRun) -> None:
    console = Console(record=True, width=300)
    console.print(capacity_table(stacks_run, "capacity"))
    text = console.export_text()
    header = " ".join(line for line in text.splitlines() if line.startswith("┃"))
    assert "stack" in header and "thread limit" in header
    rows = [
        [part.strip() for part in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.startswith("│") and line.split("│")[2].strip() in STACKS
    ]
    assert [(r[0], r[1]) for r in rows] == [
        ("sse", DEFAULT),
        ("sse", PLAIN),
        ("sse", THREADED),
        ("websocket", DEFAULT),
        ("websocket", THREADED),
    ]
    by_cell = {(r[0], r[1]): r for r in rows}
    assert by_cell["sse", THREADED][2:4] == ["8", "8 = 1 × 8: bound it"]
    assert by_cell["websocket", THREADED][3] == "8 = 1 × 8"
    assert by_cell["sse", PLAIN][2:4] == ["150", "-"]
    # server cores busy at capacity: CPU over the 5 s window, 0.002 * 150 / 5 = 0.06
    assert by_cell["sse", PLAIN][5:7] == ["0.06", "2,500"]  # streams per core: 150 / 0.06
    assert by_cell["sse", THREADED][5:7] == ["0.01", "625"]  # 8 / (0.008 * 8 / 5)


def test_one_stack_shows_no_thread_column_and_draws_no_stack_chart(tmp_path: Path) -> None:
    run = CapacityRun({}, {"name": "one"}, Slo(), LIMITS, {}, [cell("sse", DEFAULT, [50], [100])])
    console = Console(record=True, width=240)
    console.print(capacity_table(run, "capacity"))
    assert "thread limit" not in console.export_text()
    write_capacity_report(run, tmp_path)
    assert (tmp_path / "capacity.png").exists()
    assert not (tmp_path / "capacity_stacks.png").exists()


def test_the_stack_chart_groups_transports_with_a_bar_per_stack(
    stacks_run: CapacityRun, tmp_path: Path
) -> None:
    figure = stack_capacity_chart(stacks_run, "title")
    streams, cpu, memory = figure.axes
    assert [t.get_text() for t in streams.get_xticklabels()] == ["sse", "websocket"]
    (legend,) = figure.legends  # below the panels, covering none of them
    assert [t.get_text() for t in legend.get_texts()] == [
        DEFAULT,
        PLAIN,
        THREADED,
        "thread limit bound",
    ]
    # one bar per cell: websocket has no PLAIN cell, so that slot stays empty
    bars = [p for p in streams.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    assert len(bars) == len(stacks_run.cells)
    colours = {p.get_facecolor()[:3] for p in bars}
    assert len(colours) == 3  # the stacks' registry colours
    heights = sorted(round(p.get_height()) for p in bars)
    assert heights == [500, 625, 1000, 1250, 2500]  # streams per core: 1 / (cpu_s / 5 s)
    hatched = [p for p in bars if p.get_hatch()]
    assert len(hatched) == 1 and round(hatched[0].get_height()) == round(
        stacks_run.cell("sse", THREADED).streams_per_core or 0
    )
    assert cpu.get_ylabel().startswith("server CPU ms") and "KiB" in memory.get_ylabel()
    page = write_capacity_report(stacks_run, tmp_path).read_text(encoding="utf-8")
    images = [tmp_path / "capacity_stacks.png", tmp_path / "capacity_stacks.svg"]
    assert_valid_images(images, ("sse", "websocket", DEFAULT, THREADED))
    assert f"<h3>sse on {THREADED}</h3>" in page
    assert "bound it" in page and "<dt>thread limit</dt>" in page


def test_capacity_json_keeps_the_cells_and_reads_the_version_before_stacks(
    stacks_run: CapacityRun,
) -> None:
    saved = stacks_run.to_json()
    assert saved["schema_version"] == 2 and saved["stacks"] == [DEFAULT, PLAIN, THREADED]
    threaded = saved["cells"][2]
    assert (threaded["stack"], threaded["workers"], threaded["threads"]) == (THREADED, 1, 8)
    assert threaded["thread_limit"] == 8 and threaded["bound_by_threads"] is True
    assert CapacityRun.from_json(orjson.loads(orjson.dumps(saved))).to_json() == saved
    old = {k: v for k, v in saved.items() if k not in {"cells", "stacks"}}
    first = {k: v for k, v in saved["cells"][0].items() if k not in {"stack", "workers", "threads"}}
    old |= {"schema_version": 1, "transports": {"sse": first}}
    again = CapacityRun.from_json(old)
    assert again.stacks == [DEFAULT] and again.cell("sse").capacity == 100


# --- the run over stacks, its probes faked ------------------------------------------------


def test_a_run_searches_every_transport_on_every_stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The threaded stack (8 threads) fails beyond 8 streams, the default stack beyond 100."""
    calls: list[tuple[str, str, int, Path]] = []

    def fake(scenario: Scenario, probe_dir: Path) -> tuple[PhaseRecord, int, float]:
        c = scenario.concurrency
        calls.append((scenario.transports[0], scenario.stack, c, probe_dir))
        limit = scenario.stack_setup().thread_limit or 100
        phase = synthetic_phase(
            scenario.transports[0], c, scenario.requests, 2.0 if c <= limit else 90
        )
        return phase, 80 * 2**20 + 10 * 1024 * c, 0.01

    monkeypatch.setattr(capacity_run, "run_probe", fake)
    scenario = with_overrides(
        Scenario(), transports="sse,websocket", stack=f"{DEFAULT},{THREADED}", threads=8
    )
    settings = CapacitySettings(limits=LIMITS, unloaded_streams=4)
    console = Console(record=True, width=240)
    run = run_capacity(scenario, settings, tmp_path, console, ["capacity"])
    assert [(c.transport, c.stack) for c in run.cells] == [
        ("sse", DEFAULT),
        ("sse", THREADED),
        ("websocket", DEFAULT),
        ("websocket", THREADED),
    ]
    threaded = run.cell("sse", THREADED)
    assert (threaded.workers, threaded.threads, threaded.capacity) == (1, 8, 8)
    assert threaded.bound_by_threads
    assert run.cell("sse", DEFAULT).capacity == 100 and run.cell("sse", DEFAULT).threads is None
    assert {stack for _, stack, _, _ in calls} == {DEFAULT, THREADED}
    assert all(d.parent == tmp_path / "probes" / stack for _, stack, _, d in calls)
    text = console.export_text()
    assert f"on {DEFAULT}, {THREADED}" in text and f"sse on {THREADED}" in text
    for name in ("capacity.json", "capacity.png", "capacity_stacks.png", "capacity.html"):
        assert (tmp_path / name).stat().st_size > 0


def test_capacity_takes_a_list_of_stacks_but_no_other_sweep() -> None:
    args = build_parser().parse_args(
        ["capacity", "--transports", "sse", "--stack", f"{PLAIN},{THREADED}", "--threads", "6"]
    )
    on_stacks = stack_scenarios(scenario_from_args(args))
    assert [(s.stack, s.sweep, s.threads) for s in on_stacks] == [
        (PLAIN, None, 0),
        (THREADED, None, 6),
    ]
    assert stack_scenarios(Scenario()) == [Scenario()]
