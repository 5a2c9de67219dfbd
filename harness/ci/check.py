"""The regression check: is a run worse than the committed baseline, beyond noise?

`bench.py check RUN_DIR` compares the figures of `harness.ci.baseline` (per transport) with
the baseline's, and fails only on what a noisy, shared 2-core machine cannot produce by
itself. The statistics, and why:

Exact figures: fail at once, without re-runs (the worst of the runs given counts).
  tokens lost, tokens duplicated, text mismatches, failed streams: any increase fails
  (tolerance 0). Tokens emitted: any change fails (the mock is seeded, so a change means
  the source changed and the baseline no longer applies). For transports that make one
  request per stream (SSE, chunked, WebSocket), requests per stream must stay exactly 1 and
  wire bytes per token within +0.5% (or +0.25 B): framing, heads and token texts are
  seeded and fixed, and runs made minutes apart differ by ~0.03 B/token (0.1%), only
  because the run tag inside stream ids is a hex number whose length can change by one
  character. Injected padding of 8 bytes per token message adds ~17 B/token (+35-60%).

Timing figures: compared with tolerances, and confirmed by repetition.
  Each timing figure may rise by a relative tolerance *or* an absolute floor *or* the full
  range the baseline's own runs spanned, whichever is largest; only rises count. If any
  timing figure is beyond that on the first run, the check re-runs the same scenario (at
  most `--reruns` times, default 2) and compares the *median over all runs so far* (with
  two runs, their mean); it passes as soon as the medians are within tolerance and fails
  only if they are still beyond it after the last re-run. Contention on a shared machine
  comes and goes within minutes, so a burst that spoils one run rarely spoils the median of
  three; a real regression is in every run. Per figure:
  - added delay p50 (client receive - server emit, per token) of transports that make one
    request per stream: the median, not the mean, because contention adds a long tail (a
    push transport's mean went from 0.5 to 20 ms beside a competing CPU hog while its median
    moved by 0.3 ms). Tolerance +100% or +1.5 ms: push transports' medians are 0.3-1 ms
    and can double under contention; an injected 5 ms per-token delay moves them to 5-6 ms.
  - added delay p50 / the fastest transport's, in the same run, for transports that make
    one request per stream: machine speed and contention scale the delivery of a message
    alike on every such transport, so the ratio stays put where absolute delays move; a
    regression in one transport moves its ratio (a global one, like the injected delay,
    moves the absolute figure instead). Tolerance +75% or +0.75.
  - Long polling (more than one request per stream, not paced by an interval) pays a new
    request per token: its median added delay is request turnaround, CPU-bound on both
    sides, and grows faster than message delivery as the machine gets busy (1.4-3.4 ms
    between quiet runs of scenarios/ci.toml, 38 ms at twice the concurrency beside a CPU
    hog). Its median gets +200% or +3 ms and no ratio. So does the webhook (a `callback`
    transport): a POST and its answer per token, the same turnaround.
  - Transports paced by polling (median added delay at least a quarter of the scenario's
    poll interval in the baseline: short polling) are judged by their *mean* added delay
    instead: it is ~interval/2 by construction, moves by well under a millisecond between
    quiet runs, and its ratio to a sub-millisecond reference would swing with the
    reference's noise. Tolerance +15% or +5 ms.
  - For polling and callback transports (more than one request per stream), requests per
    stream and so wire bytes per token depend on timing (a webhook's batches and retries):
    a long poll that finds two tokens waiting saves a request, which contention makes
    common (68.8-72.8 requests per stream between runs of scenarios/ci.toml; at most one
    per token plus one). +10% (or +0.5 requests, +2 B) and repetition; a halved poll
    interval or empty long polls still double them.
  - Over QUIC (WebTransport) wire bytes per token follow timing too (tokens ready together
    share a packet; acknowledgements are counted): +10% (or +2 B) and repetition.
  - TTFT p50 (+15% or +10 ms) and E2E p50 (+5% or +25 ms): dominated by the seeded mock,
    so they catch large first-token or end-of-stream regressions that the per-token added
    delay cannot see (a slow handshake delays the generation itself; a late terminal
    message comes after the last token).
  - server and client CPU ms per 1,000 tokens: +60% or +50 ms; CPU time per token varies
    by ~20% between quiet runs and more under contention, so this catches gross
    inefficiency (a doubling), not small drifts.

Timing figures: significance. A timing figure beyond its tolerance counts only when the
change is also beyond the noise between rounds: the 95% interval of the difference (now
minus the baseline), Welch's from the baseline's rounds (`FigureStats.rounds`) and the
rounds of every run so far (`harness.analyse.replications`, the test `bench.py compare`
makes), must exclude 0. scenarios/ci.toml runs in three rounds, each with a server of its
own, so both sides have rounds. The tolerance is then the smallest change worth failing CI
for, and the interval tells it from a machine that alone moved the figure; the re-runs stay
as a second line of defence. A baseline without rounds (or a figure missing in a round)
leaves the tolerance alone to judge.

Statistics within a run (p50, mean) are over every raw sample (`harness.analyse.metrics`); the
baseline keeps, per figure, the median over the runs it was made from and their range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.analyse.intervals import Interval
from harness.analyse.replications import welch_interval
from harness.analyse.results import RunResult
from harness.ci.baseline import (
    Baseline,
    Figures,
    FigureStats,
    TransportBaseline,
    require_same_scenario,
    round_figures,
    run_figures,
)
from harness.measure.scenario import Scenario, scenario_from_dict, validated
from transports import TRANSPORTS
from transports import Kind as TransportKind

Kind = Literal["exact", "timing"]
Worse = Literal["higher", "changed"]
Status = Literal["ok", "regressed", "improved"]

DEFAULT_RERUNS = 2
MAX_RERUNS = 5
PACED_FRACTION = 0.25  # of the poll interval: a median added delay this large is polling's


@dataclass(frozen=True, slots=True)
class Rule:
    """How one figure is compared: it may rise by `rel` of the baseline, or by `floor` in
    its own unit, or by `spread_k` times the baseline's range, whichever is largest."""

    figure: str
    label: str
    unit: str
    kind: Kind
    rel: float = 0.0
    floor: float = 0.0
    spread_k: float = 0.0
    worse: Worse = "higher"

    def allowance(self, base: FigureStats) -> float:
        return max(self.rel * abs(base.value), self.floor, self.spread_k * base.spread)

    def limit(self, base: FigureStats) -> float:
        return base.value + self.allowance(base)

    def status(
        self, base: FigureStats, current: float | None, interval: Interval | None = None
    ) -> Status:
        """Beyond the tolerance, and (a timing figure with an `interval` of the difference)
        beyond noise: the interval excludes 0."""
        if current is None:
            return "regressed"
        allowance = self.allowance(base)
        if self.worse == "changed":
            return "regressed" if abs(current - base.value) > allowance else "ok"
        noise = self.kind == "timing" and interval is not None and interval.contains(0.0)
        if current > base.value + allowance and not noise:
            return "regressed"
        if current < base.value - allowance and not noise:
            return "improved"
        return "ok"

    def tolerance_text(self) -> str:
        """E.g. `max(+100%, +1.5 ms, range)`: the largest rise allowed ("range": the
        baseline runs' own range)."""
        if self.worse == "changed":
            return "must not change" if not self.floor else f"±{_plain(self.floor)}"
        parts = [f"+{self.rel * 100:g}%"] if self.rel else []
        if self.floor:
            parts.append(f"+{_plain(self.floor)}{_unit(self.unit)}")
        if self.spread_k:
            parts.append("range" if self.spread_k == 1 else f"{self.spread_k:g} x range")
        if not parts:
            return "none"
        return parts[0] if len(parts) == 1 else f"max({', '.join(parts)})"


def _unit(unit: str) -> str:
    return f" {unit}" if unit and unit != "x" else ("x" if unit else "")


def _plain(value: float) -> str:
    return f"{value:g}"


EXACT: tuple[Rule, ...] = (
    Rule("tokens_lost", "tokens lost", "", "exact"),
    Rule("tokens_duplicated", "tokens duplicated", "", "exact"),
    Rule("text_mismatches", "text mismatches", "", "exact"),
    Rule("errors", "failed streams", "", "exact"),
    Rule("tokens_emitted", "tokens emitted", "", "exact", worse="changed"),
)
ONE_REQUEST: tuple[Rule, ...] = (
    Rule("wire_bytes_per_token", "wire bytes per token", "B", "exact", rel=0.005, floor=0.25),
    Rule("requests_per_stream", "requests per stream", "", "exact", floor=0.001),
)
# over QUIC (WebTransport) a message's bytes depend on timing too: tokens ready together share
# a packet, and the acknowledgements are packets of their own, counted (159.9-161.8 bytes a
# token between rounds of scenarios/ci.toml, against TCP's identical counts)
ONE_REQUEST_OVER_QUIC: tuple[Rule, ...] = (
    Rule("wire_bytes_per_token", "wire bytes per token", "B", "timing", 0.10, 2.0, spread_k=1),
    Rule("requests_per_stream", "requests per stream", "", "exact", floor=0.001),
)
POLLED: tuple[Rule, ...] = (
    Rule("wire_bytes_per_token", "wire bytes per token", "B", "timing", 0.10, 2.0, spread_k=1),
    Rule("requests_per_stream", "requests per stream", "", "timing", 0.10, 0.5, spread_k=1),
)
DELIVERED: tuple[Rule, ...] = (
    Rule("added_delay_p50_ms", "added delay p50", "ms", "timing", 1.0, 1.5, spread_k=1),
    Rule(
        "added_delay_p50_vs_fastest",
        "added delay p50 / fastest transport's",
        "x",
        "timing",
        rel=0.75,
        floor=0.75,
        spread_k=1,
    ),
)
REQUEST_PER_TOKEN: tuple[Rule, ...] = (
    Rule("added_delay_p50_ms", "added delay p50", "ms", "timing", 2.0, 3.0, spread_k=1),
)
PACED: tuple[Rule, ...] = (
    Rule("added_delay_mean_ms", "added delay mean", "ms", "timing", 0.15, 5.0, spread_k=1),
)
EVERY_TRANSPORT: tuple[Rule, ...] = (
    Rule("ttft_p50_ms", "TTFT p50", "ms", "timing", 0.15, 10.0, spread_k=1),
    Rule("e2e_p50_ms", "E2E p50", "ms", "timing", 0.05, 25.0, spread_k=1),
    Rule("server_cpu_ms_per_1k_tokens", "server CPU per 1k tokens", "ms", "timing", 0.6, 50, 1),
    Rule("client_cpu_ms_per_1k_tokens", "client CPU per 1k tokens", "ms", "timing", 0.6, 50, 1),
)


def rules_for(
    transport: str, figures: TransportBaseline, poll_interval_ms: float | None
) -> tuple[Rule, ...]:
    """The rules for one transport. A registered transport's kind (`transports.py`) says
    whether it polls and whether its poll interval paces it; a transport the registry does
    not know (a run from an older checkout) is judged from its baseline figures instead:
    more than one request per stream polls, a median added delay of at least a quarter of
    the poll interval is paced."""
    if transport in TRANSPORTS:
        registered = TRANSPORTS.get(transport)
        # a callback transport makes a request per delivery, as polling makes one per poll:
        # its request count and bytes follow timing (batching, retries), so polling's rules
        polled = registered.kind in (TransportKind.POLL, TransportKind.CALLBACK)
        paced = registered.interval_paced
        quic = registered.quic
    else:
        requests = figures.get("requests_per_stream")
        polled = requests is not None and requests.value > 1.0 + 1e-9
        p50 = figures.get("added_delay_p50_ms")
        paced = (
            p50 is not None
            and poll_interval_ms is not None
            and p50.value >= PACED_FRACTION * poll_interval_ms
        )
        quic = False
    delay = PACED if paced else REQUEST_PER_TOKEN if polled else DELIVERED
    one = ONE_REQUEST_OVER_QUIC if quic else ONE_REQUEST
    chosen = EXACT + (POLLED if polled else one) + delay
    return tuple(r for r in chosen + EVERY_TRANSPORT if r.figure in figures)


@dataclass(frozen=True, slots=True)
class Finding:
    """One figure of one transport: the baseline, the value per run, what was compared
    (the median over runs for timing figures, the worst run for exact ones) and the outcome."""

    transport: str
    rule: Rule
    baseline: FigureStats
    values: tuple[float | None, ...]
    current: float | None
    status: Status
    interval: Interval | None = None  # of current - baseline, over rounds (timing figures)

    @property
    def limit(self) -> float:
        return self.rule.limit(self.baseline)

    @property
    def change(self) -> float | None:
        return None if self.current is None else self.current - self.baseline.value

    @property
    def within_noise(self) -> bool:
        """Beyond the tolerance, and passed only because the interval holds 0."""
        return self.status == "ok" and self.rule.status(self.baseline, self.current) != "ok"

    @property
    def change_ratio(self) -> float | None:
        if self.current is None or self.baseline.value == 0:
            return None
        return self.current / self.baseline.value - 1


@dataclass(frozen=True, slots=True)
class Verdict:
    findings: tuple[Finding, ...]
    runs: int

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "regressed"]

    @property
    def exact_regressions(self) -> list[Finding]:
        return [f for f in self.regressions if f.rule.kind == "exact"]

    @property
    def timing_regressions(self) -> list[Finding]:
        return [f for f in self.regressions if f.rule.kind == "timing"]

    @property
    def improvements(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "improved"]

    @property
    def within_noise(self) -> list[Finding]:
        return [f for f in self.findings if f.within_noise]

    @property
    def passed(self) -> bool:
        return not self.regressions


def _combine(rule: Rule, base: FigureStats, values: Sequence[float | None]) -> float | None:
    if any(v is None for v in values):
        return None
    present = [float(v) for v in values if v is not None]
    if rule.kind == "timing":
        return float(np.median(present))
    if rule.worse == "changed":
        return max(present, key=lambda v: abs(v - base.value))
    return max(present)


def _interval(
    rule: Rule, base: FigureStats, current: float | None, rounds: Sequence[float | None]
) -> Interval | None:
    """The interval of current - baseline over both sides' rounds (timing figures)."""
    if rule.kind != "timing" or current is None or not base.rounds:
        return None
    return welch_interval(current - base.value, base.rounds, rounds)


def compare(
    baseline: Baseline,
    per_run: Sequence[Mapping[str, Figures]],
    poll_interval_ms: float | None,
    per_round: Sequence[Mapping[str, Figures]] = (),
) -> Verdict:
    """Every baseline figure of every baseline transport against the runs' figures (and
    their rounds': every round of every run)."""
    findings = []
    for transport, figures in baseline.transports.items():
        for rule in rules_for(transport, figures, poll_interval_ms):
            base = figures[rule.figure]
            values = tuple(run[transport].get(rule.figure) for run in per_run)
            current = _combine(rule, base, values)
            rounds = [r[transport].get(rule.figure) for r in per_round]
            interval = _interval(rule, base, current, rounds)
            status = rule.status(base, current, interval)
            findings.append(Finding(transport, rule, base, values, current, status, interval))
    return Verdict(tuple(findings), len(per_run))


def _poll_interval(baseline: Baseline) -> float | None:
    value = baseline.scenario.get("poll_interval_ms")
    return float(value) if isinstance(value, int | float) else None


def compare_runs(baseline: Baseline, runs: Sequence[RunResult]) -> Verdict:
    rounds = [r for run in runs for r in round_figures(run)]
    return compare(baseline, [run_figures(run) for run in runs], _poll_interval(baseline), rounds)


Rerun = Callable[[int, Verdict], RunResult]


def check(
    baseline: Baseline,
    runs: Sequence[RunResult],
    rerun: Rerun | None = None,
    max_reruns: int = DEFAULT_RERUNS,
) -> Verdict:
    """Compare `runs` (repetitions of one scenario) with the baseline. While only timing
    figures are beyond tolerance, call `rerun(k, verdict)` for repetition k (at most
    `max_reruns` times) and compare the median over every run so far."""
    for k, run in enumerate(runs):
        require_same_scenario(baseline, run, f"run {k + 1}")
    measured = list(runs)
    verdict = compare_runs(baseline, measured)
    reruns = 0
    while (
        rerun is not None
        and verdict.timing_regressions
        and not verdict.exact_regressions
        and reruns < max_reruns
    ):
        reruns += 1
        repeat = rerun(reruns, verdict)
        require_same_scenario(baseline, repeat, f"re-run {reruns}")
        measured.append(repeat)
        verdict = compare_runs(baseline, measured)
    return verdict


def rerun_scenario(saved: Mapping[str, Any]) -> Scenario:
    """The scenario a run was made with, rebuilt from its results.json, to repeat it
    exactly (an `[inject]` test aid included)."""
    data = {k: v for k, v in saved.items() if v is not None and k != "sweep"}
    source = saved.get("source") or {}
    data["source"] = {k: v for k, v in source.items() if v is not None and k != "seed"}
    return validated(scenario_from_dict(data, "the run's saved scenario: "))
