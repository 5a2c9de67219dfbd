"""One probe: the repeats, the reconnect check, the judgement. The glue between the I/O
(`read.py`) and the pure analysis (`analyse.py`, `reconnect.py`, `verdict.py`)."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from harness.probe.analyse import RunAnalysis, analyse_run
from harness.probe.read import KeepAlive, fetch
from harness.probe.reconnect import (
    EnoughEvents,
    Reconnect,
    classify_reconnect,
    needs_reconnect_check,
)
from harness.probe.request import ProbeRequest
from harness.probe.verdict import Judgement, judge

RECONNECT_EVENTS = 2  # a reconnect is read until it has sent this many events
RECONNECT_MIN_WAIT_S = 2.0


@dataclass
class ProbeResult:
    request: ProbeRequest
    runs: list[RunAnalysis]
    reconnect: Reconnect | None
    judgement: Judgement


async def probe_async(request: ProbeRequest, strict: bool = False) -> ProbeResult:
    """The repeats: the first on a new connection, the others on the connection it leaves
    open (a new one each with `fresh`), as a browser or an SDK client sends requests."""
    runs: list[RunAnalysis] = []
    reconnect = None
    keep_alive = None if request.fresh else KeepAlive()
    try:
        for index in range(request.repeat):
            run = analyse_run(await fetch(request, keep_alive=keep_alive), request.kind)
            runs.append(run)
            if not run.streamed:
                break  # no stream to measure: repeating would only repeat the failure
            if index == 0 and needs_reconnect_check(run):
                reconnect = await check_reconnect(request, run)
    finally:
        if keep_alive is not None:
            await keep_alive.close()
    return ProbeResult(request, runs, reconnect, judge(runs, reconnect, strict))


async def check_reconnect(request: ProbeRequest, first: RunAnalysis) -> Reconnect:
    """Reconnect as EventSource does once a stream closes: the same request, with
    `Last-Event-ID` when events carried ids. Read only until it has sent a couple of events
    (or a while longer than the first stream took)."""
    last_id = first.last_id if first.ids_sent and first.last_id else None
    headers = (("Last-Event-ID", last_id),) if last_id is not None else ()
    wait_s = max(RECONNECT_MIN_WAIT_S, 3 * (first.e2e_ms or 0) / 1000)
    again = dataclasses.replace(request, timeout_s=min(request.timeout_s, wait_s))
    exchange = await fetch(again, headers, EnoughEvents(RECONNECT_EVENTS))
    return classify_reconnect(first, exchange, last_id)


def probe(request: ProbeRequest, strict: bool = False) -> ProbeResult:
    return asyncio.run(probe_async(request, strict))
