"""The steady window of a run with a planned source, and the demand it met: the span in
which the streams in flight stayed near their peak, and the tokens demanded and delivered
in it (their definitions are in `harness.analyse.metrics`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.measure.records import RequestRecord

STEADY_SHARE = 0.9  # the steady window: streams in flight at 90% or more of their peak


def steady_window_ns(records: Sequence[RequestRecord]) -> tuple[int, int] | None:
    """From the first to the last moment the streams in flight (scheduled send -> last
    arrival or end) were at `STEADY_SHARE` of their peak or more."""
    events: list[tuple[int, int]] = []
    for r in records:
        ends = [t for t in (r.end_ns, r.recv_ns[-1] if r.recv_ns else None) if t is not None]
        if ends:
            events += [(r.scheduled_ns, 1), (max(ends), -1)]
    if not events:
        return None
    events.sort(key=lambda e: (e[0], -e[1]))
    counts = np.cumsum([e[1] for e in events])
    floor = STEADY_SHARE * counts.max()
    steady = np.flatnonzero(counts >= floor)
    start, end = events[steady[0]][0], events[min(steady[-1] + 1, len(events) - 1)][0]
    return (start, end) if end > start else None


def planned_arrivals_ns(record: RequestRecord) -> np.ndarray:
    """When each planned token was due, laid from the stream's scheduled send."""
    delays = np.asarray(record.planned_delays_ns or [], dtype=np.int64)
    return record.scheduled_ns + np.cumsum(delays)


def steady_parts(records: Sequence[RequestRecord]) -> tuple[list[float], list[float]] | None:
    """Per stream, its tokens delivered and demanded within the steady window (their sums'
    ratio is `delivered_ratio`, so its interval resamples these); None without a window."""
    window = steady_window_ns(records) if any(r.planned_delays_ns for r in records) else None
    if window is None:
        return None
    start, end = window
    delivered, demanded = [], []
    for r in records:
        due = planned_arrivals_ns(r)
        demanded.append(float(np.count_nonzero((due >= start) & (due < end))))
        recv = np.asarray(r.recv_ns, dtype=np.int64)
        delivered.append(float(np.count_nonzero((recv >= start) & (recv < end))))
    return delivered, demanded


def steady_figures(records: Sequence[RequestRecord]) -> dict[str, Any]:
    """Demanded and delivered tokens per second over the steady window (planned sources)."""
    window = steady_window_ns(records) if any(r.planned_delays_ns for r in records) else None
    parts = steady_parts(records)
    if window is None or parts is None:
        return {}
    start, end = window
    seconds = (end - start) / 1e9
    delivered, demanded = sum(parts[0]), sum(parts[1])
    return {
        "steady_window_s": seconds,
        "demanded_tokens_per_s": demanded / seconds,
        "delivered_tokens_per_s": delivered / seconds,
        "delivered_ratio": delivered / demanded if demanded else None,
    }
