"""Metrics, computed from raw records only. These docstrings are the definitions.

- TTFT (time to first token): scheduled send -> arrival of the first token with non-empty
  text. The timer starts at the *scheduled* time, so client-side queueing counts.
- ITL (inter-token latency): gaps between consecutive token arrivals within a stream,
  pooled over all streams. Tokens completed by the same network read have a gap of 0.
- TPOT (time per output token), per stream: (last arrival - first arrival) / (tokens - 1).
- E2E: scheduled send -> terminal message received.
- Queue wait, per stream: scheduled send -> the stream beginning (getting one of the
  driver's `concurrency` slots). 0 in a closed loop, where a stream is scheduled when a
  slot frees; in an open loop (a scenario `rate`) a stream is due at its arrival time, and
  waits when every slot is busy: that wait is part of its TTFT and E2E (so nothing is hidden
  by coordinated omission). Streams that did not record their beginning have none.
- Added delay, per token: client arrival - server emit (same CLOCK_MONOTONIC): the delay the
  transport adds on top of the model. For polling this includes waiting for the next poll.
- tokens_per_s: per stream, tokens received / E2E seconds; the median over streams.
- aggregate_tokens_per_s: all tokens received / the phase's run window.
- wire_bytes_per_token: TCP payload bytes both ways (request lines, headers, framing,
  bodies; from TCP_INFO) / tokens received. Split into payload (the tokens' UTF-8 text),
  HTTP heads (header_bytes_per_token) and the rest: framing and request bodies.
- requests_per_stream: mean HTTP requests (or WebSocket upgrades) per stream.
- empty_polls: polls that returned no token and did not end the stream (total).
- server/client CPU ms per 1,000 tokens: CPU time (user + system) the server process (with
  its worker processes: `harness.measure.process_tree`) / the driver's event-loop thread
  spent during the phase, per 1,000 tokens received.
- source_gap_error_ms: for planned sources (the mock, a replayed trace), how far each
  actual emit gap was from the planned one: the source's own timing fidelity. Part of every
  summary: a server too busy to emit on time shows here, not hidden inside added delay.
- Steady window (planned sources): the span during which the streams in flight stayed at
  90% or more of their peak (the ramp-up and ramp-down left out). demanded_tokens_per_s:
  the tokens the plans called for in that window, each stream's plan laid from its
  scheduled send (so a stream that waited for a slot, or a server that started it late,
  delivers less than was demanded); delivered_tokens_per_s: tokens that arrived in it;
  delivered_ratio: delivered / demanded (1.0: the whole path kept up with the source).
- raw_client_cpu_us_per_token and client_vs_raw_cpu (when the scenario sets raw_client):
  the CPU per token of a minimal raw socket client that only counts token messages
  (harness.measure.raw_client), run in the same benchmark against the same server, and
  the harness client's CPU per token divided by it (1.0: no dearer than the floor).
- ttft_minus_direct_ms (live runs): per request, TTFT minus the TTFT of `direct` (the same
  prompt straight from the upstream): the relay's own cost in time to first token.
- token_count_basis: `source` (the mock or trace knows its tokens), `usage` (a live model's
  usage report), or `chunks` (content deltas counted, when a live model reports no usage).
- tokens_emitted: tokens the source produced (server truth); tokens_received: distinct
  token indices the client got; tokens_lost: emitted indices that never arrived; tokens_duplicated:
  arrivals of an index already received; errors: streams that ended in an error. A stream
  the client left on purpose (fault benchmark) expects only the indices before it left.
- Fault benchmark (scenario `[faults]`): drops: connections dropped on purpose and resumed;
  recovery_ms, per drop: the drop -> the next token's arrival (reconnect, resume request,
  the server's answer: what a user waits); left: streams left for good;
  cancel_after_leave_ms, per left stream: leaving -> the server's generation ending, when
  the server cancelled it (by design one resume grace, `resume_grace_s`, after the drop);
  cancel_beyond_grace_ms: the same minus the grace: how late the server noticed and acted.

- Confidence intervals (`*_ci`, shown as ±half its width): 95%, by a bootstrap over streams
  (harness.analyse.intervals): the streams are drawn again with replacement, each stream
  with all its samples, and the figure computed again; the interval holds the middle 95% of
  those figures. Seeded by the figure's name: the same records give the same interval.
  Every distribution's p50, p90, p99 and mean has one, and so do the per-stream rates,
  bytes per token and requests per stream. A repeated run (`repeat`: rounds, each with a
  server of its own) takes every interval over its rounds instead, CPU's included
  (`harness.analyse.replications`: what varies between runs, which streams of one run
  cannot show). The steady window's share of demand delivered gets one resampling streams
  (their tokens delivered and demanded in the window). Memory has none.
- Tied: transports whose intervals overlap the best one's at a figure. The report names a
  best transport only when no other is tied with it.

Distributions are summarised as p50/p90/p99 (linear interpolation), mean and max, over
every raw sample; nothing is bucketed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from harness.analyse.intervals import median_interval, ratio_interval
from harness.analyse.replications import round_phases
from harness.analyse.steady import steady_figures, steady_parts
from harness.analyse.summary import Distribution, TransportSummary, over_rounds
from harness.measure.records import PhaseRecord, RequestRecord

__all__ = ["Distribution", "TransportSummary", "summarize"]  # the records, from here too

NS_PER_MS = 1_000_000


def first_token_ns(record: RequestRecord) -> int | None:
    """Arrival of the first token with non-empty text."""
    for recv, size in zip(record.recv_ns, record.token_bytes, strict=True):
        if size > 0:
            return recv
    return None


def ttft_ms(record: RequestRecord) -> float | None:
    first = first_token_ns(record)
    return None if first is None else (first - record.scheduled_ns) / NS_PER_MS


def itl_ms(record: RequestRecord) -> list[float]:
    return list(np.diff(np.asarray(record.recv_ns, dtype=np.int64)) / NS_PER_MS)


def tpot_ms(record: RequestRecord) -> float | None:
    if len(record.recv_ns) < 2:
        return None
    return (record.recv_ns[-1] - record.recv_ns[0]) / (len(record.recv_ns) - 1) / NS_PER_MS


def e2e_ms(record: RequestRecord) -> float | None:
    return None if record.end_ns is None else (record.end_ns - record.scheduled_ns) / NS_PER_MS


def queue_wait_ms(record: RequestRecord) -> float | None:
    """Scheduled send -> the stream beginning (None when it was not recorded)."""
    if record.started_ns is None:
        return None
    return (record.started_ns - record.scheduled_ns) / NS_PER_MS


def added_delay_ms(record: RequestRecord) -> list[float]:
    return [
        (recv - emit) / NS_PER_MS
        for recv, emit in zip(record.recv_ns, record.emit_ns, strict=True)
        if emit is not None
    ]


def stream_tokens_per_s(record: RequestRecord) -> float | None:
    e2e = e2e_ms(record)
    if e2e is None or e2e <= 0 or not record.recv_ns:
        return None
    return len(set(record.token_index)) / (e2e / 1000)


def source_gap_error_ms(record: RequestRecord) -> list[float]:
    """How far the source's actual emit gaps were from its plan (mock and trace only):
    |(emit[k] - emit[k-1]) - planned[k]| for every k >= 1, by token index."""
    if not record.planned_delays_ns:
        return []
    emit = {i: e for i, e in zip(record.token_index, record.emit_ns, strict=True) if e is not None}
    planned = record.planned_delays_ns
    return [
        abs((emit[k] - emit[k - 1]) - planned[k]) / NS_PER_MS
        for k in range(1, min(len(planned), record.source_tokens))
        if k in emit and k - 1 in emit
    ]


def count_basis(records: Sequence[RequestRecord]) -> str:
    """Where token counts come from: `source` (planned: the mock or a trace knows them),
    `usage` (a live model reported usage), or `chunks` (a live model that did not: its
    content deltas are counted, which is not a token count)."""
    if any(r.planned_delays_ns for r in records):
        return "source"
    if records and all(r.usage_tokens is not None for r in records if r.error_kind is None):
        return "usage"
    return "chunks"


def lost_tokens(record: RequestRecord) -> int:
    """Indices the source emitted for this stream that never arrived (only those before
    the point where the client left, for a stream left on purpose)."""
    expected = record.source_tokens
    if record.left_ns is not None:
        expected = min(expected, max(record.token_index, default=-1) + 1)
    return len(set(range(expected)) - set(record.token_index))


def recovery_ms(record: RequestRecord) -> list[float]:
    """Per drop: the drop -> the first token that arrived after it."""
    arrivals = np.asarray(record.recv_ns, dtype=np.int64)
    gaps = []
    for dropped in record.drops_ns:
        after = arrivals[arrivals > dropped]
        if after.size:
            gaps.append(float(after.min() - dropped) / NS_PER_MS)
    return gaps


def cancel_after_leave_ms(record: RequestRecord) -> float | None:
    """Leaving -> the server's generation ending, if the server cancelled it."""
    if record.left_ns is None or record.source_ended_ns is None:
        return None
    if not (record.source_error or "").startswith("cancelled"):
        return None
    return (record.source_ended_ns - record.left_ns) / NS_PER_MS


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def window_shares(window_s: float, streams: int) -> list[float]:
    """The run window split evenly over streams: resampled, the window of a rate's interval."""
    return [window_s / streams] * streams if streams and window_s > 0 else [0.0] * streams


def _per_1k(cpu_s: float | None, tokens: int) -> float | None:
    """CPU milliseconds per 1,000 tokens."""
    return None if cpu_s is None or tokens == 0 else cpu_s * 1000 / tokens * 1000


def ttft_minus_direct_ms(phase: PhaseRecord, direct: PhaseRecord) -> Distribution:
    """Per request k (the same prompt and seed on both): this transport's TTFT minus the TTFT
    of `direct`, the same upstream consumed without tokenwire in between. Its median is the
    relay's cost in time to first token, free of the model's request-to-request variation."""
    direct_ttft = {r.index: ttft_ms(r) for r in direct.requests}
    deltas = []
    for record in phase.requests:
        mine, theirs = ttft_ms(record), direct_ttft.get(record.index)
        if mine is not None and theirs is not None:
            deltas.append(mine - theirs)
    return Distribution.of(deltas)


# Per stream, the samples of each distribution (one sample, or none, for a per-stream
# figure); and per stream, the numerator and denominator of each ratio figure (the figure
# is the sum of numerators over the sum of denominators). Summaries and comparisons both
# read these, so an interval and a difference are of the same figure.
STREAM_SAMPLES: dict[str, Callable[[RequestRecord], list[float]]] = {
    "ttft_ms": lambda r: _present([ttft_ms(r)]),
    "itl_ms": itl_ms,
    "tpot_ms": lambda r: _present([tpot_ms(r)]),
    "e2e_ms": lambda r: _present([e2e_ms(r)]),
    "queue_wait_ms": lambda r: _present([queue_wait_ms(r)]),
    "added_delay_ms": added_delay_ms,
    "tokens_per_chunk": lambda r: [float(c) for c in r.chunk_sizes],
    "source_gap_error_ms": source_gap_error_ms,
}


def ratio_parts(phase: PhaseRecord, figure: str) -> tuple[list[float], list[float]]:
    """Per stream, the numerator and denominator of a ratio figure."""
    records = phase.requests
    got = [float(len(set(r.token_index))) for r in records]
    if figure == "aggregate_tokens_per_s":
        window_s = phase.window_s
        return got, window_shares(window_s, len(records))
    if figure == "wire_bytes_per_token":
        return [float(r.bytes_sent + r.bytes_received) for r in records], got
    if figure == "payload_bytes_per_token":
        return [float(sum(r.token_bytes)) for r in records], [
            float(len(r.token_index)) for r in records
        ]
    if figure == "header_bytes_per_token":
        return [float(r.header_bytes) for r in records], got
    if figure == "requests_per_stream":
        return [float(r.requests) for r in records], [1.0] * len(records)
    raise KeyError(figure)


RATIOS = (
    "aggregate_tokens_per_s",
    "wire_bytes_per_token",
    "payload_bytes_per_token",
    "header_bytes_per_token",
    "requests_per_stream",
)


def summarize(phase: PhaseRecord, intervals: bool = True) -> TransportSummary:
    """One transport's figures over a phase, with their 95% intervals (unless `intervals`
    is False): over its streams, or over its rounds when it was repeated."""
    rounds = round_phases(phase) if len(phase.rounds) > 1 else []
    whole = _summarized(phase, intervals and not rounds)
    if not intervals or not rounds:
        return whole
    return over_rounds(whole, [_summarized(r, False) for r in rounds], STREAM_SAMPLES)


def _summarized(phase: PhaseRecord, intervals: bool) -> TransportSummary:
    records: Sequence[RequestRecord] = phase.requests
    received = sum(len(set(r.token_index)) for r in records)
    arrivals = sum(len(r.token_index) for r in records)
    emitted = sum(r.source_tokens for r in records)
    wire = sum(r.bytes_sent + r.bytes_received for r in records)
    payload = sum(sum(r.token_bytes) for r in records)
    window_s = phase.window_s
    streams = len(records)
    per_stream_rate = _present(stream_tokens_per_s(r) for r in records)
    spread = {
        name: Distribution.of_streams([samples(r) for r in records], name, intervals)
        for name, samples in STREAM_SAMPLES.items()
    }
    ci = {f: ratio_interval(*ratio_parts(phase, f), f) if intervals else None for f in RATIOS}
    return TransportSummary(
        ttft_ms=spread["ttft_ms"],
        itl_ms=spread["itl_ms"],
        tpot_ms=spread["tpot_ms"],
        e2e_ms=spread["e2e_ms"],
        queue_wait_ms=spread["queue_wait_ms"],
        added_delay_ms=spread["added_delay_ms"],
        tokens_per_chunk=spread["tokens_per_chunk"],
        source_gap_error_ms=spread["source_gap_error_ms"],
        tokens_per_s=float(np.median(per_stream_rate)) if per_stream_rate else None,
        aggregate_tokens_per_s=received / window_s if window_s > 0 else None,
        wire_bytes_per_token=wire / received if received else None,
        payload_bytes_per_token=payload / arrivals if arrivals else None,
        header_bytes_per_token=sum(r.header_bytes for r in records) / received
        if received
        else None,
        requests_per_stream=sum(r.requests for r in records) / streams if streams else 0.0,
        empty_polls=sum(r.empty_polls for r in records),
        empty_polls_per_stream=sum(r.empty_polls for r in records) / streams if streams else 0.0,
        server_cpu_ms_per_1k_tokens=_per_1k(phase.server_cpu_s, received),
        client_cpu_ms_per_1k_tokens=_per_1k(phase.client_cpu_s, received),
        server_rss_mb=None if phase.server_rss_bytes is None else phase.server_rss_bytes / 2**20,
        token_count_basis=count_basis(records),
        usage_tokens=(
            sum(r.usage_tokens or 0 for r in records)
            if any(r.usage_tokens is not None for r in records)
            else None
        ),
        streams=streams,
        tokens_emitted=emitted,
        tokens_received=received,
        tokens_lost=sum(lost_tokens(r) for r in records),
        tokens_duplicated=arrivals - received,
        text_mismatches=sum(r.text_mismatches for r in records),
        errors=sum(1 for r in records if r.error_kind is not None),
        **steady_figures(records),
        **raw_client_figures(phase, _per_1k(phase.client_cpu_s, received)),
        **fault_figures(phase),
        tokens_per_s_ci=median_interval(per_stream_rate, "tokens_per_s") if intervals else None,
        aggregate_tokens_per_s_ci=ci["aggregate_tokens_per_s"],
        wire_bytes_per_token_ci=ci["wire_bytes_per_token"],
        payload_bytes_per_token_ci=ci["payload_bytes_per_token"],
        header_bytes_per_token_ci=ci["header_bytes_per_token"],
        requests_per_stream_ci=ci["requests_per_stream"],
        delivered_ratio_ci=(
            ratio_interval(*parts, "delivered_ratio")
            if intervals and (parts := steady_parts(records)) is not None
            else None
        ),
    )


def raw_client_figures(phase: PhaseRecord, client_us_per_token: float | None) -> dict[str, Any]:
    """The raw client's CPU per token from the same run, and the harness client's ratio."""
    raw = None if phase.setup is None else phase.setup.raw_client
    if raw is None or not raw.tokens:
        return {}
    floor = raw.cpu_s / raw.tokens * 1e6
    ratio = None if client_us_per_token is None or floor <= 0 else client_us_per_token / floor
    return {"raw_client_cpu_us_per_token": floor, "client_vs_raw_cpu": ratio}


def fault_figures(phase: PhaseRecord) -> dict[str, Any]:
    """The fault benchmark's figures; empty (defaults) when nothing was dropped or left."""
    records = phase.requests
    if not any(r.drops_ns or r.left_ns is not None for r in records):
        return {}
    cancels = _present(cancel_after_leave_ms(r) for r in records)
    grace_s = None if phase.setup is None else phase.setup.resume_grace_s
    grace_ms = (grace_s or 0.0) * 1000
    return {
        "drops": sum(len(r.drops_ns) for r in records),
        "recovery_ms": Distribution.of(g for r in records for g in recovery_ms(r)),
        "left": sum(1 for r in records if r.left_ns is not None),
        "cancel_after_leave_ms": Distribution.of(cancels),
        "cancel_beyond_grace_ms": Distribution.of(c - grace_ms for c in cancels),
    }
