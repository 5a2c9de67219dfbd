"""Metric functions against hand-computed answers on synthetic records."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from harness.analyse import metrics, steady
from harness.measure.records import PhaseRecord, PhaseSetup, RawFloor, RequestRecord

MS = 1_000_000


def record(**overrides: Any) -> RequestRecord:
    """Scheduled at 0; tokens emitted at 100, 110, 130 ms and received 1, 2, 5 ms later."""
    base = RequestRecord(
        transport="sse",
        index=0,
        seed=0,
        stream_id="s",
        scheduled_ns=0,
        end_ns=140 * MS,
        token_index=[0, 1, 2],
        recv_ns=[101 * MS, 112 * MS, 135 * MS],
        emit_ns=[100 * MS, 110 * MS, 130 * MS],
        token_bytes=[3, 5, 2],
        chunk_sizes=[1, 1, 1],
        source_tokens=3,
        bytes_sent=200,
        bytes_received=400,
        requests=1,
    )
    return replace(base, **overrides)


def test_per_request_metrics() -> None:
    r = record()
    assert metrics.ttft_ms(r) == 101.0
    assert metrics.itl_ms(r) == [11.0, 23.0]
    assert metrics.tpot_ms(r) == 17.0  # (135 - 101) / 2
    assert metrics.e2e_ms(r) == 140.0
    assert metrics.added_delay_ms(r) == [1.0, 2.0, 5.0]
    assert metrics.stream_tokens_per_s(r) == pytest.approx(3 / 0.140)
    assert metrics.lost_tokens(r) == 0


def test_ttft_skips_empty_tokens_and_handles_no_tokens() -> None:
    assert metrics.ttft_ms(record(token_bytes=[0, 5, 2])) == 112.0
    empty = record(token_index=[], recv_ns=[], emit_ns=[], token_bytes=[], chunk_sizes=[])
    assert metrics.ttft_ms(empty) is None
    assert metrics.tpot_ms(empty) is None
    assert metrics.itl_ms(empty) == []


def test_distribution_percentiles() -> None:
    d = metrics.Distribution.of([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (d.n, d.p50, d.mean, d.max) == (5, 3.0, 4.0, 10.0)
    assert d.p90 == pytest.approx(7.6)  # linear: 4 + 0.6 * (10 - 4)
    assert d.p99 == pytest.approx(9.76)
    assert metrics.Distribution.of([]) == metrics.Distribution(0, None, None, None, None, None)


def test_summary_over_a_phase() -> None:
    lossy = record(
        index=1,
        token_index=[0, 0, 2],  # index 1 lost, index 0 duplicated
        recv_ns=[201 * MS, 201 * MS, 230 * MS],
        emit_ns=[200 * MS, 200 * MS, 220 * MS],
        chunk_sizes=[2, 1],
        scheduled_ns=100 * MS,
        end_ns=None,
        requests=3,
        empty_polls=2,
        error_kind="incomplete",
        error_message="ended early",
    )
    phase = PhaseRecord(
        transport="sse",
        window_start_ns=0,
        window_end_ns=2_000 * MS,
        server_cpu_s=0.05,
        client_cpu_s=0.02,
        requests=[record(), lossy],
    )
    s = metrics.summarize(phase)
    assert s.ttft_ms.p50 == 101.0  # 101 and 101
    assert s.added_delay_ms.n == 6
    assert s.added_delay_ms.mean == pytest.approx((1 + 2 + 5 + 1 + 1 + 10) / 6)
    assert s.itl_ms.n == 4  # two gaps per stream; the duplicate's gap is 0
    assert s.itl_ms.max == 29.0
    assert s.e2e_ms.n == 1  # the failed stream never ended
    assert s.tokens_emitted == 6
    assert s.tokens_received == 5  # distinct indices: 3 + 2
    assert s.tokens_lost == 1
    assert s.tokens_duplicated == 1
    assert s.errors == 1
    assert s.requests_per_stream == 2.0
    assert s.empty_polls == 2
    assert s.wire_bytes_per_token == pytest.approx(1200 / 5)
    assert s.aggregate_tokens_per_s == pytest.approx(5 / 2.0)
    assert s.server_cpu_ms_per_1k_tokens == pytest.approx(50 / 5 * 1000)
    assert s.client_cpu_ms_per_1k_tokens == pytest.approx(20 / 5 * 1000)
    assert s.tokens_per_chunk.mean == pytest.approx(6 / 5)  # chunks 1, 1, 1 and 2, 1
    assert s.payload_bytes_per_token == pytest.approx(20 / 6)


# --- the steady window: demanded and delivered tokens per second ------------------------


def steady_record(k: int, scheduled_ns: int, late_ns: int = 0, keep: int = 10) -> RequestRecord:
    """Ten tokens planned 10 ms apart after 5 ms; the first `keep` arrive `late_ns` late."""
    MS_ = 1_000_000
    planned = [5 * MS_] + [10 * MS_] * 9
    due = list(itertools.accumulate(planned, initial=scheduled_ns))[1:]
    recv = [d + late_ns for d in due[:keep]]
    return RequestRecord(
        transport="sse",
        index=k,
        seed=k,
        stream_id=f"s{k}",
        scheduled_ns=scheduled_ns,
        end_ns=due[-1] + late_ns + MS_,
        token_index=list(range(keep)),
        recv_ns=recv,
        emit_ns=list(due[:keep]),
        token_bytes=[3] * keep,
        chunk_sizes=[1] * keep,
        source_tokens=10,
        planned_delays_ns=planned,
    )


def closed_loop(late_ns: int = 0, keep: int = 10) -> list[RequestRecord]:
    """Four slots, each running three streams back to back (a stream lasts 96 ms)."""
    records = []
    for slot in range(4):
        for wave in range(3):
            k = slot * 3 + wave
            records.append(steady_record(k, wave * 96_000_000 + slot * 1000, late_ns, keep))
    return records


def test_a_path_that_keeps_up_delivers_what_was_demanded() -> None:
    figures = steady.steady_figures(closed_loop())
    assert figures["delivered_ratio"] == pytest.approx(1.0, abs=0.02)
    # four streams in flight, each at 10 ms a token: 400 tokens/s demanded
    assert figures["demanded_tokens_per_s"] == pytest.approx(400, rel=0.05)


def test_tokens_that_never_came_show_as_delivered_below_demand() -> None:
    figures = steady.steady_figures(closed_loop(keep=5))
    assert figures["delivered_ratio"] == pytest.approx(0.5, abs=0.06)


def test_steady_share_of_demand_has_an_interval_over_streams() -> None:
    """Every stream delivering all it was asked: the interval is the figure itself; half
    the streams delivering half: an interval around the figure, wider than nothing."""
    whole = metrics.summarize(
        PhaseRecord("sse", 0, 400_000_000, None, None, requests=closed_loop())
    )
    assert whole.delivered_ratio_ci is not None
    assert whole.delivered_ratio_ci.lo == whole.delivered_ratio_ci.hi == whole.delivered_ratio
    mixed = [
        r if r.index % 2 else steady_record(r.index, r.scheduled_ns, keep=5) for r in closed_loop()
    ]
    half = metrics.summarize(PhaseRecord("sse", 0, 400_000_000, None, None, requests=mixed))
    found = half.delivered_ratio_ci
    assert found is not None and half.delivered_ratio is not None
    assert found.lo < half.delivered_ratio < found.hi


def test_the_steady_window_leaves_out_the_ramps() -> None:
    """Streams in flight: 1, then 4, then 1 again: the window is where all four ran."""
    ms = 1_000_000
    records = [steady_record(0, 0)] + [steady_record(k, 200 * ms) for k in (1, 2, 3)]
    records.append(steady_record(4, 400 * ms))
    window = steady.steady_window_ns(records)
    assert window is not None
    assert window[0] == 200 * ms and window[1] <= 200 * ms + 97 * ms


def test_the_raw_clients_floor_and_the_ratio_come_from_the_phase() -> None:
    raw = RawFloor(streams=12, tokens=120, cpu_s=0.06, wall_s=0.5)
    phase = PhaseRecord("sse", 0, 1_000_000_000, 0.5, 0.3, requests=closed_loop())
    phase.setup = PhaseSetup(order="sequential", raw_client=raw)
    summary = metrics.summarize(phase)
    assert summary.raw_client_cpu_us_per_token == pytest.approx(500.0)
    assert summary.client_vs_raw_cpu == pytest.approx((0.3 / 120 * 1e6) / 500.0)
    assert summary.source_gap_error_ms.n > 0  # planned sources: always part of the summary
