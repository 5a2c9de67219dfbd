"""The SLO a capacity probe is judged by: its limits (`Slo`), the delay a transport adds by
design, each limit checked (`Check`) and the verdict over them; limits raised by what fails
unloaded. The definitions are in `harness/capacity/__init__.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from transports import TRANSPORTS

# each figure of the SLO: its label and unit as tables print it
FIGURES: dict[str, tuple[str, str]] = {
    "added_delay_p99_ms": ("added delay p99", "ms"),
    "source_gap_error_p99_ms": ("source gap error p99", "ms"),
    "lost": ("lost tokens + failed streams", ""),
    "ttft_p99_ms": ("TTFT p99", "ms"),
}


def fmt(value: float) -> str:
    """A figure as the tables print it: whole numbers with separators, else 1 or 2 decimals."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Slo:
    added_p99_ms: float = 50.0
    gap_error_p99_ms: float = 5.0
    lost: int = 0
    ttft_factor: float = 1.2
    ttft_slack_ms: float = 5.0
    strict: bool = False  # no allowances: neither a designed wait nor a raised limit

    def text(self) -> str:
        design = "" if self.strict else " (+ the transport's designed wait)"
        return (
            f"added delay p99 ≤ {fmt(self.added_p99_ms)} ms{design}; source gap error p99 ≤ "
            f"{fmt(self.gap_error_p99_ms)} ms; lost tokens + failed streams ≤ {self.lost}; "
            f"TTFT p99 ≤ {fmt(self.ttft_factor)}× unloaded (at least unloaded + "
            f"{fmt(self.ttft_slack_ms)} ms)"
        )


@dataclass(frozen=True, slots=True)
class DesignDelay:
    """The delay a transport adds by design, allowed on top of the added-delay limit."""

    ms: float = 0.0
    what: str = ""  # the title of the transport's setting it comes from: "poll interval"


NO_DESIGN_DELAY = DesignDelay()  # a transport that adds no delay by design


def design_delay(transport: str, value_of: Callable[[str], float]) -> DesignDelay:
    """The wait a transport's own setting puts on each token by design (`Knob.design_delay`:
    short polling's poll interval, the webhook's batch window), at the settings' values
    (`value_of(name)`, e.g. `Scenario.knob`). Others: none."""
    if transport not in TRANSPORTS:
        return DesignDelay()
    design = TRANSPORTS.get(transport).design_delay_ms(value_of)
    return DesignDelay() if design is None else DesignDelay(*design)


@dataclass(frozen=True, slots=True)
class Check:
    """One limit of the SLO at one probe: the measured value (None: nothing to measure, a
    failure) against its limit."""

    figure: str  # a key of FIGURES
    value: float | None
    limit: float
    note: str = ""  # how the limit was made, e.g. "50 + poll interval 100"
    exact: bool = False  # a count: a failure is never re-run as noise

    @property
    def passed(self) -> bool:
        return self.value is not None and self.value <= self.limit

    @property
    def severity(self) -> float:
        """How far beyond the limit: value / limit (infinite for a missing value, or any
        excess over a limit of 0)."""
        if self.value is None:
            return math.inf
        if self.limit <= 0:
            return math.inf if self.value > 0 else 0.0
        return self.value / self.limit

    @property
    def timing(self) -> bool:
        """A measured timing figure (not a count, not missing): noise can move it."""
        return not self.exact and self.value is not None

    def text(self) -> str:
        label, unit = FIGURES[self.figure]
        unit = f" {unit}" if unit else ""
        note = f" ({self.note})" if self.note else ""
        if self.value is None:
            return f"{label}: nothing measured"
        sign = "≤" if self.passed else ">"
        return f"{label} {fmt(self.value)}{unit} {sign} {fmt(self.limit)}{unit}{note}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Check:
        return cls(data["figure"], data["value"], data["limit"], data["note"], data["exact"])


@dataclass(frozen=True, slots=True)
class Verdict:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The failed limits, worst first."""
        return sorted((c for c in self.checks if not c.passed), key=lambda c: -c.severity)

    @property
    def timing_only(self) -> bool:
        """Failed, but on timing figures alone: worth one re-run on a machine shared with
        other work (see the module docstring)."""
        failures = self.failures
        return bool(failures) and all(c.timing for c in failures)

    def limiting(self) -> str:
        return "; ".join(c.text() for c in self.failures)

    def figure(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.figure == name), None)


def check_slo(
    summary: Any,
    slo: Slo,
    *,
    ttft_reference_ms: float | None,
    design: DesignDelay = DesignDelay(),
    counts: Any = None,
    raised: dict[str, float] | None = None,
) -> Verdict:
    """Every limit of `slo` against a probe's `TransportSummary` (which failed, and by how
    much: `Verdict.failures`): timing figures from `summary` (the steady part), lost tokens
    and failed streams from `counts` (the whole probe; default `summary`); limits raised by
    the unloaded values in `raised` (`raise_limits`). Without a TTFT reference the TTFT limit
    is not checked."""
    counts = summary if counts is None else counts
    allowance = 0.0 if slo.strict else design.ms
    added_note = f"{fmt(slo.added_p99_ms)} + {design.what} {fmt(allowance)}" if allowance else ""
    checks = [
        Check(
            "added_delay_p99_ms",
            summary.added_delay_ms.p99,
            slo.added_p99_ms + allowance,
            added_note,
        ),
        Check("source_gap_error_p99_ms", summary.source_gap_error_ms.p99, slo.gap_error_p99_ms),
        Check("lost", float(counts.tokens_lost + counts.errors), float(slo.lost), exact=True),
    ]
    if ttft_reference_ms is not None:
        # the first token waits for a poll too: where the first poll falls against it varies
        # by up to the designed wait from run to run, so the same allowance applies
        limit = max(slo.ttft_factor * ttft_reference_ms, ttft_reference_ms + slo.ttft_slack_ms)
        note = f"{fmt(slo.ttft_factor)}× unloaded {fmt(ttft_reference_ms)}"
        if allowance:
            limit += allowance
            note += f" + {design.what} {fmt(allowance)}"
        checks.append(Check("ttft_p99_ms", summary.ttft_ms.p99, limit, note))
    return raise_limits(Verdict(tuple(checks)), raised or {})


def unloaded_misses(verdict: Verdict) -> dict[str, float]:
    """The unloaded values of the timing figures an unloaded probe failed (figure ->
    value); empty unless it failed on timing alone (see "Raised limits")."""
    if not verdict.timing_only:
        return {}
    return {c.figure: float(c.value) for c in verdict.failures if c.value is not None}


def raise_limits(verdict: Verdict, raised: dict[str, float]) -> Verdict:
    """The verdict with each limit in `raised` (figure -> unloaded value) raised by that
    value: what the machine or the transport misses with no load is not load's doing."""
    checks = []
    for c in verdict.checks:
        if c.figure in raised:
            note = "; ".join(n for n in (c.note, f"+ unloaded {fmt(raised[c.figure])}") if n)
            c = replace(c, limit=c.limit + raised[c.figure], note=note)
        checks.append(c)
    return Verdict(tuple(checks))
