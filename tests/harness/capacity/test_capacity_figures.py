"""The capacity search and its figures against known answers, without running anything:
a fake pass/fail oracle for the search, synthetic records and summaries for the rest."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from harness.analyse.metrics import Distribution
from harness.capacity.assess import (
    SEARCH,
    UNLOADED,
    Probe,
    assess,
    ttft_overhead_p99_ms,
    ttft_reference_ms,
)
from harness.capacity.figures import CapacityRun, conclude, memory_per_stream_kib, streams_per_core
from harness.capacity.search import SearchLimits, bracket, next_step, search
from harness.capacity.slo import Check, DesignDelay, Slo, Verdict, check_slo, design_delay
from harness.measure.records import PhaseRecord, RequestRecord

MS = 1_000_000
LIMITS = SearchLimits(start=50, maximum=4000, max_probes=30)


def counting(answer: int) -> tuple[list[int], Callable[[int], bool]]:
    """An oracle that passes every concurrency up to `answer`, and the list it logs to."""
    asked: list[int] = []

    def oracle(concurrency: int) -> bool:
        asked.append(concurrency)
        return concurrency <= answer

    return asked, oracle


# --- the search -------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [50, 51, 73, 99, 100, 150, 399, 1000, 2345, 3999])
def test_the_search_finds_a_known_capacity_within_the_tolerance(answer: int) -> None:
    asked, oracle = counting(answer)
    history, step = search(oracle, LIMITS)
    capacity, first_fail = bracket(history)
    assert step.why == "bracketed" and first_fail is not None
    assert capacity <= answer < first_fail  # a monotone oracle is never overestimated
    assert first_fail - capacity <= max(1, LIMITS.tolerance * first_fail)
    assert len(asked) == len(set(asked)) == len(history)  # no concurrency is probed twice


def test_growth_doubles_from_start_and_bisection_halves_the_bracket() -> None:
    asked, oracle = counting(300)
    search(oracle, LIMITS)
    assert asked[:5] == [50, 100, 200, 400, 300]  # x2 until a fail, then the midpoint


def test_a_transport_that_never_fails_stops_at_max() -> None:
    asked, oracle = counting(10**9)
    history, step = search(oracle, LIMITS)
    assert step.why == "max"
    assert asked == [50, 100, 200, 400, 800, 1600, 3200, 4000]
    assert bracket(history) == (4000, None)


@pytest.mark.parametrize("max_probes", [1, 2, 3, 5])
def test_the_search_respects_max_probes_and_max(max_probes: int) -> None:
    limits = SearchLimits(start=50, maximum=300, max_probes=max_probes)
    for answer in (1, 75, 150, 10**9):
        asked, oracle = counting(answer)
        history, step = search(oracle, limits, floor=1)
        assert len(asked) <= max_probes
        assert all(1 <= c <= 300 for c in asked)
        if len(asked) == max_probes and step.why == "probes":
            assert bracket(history, 1)[0] <= answer


def test_when_start_fails_bisection_goes_down_towards_the_unloaded_pass() -> None:
    asked, oracle = counting(7)
    history, step = search(oracle, LIMITS, floor=1)
    capacity, first_fail = bracket(history, floor=1)
    assert asked[0] == 50 and asked[1] == 25
    assert capacity == 7 and first_fail == 8
    assert step.why == "bracketed"


def test_without_a_pass_below_the_first_fail_the_capacity_is_zero() -> None:
    asked, oracle = counting(0)
    history, _ = search(oracle, SearchLimits(start=4, maximum=100, max_probes=10))
    assert bracket(history) == (0, 1)
    assert asked == [4, 2, 1]


def test_a_pass_above_a_fail_is_not_believed() -> None:
    history = [(50, True), (100, False), (200, True)]
    assert bracket(history, 1) == (50, 100)
    assert next_step(history, LIMITS, 1).concurrency == 75


def test_an_oracle_that_runs_out_of_time_stops_the_search() -> None:
    calls = iter([True, True, None])
    history, step = search(lambda c: next(calls), LIMITS)
    assert step.why == "time"
    assert history == [(50, True), (100, True)]


# --- the SLO ------------------------------------------------------------------------------


def dist(p99: float | None) -> Distribution:
    return Distribution(0 if p99 is None else 10, p99, p99, p99, p99, p99)


def summary(added: float, gap: float, ttft: float, lost: int = 0, errors: int = 0) -> object:
    return SimpleNamespace(
        added_delay_ms=dist(added),
        source_gap_error_ms=dist(gap),
        ttft_ms=dist(ttft),
        tokens_lost=lost,
        errors=errors,
    )


def test_the_slo_check_names_what_failed_and_by_how_much() -> None:
    verdict = check_slo(summary(80, 6, 300, lost=2, errors=1), Slo(), ttft_reference_ms=200)
    assert not verdict.passed
    failed = {c.figure: c for c in verdict.failures}
    assert set(failed) == {"added_delay_p99_ms", "source_gap_error_p99_ms", "lost", "ttft_p99_ms"}
    assert failed["added_delay_p99_ms"].severity == pytest.approx(80 / 50)
    assert failed["ttft_p99_ms"].limit == pytest.approx(240)  # 1.2 x 200
    assert failed["lost"].value == 3 and failed["lost"].severity == math.inf
    assert verdict.failures[0].figure == "lost"  # worst first
    assert "added delay p99 80 ms > 50 ms" in verdict.limiting()


def test_the_slo_passes_within_every_limit_and_the_ttft_slack_applies() -> None:
    verdict = check_slo(summary(49, 4.9, 6.9), Slo(), ttft_reference_ms=2.0)
    assert verdict.passed  # 1.2 x 2 ms = 2.4 ms would fail; 2 + 5 ms slack holds
    ttft = verdict.figure("ttft_p99_ms")
    assert ttft is not None and ttft.limit == pytest.approx(7.0)


def test_polling_is_allowed_its_poll_interval_unless_strict() -> None:
    values = {"poll_interval_ms": 100.0, "batch_ms": 0.0, "long_poll_wait_s": 30.0}
    design = design_delay("short_poll", values.__getitem__)
    assert design == DesignDelay(100, "poll interval")
    assert design_delay("sse", values.__getitem__) == DesignDelay()
    assert design_delay("long_poll", values.__getitem__) == DesignDelay()
    assert design_delay("webhook", values.__getitem__) == DesignDelay()  # 0: one POST each
    assert design_delay("webhook", {**values, "batch_ms": 20.0}.__getitem__) == DesignDelay(
        20, "batch_ms"
    )
    loaded = summary(120, 1, 200)
    assert check_slo(loaded, Slo(), ttft_reference_ms=200, design=design).passed
    strict = check_slo(loaded, Slo(strict=True), ttft_reference_ms=200, design=design)
    assert [c.figure for c in strict.failures] == ["added_delay_p99_ms"]


def test_failures_on_timing_alone_are_rerun_but_lost_tokens_never() -> None:
    assert check_slo(summary(60, 1, 100), Slo(), ttft_reference_ms=100).timing_only
    assert check_slo(summary(500, 40, 900), Slo(), ttft_reference_ms=100).timing_only
    assert not check_slo(summary(1, 1, 100, lost=1), Slo(), ttft_reference_ms=100).timing_only
    assert not check_slo(summary(90, 1, 100, errors=1), Slo(), ttft_reference_ms=100).timing_only
    assert not check_slo(summary(1, 1, 100), Slo(), ttft_reference_ms=100).timing_only  # passed
    assert not Verdict((Check("added_delay_p99_ms", None, 50),)).timing_only  # nothing came


def test_a_figure_with_nothing_measured_fails() -> None:
    verdict = check_slo(summary(1, 1, 100), Slo(), ttft_reference_ms=100)
    empty = Verdict((Check("added_delay_p99_ms", None, 50),))
    assert verdict.passed and not empty.passed
    assert empty.limiting() == "added delay p99: nothing measured"


# --- figures from records -----------------------------------------------------------------


def stream(k: int, planned_ttft_ms: float, ttft: float, tokens: int = 3) -> RequestRecord:
    start = k * 1000 * MS
    emit: list[int | None] = [start + int((planned_ttft_ms + 10 * i) * MS) for i in range(tokens)]
    first = start + int(ttft * MS)
    recv = [first + 10 * i * MS for i in range(tokens)]
    return RequestRecord(
        transport="sse",
        index=k,
        seed=k,
        stream_id=f"s{k}",
        scheduled_ns=start,
        end_ns=recv[-1] + MS,
        token_index=list(range(tokens)),
        recv_ns=recv,
        emit_ns=emit,
        token_bytes=[3] * tokens,
        chunk_sizes=[1] * tokens,
        source_tokens=tokens,
        planned_delays_ns=[int(planned_ttft_ms * MS)] + [10 * MS] * (tokens - 1),
        requests=1,
    )


def phase(records: list[RequestRecord], window_s: float, server_cpu_s: float) -> PhaseRecord:
    return PhaseRecord(
        transport="sse",
        window_start_ns=0,
        window_end_ns=int(window_s * 1e9),
        server_cpu_s=server_cpu_s,
        client_cpu_s=server_cpu_s / 2,
        server_rss_bytes=80 * 2**20,
        requests=records,
    )


def test_the_ttft_reference_is_the_planned_p99_plus_the_unloaded_overhead() -> None:
    unloaded = phase([stream(k, 100, 100 + k) for k in range(5)], 5, 0.1)  # overheads 0..4 ms
    assert ttft_overhead_p99_ms(unloaded) == pytest.approx(np.percentile([0, 1, 2, 3, 4], 99))
    loaded = phase([stream(k, 100 * (k + 1), 100 * (k + 1) + 30) for k in range(5)], 5, 0.1)
    planned_p99 = float(np.percentile([100, 200, 300, 400, 500], 99))
    assert ttft_reference_ms(loaded, 4.0) == pytest.approx(planned_p99 + 4.0)


def test_streams_per_core_of_a_synthetic_phase_is_exact() -> None:
    records = [stream(k, 50, 51) for k in range(8)]
    probe = assess(
        phase(records, window_s=10.0, server_cpu_s=2.5),
        Slo(),
        SEARCH,
        concurrency=200,
        unloaded_overhead_ms=1.0,
    )
    assert probe.passed
    assert probe.server_cores_busy == 0.25  # 2.5 CPU seconds over a 10 s window
    assert probe.client_cores_busy == 0.125
    assert streams_per_core(200, probe.server_cores_busy) == 800.0
    unloaded = assess(
        phase(records[:2], 2.0, 0.1), Slo(), UNLOADED, concurrency=1, unloaded_overhead_ms=1.0
    )
    result = conclude("sse", [unloaded, probe], SearchLimits(start=200, maximum=200), stopped="max")
    assert result.capacity == 200
    assert result.server_cores_busy == 0.25
    assert result.streams_per_core == 800.0
    assert result.limiting is None


def test_the_memory_slope_of_synthetic_points_is_recovered() -> None:
    base, per_stream = 80 * 2**20, 37.5 * 1024
    exact = [(c, int(base + per_stream * c)) for c in (1, 50, 100, 200, 400)]
    slope, error = memory_per_stream_kib(exact)
    assert slope == pytest.approx(37.5, abs=1e-3)
    assert error == pytest.approx(0, abs=1e-3)
    rng = np.random.default_rng(1)
    noisy = [(c, int(b + rng.normal(0, 2**20))) for c, b in exact * 4]  # a MiB of noise
    slope, error = memory_per_stream_kib(noisy)
    assert slope is not None and error is not None
    assert abs(slope - 37.5) < 3 * error
    assert memory_per_stream_kib([(50, base), (50, base + 1)]) == (None, None)
    assert memory_per_stream_kib([(1, 0), (3, 2048)]) == (1.0, None)


def fake_probe(concurrency: int, passed: bool, role: str = SEARCH, **changes: Any) -> Probe:
    checks = (Check("added_delay_p99_ms", 10.0 if passed else 90.0, 50.0),)
    base = Probe(
        transport="short_poll",
        concurrency=concurrency,
        streams=2 * concurrency,
        steady_streams=concurrency,
        role=role,
        verdict=Verdict(checks),
        window_s=4.0,
        server_cpu_s=0.01 * concurrency,
        client_cpu_s=0.02 * concurrency,
        server_peak_rss_bytes=80 * 2**20 + 10 * 1024 * concurrency,
    )
    return replace(base, **changes)


def test_a_rerun_counts_once_and_the_lowest_fail_limits() -> None:
    probes = [
        fake_probe(1, True, UNLOADED),
        fake_probe(50, True),
        fake_probe(100, False, superseded=True),
        fake_probe(100, True, rerun=True),
        fake_probe(200, False),
        fake_probe(150, False),
        fake_probe(125, True),
    ]
    result = conclude("short_poll", probes, LIMITS, stopped="bracketed")
    assert result.capacity == 125
    assert result.limiting_concurrency == 150
    assert result.limiting is not None and "added delay p99 90 ms > 50 ms" in result.limiting
    assert result.server_cores_busy == pytest.approx(1.25 / 4)
    assert result.kib_per_stream == pytest.approx(10.0)
    assert result.probes_run == 7
    assert result.reason == "passes at 125, fails at 150"


def test_failing_unloaded_by_design_says_so() -> None:
    probes = [fake_probe(1, False, UNLOADED)]
    result = conclude(
        "short_poll",
        probes,
        LIMITS,
        stopped="unloaded",
        design=DesignDelay(100, "poll interval"),
        strict=True,
    )
    assert result.capacity == 0 and result.streams_per_core is None
    assert result.limiting_concurrency == 1
    assert result.limiting is not None
    assert "by design: short_poll waits up to its poll interval, 100 ms" in result.limiting
    assert result.reason == "fails even unloaded (one stream at a time)"


def test_a_capacity_run_survives_its_json() -> None:
    probes = [fake_probe(1, True, UNLOADED), fake_probe(50, True), fake_probe(100, False)]
    result = conclude("short_poll", probes, LIMITS, stopped="bracketed")
    run = CapacityRun({"cpu_count": 2}, {"name": "t"}, Slo(), LIMITS, {}, [result])
    again = CapacityRun.from_json(run.to_json())
    assert again.to_json() == run.to_json()
    assert again.cell("short_poll").probes[2].verdict.limiting() == (
        result.probes[2].verdict.limiting()
    )


def test_the_first_wave_is_left_out_of_timing_but_not_out_of_counts() -> None:
    burst = [stream(k, 100, 400) for k in range(4)]  # the first wave: 300 ms to connect
    steady = [stream(k, 100, 102) for k in range(4, 8)]
    probe = assess(
        phase(burst + steady, 8, 0.4), Slo(), SEARCH, concurrency=4, unloaded_overhead_ms=2.0
    )
    assert probe.passed and probe.streams == 8 and probe.steady_streams == 4
    assert probe.summary["ttft_ms"]["p99"] == pytest.approx(400, abs=1)  # the whole probe's
    burst[0].error_kind = "timeout"
    failed = assess(
        phase(burst + steady, 8, 0.4), Slo(), SEARCH, concurrency=4, unloaded_overhead_ms=2.0
    )
    assert [c.figure for c in failed.verdict.failures] == ["lost"]
    alone = assess(phase(burst, 4, 0.2), Slo(), SEARCH, concurrency=4, unloaded_overhead_ms=2.0)
    assert alone.steady_streams == 4  # no second wave: the whole probe is judged
    assert not alone.passed


def test_a_limit_missed_unloaded_is_raised_by_the_unloaded_value() -> None:
    from harness.capacity.slo import raise_limits, unloaded_misses

    unloaded = check_slo(summary(3, 7.0, 100), Slo(), ttft_reference_ms=100)
    assert unloaded_misses(unloaded) == {"source_gap_error_p99_ms": 7.0}
    raised = raise_limits(unloaded, unloaded_misses(unloaded))
    gap = raised.figure("source_gap_error_p99_ms")
    assert raised.passed and gap is not None and gap.limit == 12.0
    assert gap.text() == "source gap error p99 7 ms ≤ 12 ms (+ unloaded 7)"
    loaded = check_slo(
        summary(3, 13.0, 100), Slo(), ttft_reference_ms=100, raised={"source_gap_error_p99_ms": 7.0}
    )
    assert [c.figure for c in loaded.failures] == ["source_gap_error_p99_ms"]
    lost = check_slo(summary(3, 7.0, 100, lost=1), Slo(), ttft_reference_ms=100)
    assert unloaded_misses(lost) == {}  # lost tokens are never excused
