"""The capacity runner with its probes faked (synthetic phases instead of benchmark runs):
the unloaded probe first, the search, re-runs of timing failures, the time budget, and the
files it writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from capacity_fakes import synthetic_phase
from rich.console import Console

from harness.capacity import run as capacity_run
from harness.capacity.assess import SEARCH, UNLOADED
from harness.capacity.run import CapacitySettings, TransportSearch, run_capacity
from harness.capacity.search import SearchLimits
from harness.capacity.slo import Slo
from harness.measure.records import PhaseRecord
from harness.measure.scenario import Scenario, with_overrides

Behaviour = Callable[
    [str, int, int], tuple[float, int]
]  # transport, concurrency, run -> added, lost


class FakeProbes:
    """Stands in for real probes: `behaviour` decides each one's added delay and lost tokens
    (by default added delay = concurrency / 4 ms, so 200 streams is the most within 50 ms);
    `calls` logs every probe as (transport, concurrency, streams)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.behaviour: Behaviour = lambda t, c, run: (c / 4, 0)

    def concurrencies(self) -> list[int]:
        return [c for _, c, _ in self.calls]

    def __call__(self, scenario: Scenario, probe_dir: Path) -> tuple[PhaseRecord, int, float]:
        transport, concurrency = scenario.transports[0], scenario.concurrency
        runs = self.calls.count((transport, concurrency, scenario.requests))
        self.calls.append((transport, concurrency, scenario.requests))
        added, lost = self.behaviour(transport, concurrency, runs)
        phase = synthetic_phase(transport, concurrency, scenario.requests, added, lost)
        return phase, 80 * 2**20 + 30 * 1024 * concurrency, 0.01


@pytest.fixture
def fake_probes(monkeypatch: pytest.MonkeyPatch) -> FakeProbes:
    fake = FakeProbes()
    monkeypatch.setattr(capacity_run, "run_probe", fake)
    return fake


SCENARIO = with_overrides(Scenario(), transports="sse,short_poll", poll_interval_ms=100)
SETTINGS = CapacitySettings(
    slo=Slo(), limits=SearchLimits(start=50, maximum=400, max_probes=8), unloaded_streams=6
)


def searcher(tmp_path: Path, transport: str = "sse", deadline: float = 1e12) -> TransportSearch:
    console = Console(quiet=True)
    return TransportSearch(SCENARIO, transport, SETTINGS, tmp_path, console, deadline, {})


def test_unloaded_first_then_the_search_finds_the_capacity(
    fake_probes: FakeProbes, tmp_path: Path
) -> None:
    result = searcher(tmp_path).run()  # added delay = concurrency / 4: fails above 200
    assert fake_probes.calls[0] == ("sse", 1, 6)  # the unloaded probe: its own stream count
    assert fake_probes.concurrencies()[1:4] == [50, 100, 200]
    assert all(n == 2 * c for _, c, n in fake_probes.calls[1:])  # --streams-per-probe 2
    assert result.capacity == 200 and result.limiting_concurrency == 212  # within 10%
    failures = [400, 400, 300, 300, 250, 250, 225, 225, 212, 212]  # each re-run once
    assert fake_probes.concurrencies()[4:] == failures
    assert result.streams_per_core == pytest.approx(200 / (0.002 * 200 / 4))
    assert result.kib_per_stream == pytest.approx(30.0)
    roles = [p.role for p in result.probes]
    assert roles[0] == UNLOADED and set(roles[1:]) == {SEARCH}


def test_a_timing_failure_is_rerun_once_and_a_lost_token_never(
    fake_probes: FakeProbes, tmp_path: Path
) -> None:
    def flaky(transport: str, concurrency: int, run: int) -> tuple[float, int]:
        if concurrency == 100:
            return (90.0, 0) if run == 0 else (2.0, 0)  # a disturbance, then fine
        if concurrency == 200:
            return 2.0, 1  # a lost token: never re-run
        return 2.0, 0

    fake_probes.behaviour = flaky
    result = searcher(tmp_path).run()
    concurrencies = fake_probes.concurrencies()
    assert concurrencies.count(100) == 2 and concurrencies.count(200) == 1
    first, again = (p for p in result.probes if p.concurrency == 100)
    assert first.superseded and not first.passed and again.rerun and again.passed
    assert result.capacity >= 100 and result.limiting_concurrency == 200
    assert result.limiting is not None and result.limiting.startswith("lost tokens")


def test_short_polling_gets_a_number_with_its_poll_interval_allowed(
    fake_probes: FakeProbes, tmp_path: Path
) -> None:
    fake_probes.behaviour = lambda t, c, n: (100.0 + c / 4, 0)
    result = searcher(tmp_path, "short_poll").run()
    assert result.capacity == 200  # 100 + 200 / 4 = 150: the limit, 50 + poll interval 100
    assert result.design_delay_ms == 100
    assert result.limiting is not None and "(50 + poll interval 100)" in result.limiting


def test_out_of_time_the_search_reports_what_it_found(
    fake_probes: FakeProbes, tmp_path: Path
) -> None:
    result = searcher(tmp_path, deadline=0.0).run()  # already past the deadline
    assert fake_probes.concurrencies() == [1]  # the unloaded probe runs whatever the time
    assert result.stopped == "time" and result.capacity == 1
    assert result.reason == "the time budget ran out: passes at 1"


def test_a_run_writes_json_chart_and_page(fake_probes: FakeProbes, tmp_path: Path) -> None:
    console = Console(record=True, width=220)
    run = run_capacity(SCENARIO, SETTINGS, tmp_path, console, ["capacity"])
    saved = orjson.loads((tmp_path / "capacity.json").read_bytes())
    assert saved["kind"] == "capacity" and saved["stacks"] == ["fastapi@uvicorn"]
    assert [c["transport"] for c in saved["cells"]] == ["sse", "short_poll"]
    assert saved["cells"][0]["capacity"] == run.cell("sse").capacity == 200
    assert saved["slo"]["added_p99_ms"] == 50 and saved["search"]["max_probes"] == 8
    probe = saved["cells"][0]["probes"][1]
    assert {"checks", "server_cores_busy", "summary", "steady_streams"} <= set(probe)
    for name in ("capacity.png", "capacity.svg", "capacity.html"):
        assert (tmp_path / name).stat().st_size > 0
    text = console.export_text()
    assert "capacity within the SLO" in text and "probe  1" in text


def test_a_limit_missed_unloaded_is_raised_for_the_search_unless_strict(
    fake_probes: FakeProbes, tmp_path: Path
) -> None:
    fake_probes.behaviour = lambda t, c, run: (60 + c / 4, 0)  # 60 ms with no load at all
    result = searcher(tmp_path).run()
    assert result.capacity == 200  # 60 + 200 / 4 = 110: the raised limit, 50 + 60
    assert result.raised_limits == {"added_delay_p99_ms": pytest.approx(110.25)}
    assert "raised for what fails unloaded: added delay p99 ≤ 110.2 ms" in result.reason
    unloaded = [p for p in result.probes if p.role == UNLOADED]
    assert [p.passed for p in unloaded] == [False, True]  # the re-run, with the raised limit

    strict = CapacitySettings(slo=Slo(strict=True), limits=SETTINGS.limits, unloaded_streams=6)
    console = Console(quiet=True)
    result = TransportSearch(SCENARIO, "sse", strict, tmp_path, console, 1e12, {}).run()
    assert result.capacity == 0 and result.stopped == "unloaded"
    assert result.raised_limits == {}


def test_probes_start_their_streams_over_one_streams_length() -> None:
    """Known answer: the steady preset's stream is 100 ms + 99 gaps of 20 ms = 2.08 s; a
    scenario's own ramp wins; a live source's length is unknown (no ramp)."""
    from dataclasses import replace as _replace

    from harness.capacity.run import probe_scenario
    from harness.measure.scenario import Scenario
    from servers.sources.spec import SourceSpec

    steady = Scenario(source=SourceSpec(preset="steady"))
    probe = probe_scenario(steady, "sse", 100, 200)
    assert probe.ramp_s == pytest.approx(2.08)
    assert (probe.transports, probe.concurrency, probe.requests) == (("sse",), 100, 200)
    assert probe_scenario(_replace(steady, ramp_s=0.5), "sse", 100, 200).ramp_s == 0.5
    live = Scenario(source=SourceSpec(kind="openai", base_url="http://127.0.0.1:1/v1", model="m"))
    assert probe_scenario(live, "sse", 10, 20).ramp_s == 0.0
