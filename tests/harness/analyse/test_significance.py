"""Whether a figure changed beyond the noise between two runs: known answers. The same
streams against themselves change nothing; 2 ms added to every token's arrival is found
as 2 ms of added delay, its interval holding 2 and not 0; a figure that got lower where
lower is better improved."""

from __future__ import annotations

import numpy as np

from harness.analyse.intervals import Interval
from harness.analyse.significance import FIGURES, change, changes, judged
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


def test_two_milliseconds_more_per_token_is_found_as_two_milliseconds_of_added_delay() -> None:
    base, slower = phase(1), phase(1, extra_ms=2.0)
    for figure in ("added_delay_ms.p50", "added_delay_ms.mean", "ttft_ms.p50", "e2e_ms.p50"):
        found = change("slower", "sse", base, slower, figure)
        assert found.interval is not None and found.verdict == "regressed", found
        assert found.interval.contains(2.0) and not found.interval.contains(0.0), found
        assert found.difference is not None and abs(found.difference - 2.0) < 0.2, found
    itl = change("slower", "sse", base, slower, "itl_ms.p50")  # gaps unchanged
    assert itl.verdict == "no change"


def test_the_better_direction_decides_improved_or_regressed() -> None:
    assert judged(Interval(-3, -1), "lower") == "improved"
    assert judged(Interval(1, 3), "lower") == "regressed"
    assert judged(Interval(1, 3), "higher") == "improved"
    assert judged(Interval(-1, 3), "higher") == "no change"
    assert judged(None, "lower") is None
    faster = change("b", "sse", phase(1, extra_ms=2.0), phase(1), "aggregate_tokens_per_s")
    assert faster.verdict in ("improved", "no change")  # the same tokens, a little sooner
