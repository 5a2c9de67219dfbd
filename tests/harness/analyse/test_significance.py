"""Whether a figure changed beyond the noise between two runs: known answers. The same
streams against themselves change nothing; 2 ms added to every token's arrival is found
as 2 ms of added delay, its interval holding 2 and not 0; a figure that got lower where
lower is better improved."""

from __future__ import annotations

import numpy as np
import pytest

from harness.analyse.intervals import Interval
from harness.analyse.significance import (
    FIGURES,
    Change,
    Resampled,
    Side,
    change,
    changes,
    family_level,
    judged,
)
from harness.measure.records import PhaseRecord, RequestRecord

MS = 1_000_000


def phase(seed: int, extra_ms: float = 0.0, streams: int = 60) -> PhaseRecord:
    """Streams of 30 tokens, planned 20 ms apart; arrivals 1-3 ms after their emits
    (jittered per stream and token), plus `extra_ms` on every arrival."""
    rng = np.random.default_rng(seed)
    records = []
    for k in range(streams):
        start = k * 50 * MS
        emit = [start + 100 * MS + 20 * MS * i for i in range(30)]
        lag = rng.uniform(1, 3) * MS
        recv = [int(e + lag + rng.uniform(0, 0.5) * MS + extra_ms * MS) for e in emit]
        records.append(
            RequestRecord(
                transport="sse",
                index=k,
                seed=k,
                stream_id=f"s{k}",
                scheduled_ns=start,
                end_ns=recv[-1] + MS,
                token_index=list(range(30)),
                recv_ns=recv,
                emit_ns=list(emit),
                token_bytes=[4] * 30,
                chunk_sizes=[1] * 30,
                source_tokens=30,
                bytes_sent=200,
                bytes_received=1500,
                requests=1,
            )
        )
    return PhaseRecord(
        transport="sse", window_start_ns=0, window_end_ns=streams * 50 * MS + 800 * MS,
        server_cpu_s=1.0, client_cpu_s=1.0,
        requests=records,
    )  # fmt: skip


def test_the_same_streams_against_themselves_change_nothing() -> None:
    same = phase(1)
    found = changes("again", {"sse": same}, {"sse": same})
    assert len(found) == len(FIGURES)
    assert all(c.verdict == "no change" and c.difference == 0 for c in found), [
        c for c in found if c.verdict != "no change"
    ]


def test_two_runs_of_the_same_kind_mostly_change_nothing() -> None:
    """A/A with fresh jitter: at 95%, about 1 figure in 20 may be called a change."""
    found = changes("b", {"sse": phase(1)}, {"sse": phase(2)})
    quiet = sum(c.verdict == "no change" for c in found)
    assert quiet >= 0.9 * len(found), [c for c in found if c.verdict != "no change"]


def changed(run: str, base: PhaseRecord, other: PhaseRecord, figure: str) -> Change:
    return change(run, "sse", Side.of(base, "baseline"), Side.of(other, run), figure)


def test_two_milliseconds_more_per_token_is_found_as_two_milliseconds_of_added_delay() -> None:
    base, slower = phase(1), phase(1, extra_ms=2.0)
    for figure in ("added_delay_ms.p50", "added_delay_ms.mean", "ttft_ms.p50", "e2e_ms.p50"):
        found = changed("slower", base, slower, figure)
        assert found.interval is not None and found.verdict == "regressed", found
        assert found.interval.contains(2.0) and not found.interval.contains(0.0), found
        assert found.difference is not None and abs(found.difference - 2.0) < 0.2, found
    itl = changed("slower", base, slower, "itl_ms.p50")  # gaps unchanged
    assert itl.verdict == "no change"


def test_the_better_direction_decides_improved_or_regressed() -> None:
    assert judged(Interval(-3, -1), "lower") == "improved"
    assert judged(Interval(1, 3), "lower") == "regressed"
    assert judged(Interval(1, 3), "higher") == "improved"
    assert judged(Interval(-1, 3), "higher") == "no change"
    assert judged(None, "lower") is None
    faster = changed("b", phase(1, extra_ms=2.0), phase(1), "aggregate_tokens_per_s")
    assert faster.verdict in ("improved", "no change")  # the same tokens, a little sooner


def test_the_familys_level_follows_benjamini_hochberg() -> None:
    """m = 4 at 5%: the thresholds are 0.0125, 0.025, 0.0375, 0.05; the two smallest
    p-values pass theirs, so R = 2 and every interval is at 1 - 2 x 0.05 / 4."""
    assert family_level([0.5, 0.001, 0.2, 0.01]) == pytest.approx(0.975)
    assert family_level([0.5, 0.3, 0.2, 0.9]) == pytest.approx(1 - 0.05 / 4)  # R = 0
    assert family_level([0.04]) == pytest.approx(0.95)  # one figure: 95%
    assert family_level([]) == pytest.approx(0.95)


def test_a_resampled_difference_agrees_with_its_interval() -> None:
    """The p-value of resampled differences and the interval at 1 - p's level agree: an
    interval excludes 0 exactly when p is below 1 - its level."""
    rng = np.random.default_rng(3)
    noise = Resampled(rng.normal(0.3, 0.15, 2000))
    p = noise.p_value()
    assert 0.02 < p < 0.1  # 0.3 is two standard errors from 0
    wider, narrower = noise.interval(1 - p / 2), noise.interval(1 - p * 2)
    assert wider is not None and wider.contains(0.0)
    assert narrower is not None and not narrower.contains(0.0)


def test_a_comparison_of_the_same_runs_is_judged_as_one_family() -> None:
    found = changes("again", {"sse": phase(1)}, {"sse": phase(2)})
    levels = {c.level for c in found if c.interval is not None}
    assert len(levels) == 1  # one level for the whole family
    (level,) = levels
    assert level is not None and level > 0.95  # wider than each figure's 95% alone
    assert all(c.verdict == "no change" for c in found if c.verdict is not None)
