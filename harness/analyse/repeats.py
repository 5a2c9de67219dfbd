"""The rounds of a repeated run (`repeat`): each round's figures, and drift. Rounds run in
order A B C, A B C, ..., so a machine that slows down mid-run shows in every transport's
later rounds alike, not as a difference between transports.

Drift: a figure that moves the same way from each round to the next, by more in all than
the rounds' own intervals are wide on average (each round's streams resampled: the noise
within a round), so more than that noise explains. Only with three rounds or more, and only
for figures with an interval within a round (not CPU, measured once per round).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from harness.analyse.metrics import summarize
from harness.analyse.replications import round_phases
from harness.measure.records import PhaseRecord

# (label, figure of a summary): the figures each round shows
ROUND_FIGURES = (
    ("TTFT p50 ms", "ttft_ms.p50"),
    ("added delay p50 ms", "added_delay_ms.p50"),
    ("added delay p99 ms", "added_delay_ms.p99"),
    ("delivered tok/s", "aggregate_tokens_per_s"),
    ("server CPU µs/token", "server_cpu_ms_per_1k_tokens"),
)


@dataclass(frozen=True, slots=True)
class RoundFigures:
    """One round of one transport: its place in the run's order and its figures."""

    repeat: int
    position: int
    values: tuple[float | None, ...]  # as ROUND_FIGURES
    half_widths: tuple[float | None, ...] = ()  # of each value's interval within the round


def rounds_of(phase: PhaseRecord) -> list[RoundFigures]:
    summaries = [summarize(p) for p in round_phases(phase)]
    return [
        RoundFigures(
            r.repeat,
            r.position,
            tuple(s.figure(f) for _, f in ROUND_FIGURES),
            tuple(None if (i := s.interval(f)) is None else i.half_width for _, f in ROUND_FIGURES),
        )
        for r, s in zip(phase.rounds, summaries, strict=True)
    ]


def drifting(rounds: list[RoundFigures]) -> list[str]:
    """The labels of the figures that drift across the rounds (module docstring)."""
    found = []
    for k, (label, _) in enumerate(ROUND_FIGURES):
        values = [r.values[k] for r in rounds]
        widths = [r.half_widths[k] if k < len(r.half_widths) else None for r in rounds]
        if len(values) < 3 or any(v is None for v in values) or any(w is None for w in widths):
            continue
        noise = sum(w for w in widths if w is not None) / len(widths)
        steps = [b - a for a, b in itertools.pairwise(values) if a is not None and b is not None]
        same_way = all(d > 0 for d in steps) or all(d < 0 for d in steps)
        if same_way and abs(sum(steps)) > noise:
            found.append(label)
    return found
