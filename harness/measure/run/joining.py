"""Joining what the clients saw with the server's timelines into `RequestRecord`s.

Each received token is paired with its server emit stamp and its text checked against the
source's. A framing without token boundaries (`raw`) delivers pieces of text, which are
first aligned to the source's tokens by cumulative length (`received_tokens`).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clients.interface import StreamError, StreamResult
from errors import ErrorKind
from harness.measure.records import RequestRecord, SweepValue
from harness.measure.run.jobs import Job
from harness.measure.run.timelines import Timeline, fetch_ended_timelines, own_timeline
from transports import DIRECT
from wire.raw import PIECE_FORMS


def relayed_problems(timeline: Timeline | None) -> list[dict[str, str]]:
    """The live upstream's problem that failed the server's generation, if one did."""
    if timeline is None or timeline.problem is None:
        return []
    problem = timeline.problem
    return [{"code": problem["code"], "severity": "problem", "message": problem["message"]}]


@dataclass(frozen=True, slots=True)
class Received:
    """The tokens a client received: index, arrival stamp and text of each, tokens per read;
    `extra`: text past the source's last token (pieces only)."""

    indices: list[int]
    recv_ns: list[int]
    texts: list[str]
    chunk_sizes: list[int]
    extra: bool = False


def received_tokens(result: StreamResult, timeline: Timeline | None) -> Received:
    """What the client received, token by token. A framing without token boundaries (`raw`)
    delivers pieces of text: token i counts as received with the piece that brought its
    last character, found by cumulative length against the source's token texts (in the form
    they take on the wire: `StreamResult.pieces`). What that cannot tell: where tokens end
    within a piece, and duplicates (a repeated text only shifts what follows: mismatches)."""
    if result.pieces is None or timeline is None:
        return Received(result.indices, result.recv_ns, result.texts, result.chunk_sizes)
    form = PIECE_FORMS[result.pieces]
    ends = list(itertools.accumulate(len(form(t)) for t in timeline.texts))
    piece_ends = list(itertools.accumulate(len(p) for p in result.texts))
    received = "".join(result.texts)
    indices: list[int] = []
    recv_ns: list[int] = []
    texts: list[str] = []
    start = k = 0
    for i, end in enumerate(ends):
        k = bisect.bisect_left(piece_ends, end, lo=k)
        if k == len(piece_ends):
            break  # its last character never came: this token and the rest are lost
        indices.append(i)
        recv_ns.append(result.recv_ns[k])
        texts.append(received[start:end])
        start = end
    chunk_sizes = [len(list(run)) for _, run in itertools.groupby(recv_ns)]
    extra = len(received) > (ends[-1] if ends else 0)
    return Received(indices, recv_ns, texts, chunk_sizes, extra)


def join(index: int, seed: int, result: StreamResult, timeline: Timeline | None) -> RequestRecord:
    """Pair each received token with its server emit stamp and check its text."""
    emit: list[int | None] = []
    got = received_tokens(result, timeline)
    mismatches = int(got.extra)
    for i, text in zip(got.indices, got.texts, strict=True):
        if timeline is not None and 0 <= i < len(timeline.texts):
            emit.append(timeline.emit_ns[i])
            mismatches += timeline.texts[i] != text
        else:
            emit.append(None)
            mismatches += 1
    error = result.error
    if error is None and timeline is None:
        error = StreamError(ErrorKind.TIMELINE, "the server has no timeline for this stream")
    return RequestRecord(
        transport=result.transport,
        index=index,
        seed=seed,
        stream_id=result.stream_id,
        scheduled_ns=result.scheduled_ns,
        end_ns=result.end_ns,
        started_ns=result.started_ns,
        token_index=list(got.indices),
        recv_ns=list(got.recv_ns),
        emit_ns=emit,
        token_bytes=[len(t.encode()) for t in got.texts],
        chunk_sizes=list(got.chunk_sizes),
        source_tokens=timeline.tokens if timeline is not None else 0,
        usage_tokens=timeline.usage_tokens if timeline is not None else None,
        planned_delays_ns=None if timeline is None else timeline.planned_delays_ns,
        text_mismatches=mismatches,
        bytes_sent=result.bytes_sent,
        bytes_received=result.bytes_received,
        header_bytes=result.header_bytes,
        requests=result.requests,
        empty_polls=result.empty_polls,
        http_version=result.http_version,
        packets_lost=result.packets_lost,
        drops_ns=list(result.drops_ns),
        left_ns=result.left_ns,
        source_ended_ns=None if timeline is None else timeline.ended_ns,
        source_error=None if timeline is None else timeline.error,
        error_kind=None if error is None else error.kind,
        error_message=None if error is None else error.message,
        problems=[*result.problems, *relayed_problems(timeline)],
        connections=result.connections,
        tls_handshakes=result.tls_handshakes,
        conversation=None if result.turn is None else result.turn.conversation,
        turn=None if result.turn is None else result.turn.index,
        state=None if result.turn is None else result.turn.state,
        keepalive=None if result.turn is None else result.turn.keepalive,
    )


async def records_for(
    urls: Sequence[str],
    jobs: Sequence[Job],
    results: Sequence[StreamResult],
    sweep_value: SweepValue | None,
    left_stream_patience_s: float = 0.0,
    routes: Mapping[str, int] | None = None,
) -> list[RequestRecord]:
    """The records of a phase's streams, each joined with its timeline, fetched from the
    server the stream went to (`urls`: every server's base URL; `routes`: stream id -> index
    in `urls`; a stream not in it went to the first)."""
    relayed: dict[int, list[str]] = {}
    for job, r in zip(jobs, results, strict=True):
        if job.transport != DIRECT:
            relayed.setdefault((routes or {}).get(r.stream_id, 0), []).append(r.stream_id)
    patience_s = 0.0 if not any(r.left_ns for r in results) else left_stream_patience_s
    timelines: dict[str, Timeline] = {}
    for found in await asyncio.gather(
        *(fetch_ended_timelines(urls[k], ids, patience_s) for k, ids in relayed.items())
    ):
        timelines |= found
    records = []
    for job, result in zip(jobs, results, strict=True):
        timeline = own_timeline(result) if job.transport == DIRECT else None
        record = join(
            job.request.seed, job.request.seed, result, timeline or timelines.get(result.stream_id)
        )
        record.sweep_value = sweep_value
        planned = job.request.tool_call()
        record.tool_call_ok = None if planned is None else result.tool_call == planned
        records.append(record)
    return records
