"""The rounds of a repeated run (`repeat`): each round's figures, and drift. Rounds run in
order A B C, A B C, ..., so a machine that slows down mid-run shows in every transport's
later rounds alike, not as a difference between transports.

Drift: a figure that moves the same way from each round to the next, by more in all than
half its interval over the whole phase (resampling rounds and streams), so more than the
noise within the rounds explains. Only with three rounds or more.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from harness.analyse.metrics import TransportSummary, summarize
from harness.measure.records import PhaseRecord

# (label, figure of a summary): the figures each round shows
ROUND_FIGURES = (
    ("TTFT p50 ms", "ttft_ms.p50"),
    ("added delay p50 ms", "added_delay_ms.p50"),
    ("added delay p99 ms", "added_delay_ms.p99"),
    ("delivered tok/s", "aggregate_tokens_per_s"),
    ("server CPU µs/token", "server_cpu_ms_per_1k_tokens"),
)


def round_phases(phase: PhaseRecord) -> list[PhaseRecord]:
    """A repeated phase's rounds, each as a phase of its own (its streams, window, CPU)."""
    return [
        replace(
            phase,
            window_start_ns=r.window_start_ns,
            window_end_ns=r.window_end_ns,
            server_cpu_s=r.server_cpu_s,
            client_cpu_s=r.client_cpu_s,
            requests=[q for q in phase.requests if q.repeat == r.repeat],
            setup=None if phase.setup is None else replace(phase.setup, rounds=None),
        )
        for r in phase.rounds
    ]


def figure_of(summary: TransportSummary, figure: str) -> float | None:
    name, _, stat = figure.partition(".")
    value = getattr(summary, name)
    found = getattr(value, stat) if stat else value
    return None if found is None else float(found)


@dataclass(frozen=True, slots=True)
class RoundFigures:
    """One round of one transport: its place in the run's order and its figures."""

    repeat: int
    position: int
    values: tuple[float | None, ...]  # as ROUND_FIGURES


def rounds_of(phase: PhaseRecord) -> list[RoundFigures]:
    summaries = [summarize(p) for p in round_phases(phase)]
    return [
        RoundFigures(r.repeat, r.position, tuple(figure_of(s, f) for _, f in ROUND_FIGURES))
        for r, s in zip(phase.rounds, summaries, strict=True)
    ]


def drifting(rounds: list[RoundFigures], whole: TransportSummary) -> list[str]:
    """The labels of the figures that drift across the rounds (module docstring)."""
    found = []
    for k, (label, figure) in enumerate(ROUND_FIGURES):
        values = [r.values[k] for r in rounds]
        interval = whole.interval(figure)
        if len(values) < 3 or any(v is None for v in values) or interval is None:
            continue
        steps = [b - a for a, b in itertools.pairwise(values) if a is not None and b is not None]
        same_way = all(d > 0 for d in steps) or all(d < 0 for d in steps)
        if same_way and abs(sum(steps)) > interval.half_width:
            found.append(label)
    return found
