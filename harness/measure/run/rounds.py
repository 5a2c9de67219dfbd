"""A repeated run (`repeat`): each transport's rounds made one phase. Its records are
every round's streams, each marked with its round; its CPU the rounds' sums; its setup
lists the rounds (`Round`: window, CPU and place in the run's order), from which analysis
takes each round's figures and the time measured (`harness.analyse.repeats`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harness.measure.records import PhaseRecord, PhaseSetup, Round


def _total(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def merged(rounds: Sequence[PhaseRecord], positions: Sequence[int]) -> PhaseRecord:
    """One phase of a transport's `rounds` (in order), round k at `positions[k]` of the
    run's order of phases."""
    first, last = rounds[0], rounds[-1]
    listed = tuple(
        Round(k, at, p.window_start_ns, p.window_end_ns, p.server_cpu_s, p.client_cpu_s)
        for k, (p, at) in enumerate(zip(rounds, positions, strict=True))
    )
    setup = replace(first.setup or PhaseSetup(order="sequential"), rounds=listed)
    peaks = [p.server_rss_bytes for p in rounds if p.server_rss_bytes is not None]
    return replace(
        first,
        window_end_ns=last.window_end_ns,
        server_cpu_s=_total([p.server_cpu_s for p in rounds]),
        client_cpu_s=_total([p.client_cpu_s for p in rounds]),
        server_rss_bytes=max(peaks) if peaks else None,
        requests=[replace(r, repeat=k) for k, p in enumerate(rounds) for r in p.requests],
        setup=setup,
    )


def merged_rounds(rounds: Sequence[Sequence[PhaseRecord]]) -> list[PhaseRecord]:
    """A repeated run's rounds (each: one phase per transport, in the run's order, the same
    transports every round) as one phase per transport: round k's phase i ran at position
    k x transports + i (A B C, A B C, ...)."""
    if len(rounds) == 1:
        return list(rounds[0])
    count = len(rounds[0])
    return [
        merged([r[i] for r in rounds], [k * count + i for k in range(len(rounds))])
        for i in range(count)
    ]
