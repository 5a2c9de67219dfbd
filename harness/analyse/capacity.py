"""`bench.py capacity`, the pure part: the SLO check, the search's next step and the figures
derived from the probes. No I/O here (`harness.capacity_search` runs the probes).

The question: how many concurrent streams can one server core hold over each transport, and
what does each cost? Per transport, a *probe* is one real benchmark run of that transport
alone at one concurrency, on a fresh server process; the *capacity* is the largest
concurrency whose probe stays within the SLO. These definitions are the reference (the
capacity report prints them):

- SLO: a probe passes when every limit holds. Added delay p99 (client arrival minus server
  emit, every token) at most `--slo-added-p99-ms` (50 ms), plus the delay a transport adds
  by design unless `--strict`: short polling's poll interval (a token waits up to one
  interval for the next poll), a webhook's `batch_ms`. Source gap error p99 (how far the
  mock's actual emit gaps were from its plan) at most `--slo-gap-error-p99-ms` (5 ms): a
  server too busy to emit on time fails. Tokens lost plus streams failed at most
  `--slo-lost` (0). TTFT p99 at most `--slo-ttft-factor` (1.2) times the unloaded value,
  and never less than the unloaded value plus `--slo-ttft-slack-ms` (5 ms); for short
  polling and batched webhooks plus their designed wait too (the first token waits for it
  as every other does; `--strict` drops that allowance).
- Steady part: the SLO's timing figures (added delay, gap error, TTFT) are judged on the
  streams after a probe's first wave. The first `concurrency` streams start in the same
  instant, a burst of new connections no real server sees; `--streams-per-probe` (2) runs
  as many again after them, each starting as one ends. Lost tokens, failed streams, CPU
  and throughput count the whole probe.
- Unloaded: concurrency 1, measured first for every transport (`--unloaded-streams`
  streams, one at a time). The mock draws each stream's first-token delay from a
  distribution, so a probe's TTFT p99 is compared with what the same streams would show
  unloaded: the p99 of their planned first-token delays plus the transport's own
  first-token overhead at concurrency 1 (p99 of TTFT minus the planned delay).
- Raised limits: a capacity search asks what load does. When the unloaded probe (after
  its re-run) still misses a timing limit, the machine or the transport misses it without
  any load, so for that transport's search the limit becomes the unloaded value plus the
  limit (gap error p99 7 ms unloaded: at most 12 ms), and the results say so. Unless
  `--strict`: then, as when lost tokens or failed streams fail unloaded, the capacity is 0
  and the limiting figure says why.
- Search: grow geometrically (x2) from `--start` until a probe fails or `--max` passes,
  then bisect between the highest pass below the lowest fail and that fail, until the gap
  is within 10% of the fail or `--max-probes` probes have run. The unloaded probe is the
  pass below everything: if `--start` fails, bisection continues down towards 1.
- Noise: a probe that fails on timing figures alone (added delay, gap error, TTFT) is re-run
  once, and the re-run's verdict counts (both are kept and shown). Lost tokens and failed
  streams are never re-run: they are counts, not noise. On a machine shared with other
  work a disturbance misses a limit by far more than a small margin (seen: gap error p99
  12 ms against 5 with one stream and an idle server), so every timing failure gets its
  second chance; real overload fails twice. Each transport also gets an equal share of
  what is left of `--time-budget-s` when its turn comes; a search that runs out of time
  reports what it found.
- capacity: the largest passing concurrency below the lowest failing one (a pass above a
  fail, which only noise makes, is not believed); 0 when even one stream fails the SLO.
- limiting figure: what failed at the lowest failing concurrency (the probe just above
  the capacity), worst first.
- server cores busy: server CPU seconds (user + system) / the measured window's seconds,
  at the capacity probe; client cores busy likewise for the benchmark's event-loop thread.
- streams per core: capacity / server cores busy: how many such streams one core holds,
  extrapolated linearly from this load. Results record the server processes
  (`extra["server_processes"]`, 1: one uvicorn worker); the cores are theirs together.
- KiB per stream: the least-squares slope of the server's peak resident memory (VmHWM, a
  fresh server per probe) against concurrency over every probe whose streams all
  completed, with its standard error (±). It includes what the server keeps of each
  finished stream until the harness fetches its timeline after the window. Over a narrow
  range of concurrencies the allocator's own noise (about a MiB) dominates: trust it when
  the error is small against it.
- tok/s at capacity: tokens delivered to all clients together / the window, at the
  capacity probe; server CPU per 1k tokens likewise: the bill per token at that load.

Client and server share this machine's cores, so a client that saturates first caps the
capacity too: compare client cores busy with the server's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from harness.analyse.metrics import Distribution, summarize, ttft_ms
from harness.measure.records import PhaseRecord
from transports import TRANSPORTS, Kind

NS_PER_MS = 1_000_000
TOLERANCE = 0.10  # bisect until (fail - pass) <= 10% of the fail
UNLOADED = "unloaded"
SEARCH = "search"
SCHEMA_VERSION = 1

# each figure of the SLO: its label and unit as tables print it
FIGURES: dict[str, tuple[str, str]] = {
    "added_delay_p99_ms": ("added delay p99", "ms"),
    "source_gap_error_p99_ms": ("source gap error p99", "ms"),
    "lost": ("lost tokens + failed streams", ""),
    "ttft_p99_ms": ("TTFT p99", "ms"),
}


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


# --- the SLO --------------------------------------------------------------------------------


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
            f"added delay p99 ≤ {_fmt(self.added_p99_ms)} ms{design}; source gap error p99 ≤ "
            f"{_fmt(self.gap_error_p99_ms)} ms; lost tokens + failed streams ≤ {self.lost}; "
            f"TTFT p99 ≤ {_fmt(self.ttft_factor)}× unloaded (at least unloaded + "
            f"{_fmt(self.ttft_slack_ms)} ms)"
        )


@dataclass(frozen=True, slots=True)
class DesignDelay:
    """The delay a transport adds by design, allowed on top of the added-delay limit."""

    ms: float = 0.0
    what: str = ""  # e.g. "poll interval"


def design_delay(transport: str, poll_interval_ms: float, batch_ms: float) -> DesignDelay:
    """Short polling (interval paced): a token waits up to one poll interval for the next
    poll. A webhook gathers tokens for `batch_ms` before each POST. Others: none."""
    if transport not in TRANSPORTS:
        return DesignDelay()
    entry = TRANSPORTS.get(transport)
    if entry.interval_paced:
        return DesignDelay(poll_interval_ms, "poll interval")
    if entry.kind is Kind.CALLBACK and batch_ms > 0:
        return DesignDelay(batch_ms, "batch_ms")
    return DesignDelay()


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
        return f"{label} {_fmt(self.value)}{unit} {sign} {_fmt(self.limit)}{unit}{note}"

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


def steady_part(phase: PhaseRecord, concurrency: int) -> PhaseRecord:
    """The probe without its first wave: streams k >= `concurrency` (request k is the k-th
    started; the first `concurrency` start in the same instant, a burst of new connections
    no real server sees). The whole probe when that leaves nothing."""
    steady = [r for r in phase.requests if r.index >= concurrency]
    return replace(phase, requests=steady) if steady else phase


def ttft_overhead_p99_ms(phase: PhaseRecord) -> float | None:
    """The transport's own share of time to first token: p99 over streams of TTFT minus
    the source's planned first-token delay (None without a planned source or a token)."""
    overheads = []
    for record in phase.requests:
        ttft = ttft_ms(record)
        if ttft is not None and record.planned_delays_ns:
            overheads.append(ttft - record.planned_delays_ns[0] / NS_PER_MS)
    return Distribution.of(overheads).p99


def ttft_reference_ms(phase: PhaseRecord, unloaded_overhead_ms: float | None) -> float | None:
    """What this probe's TTFT p99 would be unloaded: the p99 of its streams' planned
    first-token delays plus the transport's unloaded overhead (see the module docstring)."""
    planned = [r.planned_delays_ns[0] / NS_PER_MS for r in phase.requests if r.planned_delays_ns]
    p99 = Distribution.of(planned).p99
    if p99 is None or unloaded_overhead_ms is None:
        return None
    return p99 + max(unloaded_overhead_ms, 0.0)


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
    added_note = f"{_fmt(slo.added_p99_ms)} + {design.what} {_fmt(allowance)}" if allowance else ""
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
        note = f"{_fmt(slo.ttft_factor)}× unloaded {_fmt(ttft_reference_ms)}"
        if allowance:
            limit += allowance
            note += f" + {design.what} {_fmt(allowance)}"
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
            note = "; ".join(n for n in (c.note, f"+ unloaded {_fmt(raised[c.figure])}") if n)
            c = replace(c, limit=c.limit + raised[c.figure], note=note)
        checks.append(c)
    return Verdict(tuple(checks))


# --- one probe ------------------------------------------------------------------------------


@dataclass
class Probe:
    """One real benchmark run of one transport at one concurrency, as the search saw it."""

    transport: str
    concurrency: int
    streams: int
    steady_streams: int  # those after the first wave, whose timing the SLO judges
    role: str  # UNLOADED (concurrency 1, first) or SEARCH
    verdict: Verdict
    window_s: float
    server_cpu_s: float | None
    client_cpu_s: float | None
    server_peak_rss_bytes: int | None
    server_processes: int = 1
    tokens_per_s: float | None = None  # delivered to all clients together
    server_cpu_ms_per_1k_tokens: float | None = None
    errors: int = 0
    ttft_reference_ms: float | None = None
    rerun: bool = False  # this run repeats a failure on timing alone
    superseded: bool = False  # a failure on timing alone whose re-run's verdict counts instead
    duration_s: float = 0.0  # wall time, server start to stop
    summary: dict[str, Any] = field(default_factory=dict)  # the phase's TransportSummary

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def server_cores_busy(self) -> float | None:
        return cores_busy(self.server_cpu_s, self.window_s)

    @property
    def client_cores_busy(self) -> float | None:
        return cores_busy(self.client_cpu_s, self.window_s)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "verdict"}
        data["passed"] = self.passed
        data["checks"] = [c.to_json() for c in self.verdict.checks]
        data["server_cores_busy"] = self.server_cores_busy
        data["client_cores_busy"] = self.client_cores_busy
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Probe:
        names = set(cls.__dataclass_fields__) - {"verdict"}
        verdict = Verdict(tuple(Check.from_json(c) for c in data["checks"]))
        return cls(verdict=verdict, **{k: v for k, v in data.items() if k in names})


def cores_busy(cpu_s: float | None, window_s: float) -> float | None:
    """CPU seconds per second of the window: how many cores the process kept busy."""
    return None if cpu_s is None or window_s <= 0 else cpu_s / window_s


def assess(
    phase: PhaseRecord,
    slo: Slo,
    role: str,
    *,
    concurrency: int,
    unloaded_overhead_ms: float | None,
    design: DesignDelay = DesignDelay(),
    raised: dict[str, float] | None = None,
    server_peak_rss_bytes: int | None = None,
    duration_s: float = 0.0,
    rerun: bool = False,
) -> Probe:
    """A probe's figures and verdict from its phase record: timing figures from its steady
    part, counts, CPU and throughput from the whole. The unloaded probe passes its own
    overhead (`ttft_overhead_p99_ms` of its steady part)."""
    summary = summarize(phase)
    steady = steady_part(phase, concurrency)
    steady_summary = summary if steady is phase else summarize(steady)
    reference = ttft_reference_ms(steady, unloaded_overhead_ms)
    verdict = check_slo(
        steady_summary,
        slo,
        ttft_reference_ms=reference,
        design=design,
        counts=summary,
        raised=raised,
    )
    return Probe(
        transport=phase.transport,
        concurrency=concurrency,
        streams=len(phase.requests),
        steady_streams=len(steady.requests),
        role=role,
        verdict=verdict,
        window_s=(phase.window_end_ns - phase.window_start_ns) / 1e9,
        server_cpu_s=phase.server_cpu_s,
        client_cpu_s=phase.client_cpu_s,
        server_peak_rss_bytes=server_peak_rss_bytes
        if server_peak_rss_bytes is not None
        else phase.server_rss_bytes,
        server_processes=int(phase.extra.get("server_processes", 1)),
        tokens_per_s=summary.aggregate_tokens_per_s,
        server_cpu_ms_per_1k_tokens=summary.server_cpu_ms_per_1k_tokens,
        errors=summary.errors,
        ttft_reference_ms=reference,
        rerun=rerun,
        duration_s=duration_s,
        summary=summary.to_json(),
    )


# --- the search -----------------------------------------------------------------------------

Outcome = tuple[int, bool]  # (concurrency, passed)


@dataclass(frozen=True, slots=True)
class SearchLimits:
    start: int = 50
    maximum: int = 4000
    max_probes: int = 8
    tolerance: float = TOLERANCE

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Step:
    """The search's next move: a concurrency to probe, or None and why it stopped."""

    concurrency: int | None
    why: str  # grow | bisect | max (passed at the maximum) | bracketed | probes


def bracket(history: Sequence[Outcome], floor: int = 0) -> tuple[int, int | None]:
    """(highest pass below the lowest fail, lowest fail). `floor` is a concurrency known to
    pass (the unloaded probe's 1), 0 if none; the lowest fail is None when nothing failed."""
    fails = [c for c, passed in history if not passed]
    high = min(fails) if fails else None
    passes = [c for c, passed in history if passed and (high is None or c < high)]
    return max([floor, *passes]), high


def next_step(history: Sequence[Outcome], limits: SearchLimits, floor: int = 0) -> Step:
    """Where to probe next, given the probes so far (in any order). Pure: the whole search
    is this function and an oracle that says pass or fail."""
    low, high = bracket(history, floor)
    if high is None:
        if low >= limits.maximum:
            return Step(None, "max")
        candidate, why = (limits.start if low < limits.start else low * 2), "grow"
        candidate = min(candidate, limits.maximum)
    else:
        if high - low <= 1 or high - low <= limits.tolerance * high:
            return Step(None, "bracketed")
        candidate, why = (low + high) // 2, "bisect"
        if any(c == candidate for c, _ in history):  # only noise can bring this about
            return Step(None, "bracketed")
    if len(history) >= limits.max_probes:
        return Step(None, "probes")
    return Step(candidate, why)


def search(
    oracle: Callable[[int], bool | None], limits: SearchLimits, floor: int = 0
) -> tuple[list[Outcome], Step]:
    """Probe until `next_step` stops, or the oracle does (it returns None: out of time).
    Returns the outcomes in order and the step that ended the search (`why` "time" when
    the oracle stopped it)."""
    history: list[Outcome] = []
    while True:
        step = next_step(history, limits, floor)
        if step.concurrency is None:
            return history, step
        passed = oracle(step.concurrency)
        if passed is None:
            return history, Step(None, "time")
        history.append((step.concurrency, passed))


# --- per transport --------------------------------------------------------------------------


def memory_per_stream_kib(points: Sequence[tuple[int, int]]) -> tuple[float | None, float | None]:
    """The least-squares slope of resident bytes against concurrency, in KiB per stream,
    and its standard error (None with fewer than three points). The slope is None with
    fewer than two distinct concurrencies. Over a narrow range of concurrencies the
    allocator's own noise (about a MiB) dominates: the error says how much to trust it."""
    if len({c for c, _ in points}) < 2:
        return None, None
    xs = np.array([c for c, _ in points], dtype=float)
    ys = np.array([b for _, b in points], dtype=float)
    sxx = float(np.sum((xs - xs.mean()) ** 2))
    slope = float(np.sum((xs - xs.mean()) * (ys - ys.mean()))) / sxx
    if len(points) < 3:
        return slope / 1024, None
    residuals = ys - (ys.mean() + slope * (xs - xs.mean()))
    stderr = float(np.sqrt(np.sum(residuals**2) / (len(points) - 2) / sxx))
    return slope / 1024, stderr / 1024


def streams_per_core(capacity: int, server_cores: float | None) -> float | None:
    if not capacity or server_cores is None or server_cores <= 0:
        return None
    return capacity / server_cores


@dataclass
class TransportCapacity:
    transport: str
    capacity: int
    stopped: str  # bracketed | max | probes | time | unloaded
    reason: str  # one line: why the capacity is what it is
    limiting: str | None  # what failed at the lowest failing concurrency
    limiting_concurrency: int | None
    server_cores_busy: float | None
    client_cores_busy: float | None
    streams_per_core: float | None
    kib_per_stream: float | None
    kib_per_stream_stderr: float | None
    tokens_per_s: float | None
    server_cpu_ms_per_1k_tokens: float | None
    server_processes: int
    design_delay_ms: float
    raised_limits: dict[str, float]  # figure -> the limit the search used (see the docstring)
    probes: list[Probe]

    @property
    def probes_run(self) -> int:
        return len(self.probes)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "probes"}
        data["probes_run"] = self.probes_run
        data["probes"] = [p.to_json() for p in self.probes]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransportCapacity:
        names = set(cls.__dataclass_fields__) - {"probes"}
        probes = [Probe.from_json(p) for p in data["probes"]]
        return cls(probes=probes, **{k: v for k, v in data.items() if k in names})


def counted(probes: Sequence[Probe], role: str) -> list[Probe]:
    """The probes of `role` whose verdicts count (a probe that was re-run counts once: by
    its re-run)."""
    return [p for p in probes if p.role == role and not p.superseded]


def conclude(
    transport: str,
    probes: Sequence[Probe],
    search_limits: SearchLimits,
    *,
    stopped: str,
    design: DesignDelay = DesignDelay(),
    strict: bool = False,
    raised: dict[str, float] | None = None,
) -> TransportCapacity:
    """The transport's capacity and figures from its probes; `stopped` is why the search
    ended (`Step.why`, "time", or "unloaded" when the unloaded probe failed); `raised`: the
    unloaded values its limits were raised by (figure -> value)."""
    raised = raised or {}
    unloaded = counted(probes, UNLOADED)
    floor = 1 if unloaded and unloaded[-1].passed else 0
    history = [(p.concurrency, p.passed) for p in counted(probes, SEARCH)]
    capacity, high = bracket(history, floor)
    finals = unloaded + counted(probes, SEARCH)
    at = next((p for p in reversed(finals) if p.passed and p.concurrency == capacity), None)
    limiting_probe = (
        unloaded[-1]
        if not floor and unloaded
        else next((p for p in finals if not p.passed and p.concurrency == high), None)
    )
    limiting = None if limiting_probe is None else limiting_probe.verdict.limiting()
    if limiting_probe is not None and design.ms and strict and not floor:
        added = limiting_probe.verdict.figure("added_delay_p99_ms")
        if added is not None and not added.passed:
            limiting += f" (by design: {transport} waits up to its {design.what}, "
            limiting += f"{_fmt(design.ms)} ms; drop --strict to allow it)"
    memory = [
        (p.concurrency, p.server_peak_rss_bytes)
        for p in probes
        if p.server_peak_rss_bytes and p.errors == 0
    ]
    cores = None if at is None else at.server_cores_busy
    kib, kib_stderr = memory_per_stream_kib(memory)  # type: ignore[arg-type]
    limits = {
        c.figure: c.limit
        for c in (unloaded[-1].verdict.checks if unloaded else ())
        if c.figure in raised
    }
    reason = _reason(stopped, capacity, high, search_limits)
    if limits:
        parts = [
            f"{FIGURES[f][0]} ≤ {_fmt(v)} {FIGURES[f][1]} (unloaded already {_fmt(raised[f])})"
            for f, v in limits.items()
        ]
        reason += "; raised for what fails unloaded: " + ", ".join(parts)
    return TransportCapacity(
        transport=transport,
        capacity=capacity,
        stopped=stopped,
        reason=reason,
        limiting=limiting,
        limiting_concurrency=None if limiting_probe is None else limiting_probe.concurrency,
        server_cores_busy=cores,
        client_cores_busy=None if at is None else at.client_cores_busy,
        streams_per_core=streams_per_core(capacity, cores),
        kib_per_stream=kib,
        kib_per_stream_stderr=kib_stderr,
        tokens_per_s=None if at is None else at.tokens_per_s,
        server_cpu_ms_per_1k_tokens=None if at is None else at.server_cpu_ms_per_1k_tokens,
        server_processes=max((p.server_processes for p in probes), default=1),
        design_delay_ms=0.0 if strict else design.ms,
        raised_limits=limits,
        probes=list(probes),
    )


def _reason(stopped: str, capacity: int, high: int | None, limits: SearchLimits) -> str:
    failed = "" if high is None else f", fails at {high}"
    if stopped == "unloaded":
        return "fails even unloaded (one stream at a time)"
    if stopped == "max":
        return f"passes at --max {limits.maximum}: the capacity is at least that"
    if stopped == "bracketed":
        return f"passes at {capacity}{failed}"
    if stopped == "probes":
        return f"--max-probes {limits.max_probes} ran out: passes at {capacity}{failed}"
    if stopped == "time":
        return f"the time budget ran out: passes at {capacity}{failed}"
    return f"passes at {capacity}{failed}"


# --- the whole run --------------------------------------------------------------------------


@dataclass
class CapacityRun:
    metadata: dict[str, Any]
    scenario: dict[str, Any]
    slo: Slo
    limits: SearchLimits
    settings: dict[str, Any]  # streams per probe, unloaded streams, time budget, re-run margin
    transports: dict[str, TransportCapacity]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "capacity",
            "schema_version": SCHEMA_VERSION,
            "metadata": self.metadata,
            "scenario": self.scenario,
            "slo": asdict(self.slo),
            "search": self.limits.to_json(),
            "settings": self.settings,
            "transports": {name: t.to_json() for name, t in self.transports.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CapacityRun:
        return cls(
            metadata=data["metadata"],
            scenario=data["scenario"],
            slo=Slo(**data["slo"]),
            limits=SearchLimits(**data["search"]),
            settings=data["settings"],
            transports={
                name: TransportCapacity.from_json(t) for name, t in data["transports"].items()
            },
        )
