"""Repeats (`--repeat N`): phases in rounds (A B, A B, A B), each round's streams with ids
of their own, the rounds recorded with their place in the order; intervals that resample
rounds; the report's rounds and drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from support import bench

from errors import ScenarioError
from harness.analyse.intervals import pooled_intervals
from harness.analyse.metrics import summarize
from harness.analyse.repeats import ROUND_FIGURES, RoundFigures, drifting, rounds_of
from harness.measure.records import PhaseRecord, RequestRecord
from harness.measure.run.rounds import merged
from harness.measure.scenario import Scenario, validated

MS = 1_000_000


def test_a_repeated_run_alternates_the_transports_in_rounds(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = bench(
        "run", "--transports", "sse,chunked", "--requests", "6", "--concurrency", "3",
        "--preset", "instant", "--repeat", "3", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # every round on a server process of its own (replications: harness.analyse.replications)
    assert len(set(re.findall(r"server pid (\d+) on", done.stdout))) == 3, done.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["scenario"]["repeat"] == 3
    for k, name in enumerate(("sse", "chunked")):
        phase = data["transports"][name]["phase"]
        rounds = phase["setup"]["rounds"]
        assert [r["repeat"] for r in rounds] == [0, 1, 2]
        assert [r["position"] for r in rounds] == [k, k + 2, k + 4]  # sse, chunked, sse, ...
        assert all(r["server_cpu_s"] is not None for r in rounds)
        requests = phase["requests"]
        assert sorted(r["repeat"] for r in requests) == [0] * 6 + [1] * 6 + [2] * 6
        assert len({r["stream_id"] for r in requests}) == 18  # every round its own ids
        summary = data["transports"][name]["summary"]
        assert summary["streams"] == 18 and summary["tokens_lost"] == 0
        assert summary["errors"] == 0 and summary["server_cpu_ms_per_1k_tokens_ci"] is not None
    sse_rounds = data["transports"]["sse"]["phase"]["setup"]["rounds"]
    chunked_rounds = data["transports"]["chunked"]["phase"]["setup"]["rounds"]
    assert sse_rounds[0]["window_end_ns"] <= chunked_rounds[0]["window_start_ns"]
    assert chunked_rounds[0]["window_end_ns"] <= sse_rounds[1]["window_start_ns"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Rounds</h2>" in page and page.count("<tr>") > 6


def test_repeat_is_refused_out_of_range_or_with_an_interleaved_order() -> None:
    with pytest.raises(ScenarioError, match="repeat must be from 1 to 100, got 0"):
        validated(Scenario(repeat=0))
    with pytest.raises(ScenarioError, match='order = "sequential" to repeat'):
        validated(Scenario(repeat=2, order="interleaved"))


def phase_round(k: int, offset_ms: float) -> PhaseRecord:
    """10 streams of 20 tokens whose arrivals are `offset_ms` after their emits."""
    rng = np.random.default_rng(k)
    records = []
    for s in range(10):
        emit = [s * 10 * MS + i * 20 * MS for i in range(20)]
        recv = [int(e + (offset_ms + rng.uniform(0, 0.01)) * MS) for e in emit]
        records.append(
            RequestRecord(
                transport="sse", index=s, seed=s, stream_id=f"{k}-{s}", scheduled_ns=0,
                end_ns=recv[-1], token_index=list(range(20)), recv_ns=recv,
                emit_ns=list(emit), token_bytes=[3] * 20, chunk_sizes=[1] * 20,
                source_tokens=20, requests=1,
            )
        )  # fmt: skip
    start = k * 10**9
    return PhaseRecord("sse", start, start + 5 * 10**8, 0.01 * (k + 1), 0.02, requests=records)


def test_merged_rounds_keep_each_rounds_window_cpu_and_streams() -> None:
    rounds = [phase_round(k, 1.0 + k) for k in range(3)]
    phase = merged(rounds, [0, 2, 4])
    assert [r.position for r in phase.rounds] == [0, 2, 4]
    assert phase.server_cpu_s == pytest.approx(0.06) and phase.window_s == pytest.approx(1.5)
    assert [q.repeat for q in phase.requests] == [0] * 10 + [1] * 10 + [2] * 10


def test_a_repeated_phases_interval_is_students_t_over_its_rounds() -> None:
    """Three rounds 1 ms apart (1, 2 and 3 ms added delay), each steady within itself:
    streams alone give a narrow interval around 2 ms; over the rounds, the known answer
    2 +- t(0.975, 2 df) x 1 / sqrt(3) = 2 +- 2.484 ms (their standard deviation is 1)."""
    phase = merged([phase_round(k, 1.0 + k) for k in range(3)], [0, 1, 2])
    groups = [
        [(r - e) / MS for r, e in zip(q.recv_ns, q.emit_ns, strict=True) if e]
        for q in phase.requests
    ]
    alone = pooled_intervals(groups, "added_delay_ms")["mean"]
    assert alone.half_width < 0.5
    summary = summarize(phase)
    mean = summary.added_delay_ms.mean
    over = summary.added_delay_ms.mean_ci
    assert mean is not None and over is not None
    assert over.lo == pytest.approx(mean - 2.484, abs=0.01)
    assert over.hi == pytest.approx(mean + 2.484, abs=0.01)
    cpu = summary.server_cpu_ms_per_1k_tokens_ci  # CPU too: once per round
    assert cpu is not None and cpu.contains(summary.server_cpu_ms_per_1k_tokens or 0.0)


def test_drift_is_a_figure_moving_one_way_round_after_round_beyond_its_noise() -> None:
    added = [label for label, _ in ROUND_FIGURES].index("added delay p50 ms")

    def rounds(values: list[float], half_width: float = 0.1) -> list[RoundFigures]:
        blank: list[float | None] = [None] * len(ROUND_FIGURES)
        widths = tuple(half_width if j == added else None for j in range(len(blank)))
        return [
            RoundFigures(
                k, k, tuple(v if j == added else blank[j] for j in range(len(blank))), widths
            )
            for k, v in enumerate(values)
        ]

    assert drifting(rounds([1.0, 2.0, 3.0])) == ["added delay p50 ms"]
    assert drifting(rounds([1.0, 3.0, 2.0])) == []  # not one way
    assert drifting(rounds([2.0, 2.01, 2.02])) == []  # within the noise
    assert drifting(rounds([1.0, 2.0, 3.0], half_width=2.5)) == []  # noisier rounds
    # the rounds of a real merged phase: 1, 2, 3 ms, each steady within itself
    phase = merged([phase_round(k, 1.0 + k) for k in range(3)], [0, 1, 2])
    assert "added delay p50 ms" in drifting(rounds_of(phase))
