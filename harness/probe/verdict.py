"""The probe's verdict (pure): the runs of one probe (and the reconnect check) judged
together: each finding once, the `buffered` rule on the medians over the repeats, the
missing end of a stream, and the summary the report shows.

**The `buffered` rule.** With the stream's duration D = request sent -> last body byte,
`tail_share` = the share of the body's (decoded) bytes that arrived in the last 10% of D,
and `events_per_read` = events / reads that delivered bytes, both the median over the
repeats, a body that holds at least 5 events is buffered when

    tail_share >= 0.5 and events_per_read >= 3     (one lump, or a few, near the end)
    or events_per_read >= 8                        (lumps all along: a proxy's buffer)

A streamed body delivers its events over the whole generation, about one per read, so its
tail share is near 10% (a long wait for the first token raises it, but events per read
stays near 1); a buffered one arrives in the last instants, many events per read. The
second branch does not apply to plain text (there an "event" is a word, and a server may
well flush a sentence at a time). Fewer than 5 events: too short to judge (`too_short`).
When the response is compressed and the rule fires, the finding is `compressed` rather
than `buffered`: the compressor is the first suspect (probe again with
`--header 'Accept-Encoding: identity'` to rule it out). A source that produces every token
at once (no model delay) looks buffered too: nothing tells the two apart on the wire.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.probe.analyse import RunAnalysis
from harness.probe.decode import TEXT
from harness.probe.reconnect import Reconnect
from wire.problems import (  # the thresholds this docstring documents, shared with `direct`
    LUMP_EVENTS_PER_READ,  # noqa: F401
    MIN_EVENTS,
    SPREAD_EVENTS_PER_READ,  # noqa: F401
    TAIL_FRACTION,  # noqa: F401
    TAIL_SHARE,  # noqa: F401
    Finding,
    Severity,
    buffered_evidence,
    compressed_fix,
    finding,
    looks_buffered,
)

FRAMING = frozenset({"sse_framing", "line_framing"})  # a body whose events did not parse
# `nagle`: on reused connections the first body bytes wait for the client's delayed ACK of
# the head (Linux delays it up to 40 ms), which a new connection acknowledges at once
NAGLE_MS = (30.0, 60.0)  # head -> first body bytes on the reused connection, median
NAGLE_EXTRA_MS = 20.0  # ... at least this much later than on the new connection

SHOWN_HEADERS = (  # the headers the summary shows
    "content-type",
    "content-encoding",
    "cache-control",
    "x-accel-buffering",
    "transfer-encoding",
    "connection",
)


@dataclass
class Judgement:
    problems: list[Finding]
    warnings: list[Finding]
    summary: dict[str, object]

    @property
    def verdict(self) -> str:
        return "problems" if self.problems else "streams"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def merged_findings(runs: Sequence[RunAnalysis]) -> list[Finding]:
    """Each code once, in first-seen order, noting when only some runs showed it."""
    seen: dict[str, Finding] = {}
    counts: Counter[str] = Counter()
    for run in runs:
        for code in {f.code for f in run.findings}:
            counts[code] += 1
        for f in run.findings:
            seen.setdefault(f.code, f)
    merged = []
    for code, f in seen.items():
        if len(runs) > 1 and counts[code] < len(runs):
            f = Finding(
                f.code, f.severity, f"{f.message} (in {counts[code]} of {len(runs)} runs)", f.fix
            )
        merged.append(f)
    return merged


def buffering_finding(runs: Sequence[RunAnalysis]) -> Finding | None:
    """The `buffered` rule (the module docstring), on the medians over the runs."""
    if not runs or any(r.single_document for r in runs):
        return None
    events = _median([len(r.events) for r in runs]) or 0
    if not events and not _median([r.bytes for r in runs]):
        if any(f.code == "idle_timeout" for r in runs for f in r.findings):
            return None  # cut before it began: the body says nothing of the endpoint
        return finding("not_streaming", "the body is empty")
    if events < MIN_EVENTS:
        if any(f.code in FRAMING for r in runs for f in r.findings):
            return None  # the framing failed: the events are too few because none parsed
        return finding("too_short", f"{events:g} events (at least {MIN_EVENTS} are needed)")
    share = _median([r.tail_share for r in runs])
    per_read = _median([r.events_per_read for r in runs])
    reads = _median([r.delivering_reads for r in runs]) or 0
    if share is None or per_read is None:
        return None
    if not looks_buffered(events, share, per_read, text=runs[0].container == TEXT):
        return None
    unit = "words" if runs[0].container == TEXT else "events"
    e2e = _median([r.e2e_ms for r in runs]) or 0.0
    evidence = buffered_evidence(events, reads, per_read, share, e2e, unit)
    if len(runs) > 1:
        evidence += f" (median of {len(runs)} runs)"
    if any(r.compressing for r in runs):
        encoding = next(
            (r.head.get("content-encoding") for r in runs if r.head and r.compressing), ""
        )
        return finding("compressed", f"{encoding}: {evidence}", compressed_fix(encoding or ""))
    return finding("buffered", evidence)


def nagle_finding(runs: Sequence[RunAnalysis]) -> Finding | None:
    """The first body bytes later after the head on a reused keep-alive connection than
    on a new one, by about the client's delayed-ACK time: Nagle held them."""

    def head_to_body(group: list[RunAnalysis]) -> float | None:
        gaps = [
            r.ttfb_ms - r.ttfh_ms for r in group if r.ttfb_ms is not None and r.ttfh_ms is not None
        ]
        return _median(gaps)

    fresh = head_to_body([r for r in runs if not r.reused])
    reused = head_to_body([r for r in runs if r.reused])
    if fresh is None or reused is None:
        return None
    if not (NAGLE_MS[0] <= reused <= NAGLE_MS[1] and reused - fresh >= NAGLE_EXTRA_MS):
        return None
    evidence = (
        f"the first body bytes came {reused:.1f} ms after the head on the reused connection, "
        f"{fresh:.1f} ms after it on a new one"
    )
    return finding("nagle", evidence)


def terminal_finding(runs: Sequence[RunAnalysis], reconnect: Reconnect | None) -> Finding | None:
    streamed = [r for r in runs if r.streamed and r.events and not r.single_document]
    if not streamed or streamed[0].container == TEXT:
        return None
    if any(r.reading.terminal or r.reading.error for r in streamed):
        return None
    if reconnect is None:
        return finding("no_terminal", f"{len(streamed[0].events)} events, none says the end")
    header = f" with Last-Event-ID {reconnect.last_event_id}" if reconnect.last_event_id else ""
    what = f"a reconnect{header} got {reconnect.detail}"
    if reconnect.outcome == "fresh":
        return finding("reconnect_loop", f"{what}: EventSource would repeat the answer forever")
    if reconnect.outcome == "no_content":
        return None
    if reconnect.outcome == "empty":
        return finding("no_terminal", f"{what}: EventSource keeps reconnecting every few seconds")
    return finding("no_terminal", f"{what}: EventSource reports an error after a complete answer")


def judge(
    runs: Sequence[RunAnalysis], reconnect: Reconnect | None, strict: bool = False
) -> Judgement:
    findings = merged_findings(runs)
    streamed = [r for r in runs if r.streamed]
    extras = (
        buffering_finding(streamed),
        nagle_finding(streamed),
        terminal_finding(runs, reconnect),
    )
    for extra in extras:
        if extra is not None:
            findings.append(extra)
    problems = [f for f in findings if f.severity is Severity.PROBLEM]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    if strict:
        problems, warnings = problems + [w.as_problem() for w in warnings], []
    return Judgement(problems, warnings, summarise(runs))


def summarise(runs: Sequence[RunAnalysis]) -> dict[str, object]:
    """Medians over the runs that streamed (the first run's head and text)."""
    streamed = [r for r in runs if r.streamed] or list(runs[:1])
    first = streamed[0] if streamed else None
    head = first.head if first else None

    def med(attr: str) -> float | None:
        return _median([getattr(r, attr) for r in streamed])

    def gap(q: float) -> float | None:
        return _median([percentile(r.gaps_ms, q) for r in streamed])

    return {
        "status": head.status if head else None,
        "headers": {name: head.get(name) for name in SHOWN_HEADERS} if head else {},
        "kind": first.kind if first else None,
        "runs": len(runs),
        "ttft_ms": med("ttft_ms"),
        "ttfh_ms": med("ttfh_ms"),
        "silence_ms": med("silence_ms"),
        "reused": sum(r.reused for r in runs),
        "ttfb_ms": med("ttfb_ms"),
        "ttft_text_ms": med("ttft_text_ms"),
        "e2e_ms": med("e2e_ms"),
        "reads": med("reads"),
        "events": _median([len(r.events) for r in streamed]),
        "bytes": med("bytes"),
        "wire_bytes": med("wire_bytes"),
        "bytes_per_read": med("bytes_per_read"),
        "events_per_read": med("events_per_read"),
        "inter_arrival_ms": {"p50": gap(50), "p90": gap(90), "max": gap(100)},
        "tail_share": med("tail_share"),
        "terminal": next((r.reading.terminal for r in streamed if r.reading.terminal), None),
        "text": first.text if first else "",
        "tool_calls": list(first.reading.tool_calls) if first else [],
    }
