"""Per-stream records of a load test, from the locust user that ran a stream to a results folder.

1. `verdict(result)`: what locust is told about one stream: time to first token, full-stream
   time, tokens received, and a failure message when the stream failed (a transport error,
   an HTTP error, bad framing, lost or duplicated tokens, no terminal message). Locust rounds
   these times; the full-resolution record is kept here.
2. `pack` / `unpack`: the compact form a stream's record travels in, from a locust worker to
   the master inside locust's `report_to_master` data (`Batch`). Plain lists of ints and
   strings (msgpack-friendly); arrival stamps as nanosecond differences, nothing rounded.
3. `LoadCollection`: every process's batches, merged (on the master, or in a local run), and
   `save_load_run`, which fetches the server's emit timelines, joins them with what the
   clients saw (`harness.measure.run.joining.join`) and saves a run folder in the schema of
   `bench.py run`
   (`harness.analyse.results.save_run`), one phase per transport.

Clocks: a stream's stamps come from the clock of the process that ran it. Streams run on
another host than the master keep their client-side figures (TTFT, ITL, E2E), but their
server emit stamps are dropped: the two clocks are not comparable, so there is no added delay.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from clients.interface import StreamError, StreamResult
from errors import ErrorKind
from harness.analyse.metrics import NS_PER_MS
from harness.analyse.results import RunResult, environment, save_run
from harness.measure.records import LoadTestSetup, PhaseRecord, RequestRecord, SharedWindow
from harness.measure.run.joining import join
from harness.measure.run.timelines import Timeline, fetch_timelines
from harness.measure.scenario import Scenario


@dataclass(frozen=True, slots=True)
class StreamVerdict:
    ttft_ms: float | None  # scheduled send -> first token with non-empty text
    stream_ms: float  # scheduled send -> terminal message (or the failure)
    tokens: int  # distinct token indices received
    failure: str | None


def first_token_ns(result: StreamResult) -> int | None:
    for recv, text in zip(result.recv_ns, result.texts, strict=True):
        if text:
            return recv
    return None


def failure_of(result: StreamResult) -> str | None:
    """Why a stream counts as failed, in one line; None when it delivered every token once."""
    if result.error is not None:
        return f"{result.error.kind}: {result.error.message}"
    if result.end_ns is None:
        return "incomplete: the stream ended without a terminal message"
    received = set(result.indices)
    expected = result.end_tokens if result.end_tokens is not None else max(received, default=-1) + 1
    lost = sorted(set(range(expected)) - received)
    if lost:
        return f"lost {len(lost)} of {expected} tokens (first missing index {lost[0]})"
    beyond = sorted(i for i in received if not 0 <= i < expected)
    if beyond:
        return f"{len(beyond)} tokens beyond the {expected} the server reported (index {beyond[0]})"
    duplicated = len(result.indices) - len(received)
    if duplicated:
        return f"{duplicated} tokens arrived twice"
    if not received:
        return "no token arrived before the terminal message"
    return None


def verdict(result: StreamResult, now_ns: int) -> StreamVerdict:
    """`now_ns` stands in for the end of a stream that never ended (a failure)."""
    first = first_token_ns(result)
    end = result.end_ns if result.end_ns is not None else now_ns
    return StreamVerdict(
        ttft_ms=None if first is None else (first - result.scheduled_ns) / NS_PER_MS,
        stream_ms=(end - result.scheduled_ns) / NS_PER_MS,
        tokens=len(set(result.indices)),
        failure=failure_of(result),
    )


Packed = list[Any]


def _deltas(start: int, stamps: Sequence[int]) -> list[int]:
    out, last = [], start
    for stamp in stamps:
        out.append(stamp - last)
        last = stamp
    return out


def _undelta(start: int, deltas: Sequence[int]) -> list[int]:
    out, last = [], start
    for delta in deltas:
        last += delta
        out.append(last)
    return out


def pack(seed: int, result: StreamResult) -> Packed:
    error = result.error
    return [
        result.transport,
        result.stream_id,
        seed,
        result.scheduled_ns,
        result.end_ns,
        result.end_tokens,
        list(result.indices),
        _deltas(result.scheduled_ns, result.recv_ns),
        list(result.texts),
        list(result.chunk_sizes),
        result.bytes_sent,
        result.bytes_received,
        result.header_bytes,
        result.requests,
        result.empty_polls,
        None if error is None else error.kind,
        None if error is None else error.message,
        result.pieces,
    ]


def unpack(packed: Packed) -> tuple[int, StreamResult]:
    (
        transport,
        stream_id,
        seed,
        scheduled_ns,
        end_ns,
        end_tokens,
        indices,
        recv_deltas,
        texts,
        chunk_sizes,
        bytes_sent,
        bytes_received,
        header_bytes,
        requests,
        empty_polls,
        error_kind,
        error_message,
        *rest,
    ) = packed
    result = StreamResult(
        transport=transport,
        stream_id=stream_id,
        scheduled_ns=scheduled_ns,
        indices=list(indices),
        recv_ns=_undelta(scheduled_ns, recv_deltas),
        texts=list(texts),
        chunk_sizes=list(chunk_sizes),
        end_ns=end_ns,
        end_tokens=end_tokens,
        bytes_sent=bytes_sent,
        bytes_received=bytes_received,
        header_bytes=header_bytes,
        requests=requests,
        empty_polls=empty_polls,
        error=None if error_kind is None else StreamError(ErrorKind(error_kind), error_message),
        pieces=rest[0] if rest else None,  # raw: texts are pieces, `join` aligns them
    )
    return seed, result


@dataclass(slots=True)
class Batch:
    """What one locust process hands over: its new streams since the last batch, and, in its
    last batch of a test (`final`), the CPU its process spent during the test."""

    worker: int
    host: str
    streams: list[Packed] = field(default_factory=list)
    final: bool = False
    client_cpu_s: float | None = None

    def to_wire(self) -> dict[str, Any]:
        """Every field by its name (`from_wire` reads them back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Batch:
        return cls(
            worker=int(data["worker"]),
            host=str(data["host"]),
            streams=list(data["streams"]),
            final=bool(data["final"]),
            client_cpu_s=data["client_cpu_s"],
        )


@dataclass(frozen=True, slots=True)
class Collected:
    seed: int
    result: StreamResult
    worker: int
    host: str


@dataclass
class LoadCollection:
    """Every stream of one test, from every process that ran users."""

    streams: list[Collected] = field(default_factory=list)
    finished_workers: dict[int, float | None] = field(default_factory=dict)  # worker -> CPU s

    def add(self, batch: Batch) -> None:
        for packed in batch.streams:
            seed, result = unpack(packed)
            self.streams.append(Collected(seed, result, batch.worker, batch.host))
        if batch.final:
            self.finished_workers[batch.worker] = batch.client_cpu_s

    def client_cpu_s(self) -> float | None:
        """CPU the user-running processes spent, summed; None unless every one reported it."""
        spent = list(self.finished_workers.values())
        if not spent or any(s is None for s in spent):
            return None
        return sum(s for s in spent if s is not None)

    def streams_per_worker(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for stream in self.streams:
            counts[str(stream.worker)] = counts.get(str(stream.worker), 0) + 1
        return dict(sorted(counts.items()))


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """The test as the master (or the local runner) saw it, on its own clock."""

    start_ns: int
    end_ns: int
    started: dt.datetime
    finished: dt.datetime
    server_cpu_s: float | None  # None when the server's PID is not known
    server_rss_bytes: int | None


def records_of(
    collection: LoadCollection, transport: str, timelines: dict[str, Timeline]
) -> list[RequestRecord]:
    here = socket.gethostname()
    mine = sorted(
        (s for s in collection.streams if s.result.transport == transport),
        key=lambda s: (s.worker, s.result.scheduled_ns),
    )
    records = []
    for index, stream in enumerate(mine):
        record = join(index, stream.seed, stream.result, timelines.get(stream.result.stream_id))
        if stream.host != here:  # another host's clock: emit stamps are not comparable
            record.emit_ns = [None] * len(record.emit_ns)
        records.append(record)
    return records


def build_phases(
    collection: LoadCollection,
    transports: Sequence[str],
    timelines: dict[str, Timeline],
    window: LoadWindow,
) -> dict[str, PhaseRecord]:
    shared = len(transports) > 1
    client_cpu = collection.client_cpu_s()
    setup = LoadTestSetup(
        order="interleaved" if shared else "sequential",
        streams_per_worker=collection.streams_per_worker(),
        hosts=sorted({s.host for s in collection.streams}),
        shared_window=SharedWindow(window.server_cpu_s, client_cpu) if shared else None,
    )
    return {
        transport: PhaseRecord(
            transport=transport,
            window_start_ns=window.start_ns,
            window_end_ns=window.end_ns,
            server_cpu_s=None if shared else window.server_cpu_s,
            client_cpu_s=None if shared else client_cpu,
            server_rss_bytes=window.server_rss_bytes,
            requests=records_of(collection, transport, timelines),
            load_test=setup,
        )
        for transport in transports
    }


def save_load_run(
    out_dir: Path,
    scenario: Scenario,
    transports: Sequence[str],
    collection: LoadCollection,
    window: LoadWindow,
    base_url: str,
    argv: list[str],
    load_metadata: dict[str, Any],
) -> RunResult:
    """Join every stream with the server's timeline and save the run folder (a snapshot of
    `collection`: reports that arrive meanwhile are not half-joined)."""
    collection = LoadCollection(list(collection.streams), dict(collection.finished_workers))
    ids = [s.result.stream_id for s in collection.streams if s.result.stream_id]
    # The driver's own (async) fetch; at the end of a test, with no user left running.
    timelines = asyncio.run(fetch_timelines(base_url, ids))
    phases = build_phases(collection, transports, timelines, window)
    metadata = environment(window.started, window.finished, argv)
    metadata["load"] = {
        **load_metadata,
        "streams_per_worker": collection.streams_per_worker(),
        "workers_finished": sorted(collection.finished_workers),
        "server_cpu_s": window.server_cpu_s,
        "client_cpu_s": collection.client_cpu_s(),
    }
    run = RunResult.single(metadata, scenario.to_json(), phases)
    save_run(run, out_dir)
    return run
