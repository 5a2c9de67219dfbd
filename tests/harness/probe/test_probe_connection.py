"""The probe's connection-level rules on hand-made reads (no sockets): `nagle` (the first
body bytes late on a reused keep-alive connection), `idle_timeout` (closed while silent,
before any event) and `no_heartbeat` (a long silence in a stream that did deliver)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.probe.analyse import IDLE_CLOSE_MS, SILENCE_MS, analyse_run
from harness.probe.exchange import Ending, Exchange
from harness.probe.http1 import Head
from harness.probe.verdict import NAGLE_MS, judge

T0 = 1_000_000_000
MS = 1_000_000
HEAD = Head(200, "OK", (("content-type", "text/event-stream"), ("cache-control", "no-cache")))


def events(n: int) -> list[bytes]:
    return [f'data: {{"i":{i},"t":"x"}}\nid: {i}\n\n'.encode() for i in range(n)] + [
        b'data: {"done":true}\n\n'
    ]


def exchange(
    head_ms: float,
    body_ms: Sequence[float],
    pieces: Sequence[bytes] | None = None,
    reused: bool = False,
    ending: Ending = Ending.COMPLETE,
    end_ms: float | None = None,
) -> Exchange:
    pieces = pieces if pieces is not None else events(len(body_ms) - 1)
    reads = [(T0 + int(ms * MS), p) for ms, p in zip(body_ms, pieces, strict=True)]
    end = T0 + int((end_ms if end_ms is not None else max([head_ms, *body_ms])) * MS)
    return Exchange(
        "http",
        T0,
        HEAD,
        T0 + int(head_ms * MS),
        reads,
        end_ns=end,
        ending=ending,
        reused=reused,
    )


def stream(first_ms: float, head_ms: float = 1.0, reused: bool = False) -> Exchange:
    """Ten events 20 ms apart from `first_ms`, the head at `head_ms`."""
    return exchange(head_ms, [first_ms + 20 * i for i in range(11)], reused=reused)


def codes(runs: list[Exchange]) -> list[str]:
    judgement = judge([analyse_run(e) for e in runs], None)
    return [f.code for f in judgement.problems + judgement.warnings]


def test_nagle_named_when_the_reused_connection_adds_the_delayed_ack() -> None:
    """Head and first token together on the new connection, 41 ms apart on the reused ones
    (what `--fault nagle` measured): `nagle`, with both figures as evidence."""
    runs = [stream(300, head_ms=300), stream(341, 300, True), stream(342, 300, True)]
    judgement = judge([analyse_run(e) for e in runs], None)
    (found,) = [w for w in judgement.warnings if w.code == "nagle"]
    assert "41.5 ms after the head on the reused connection" in found.message
    assert "0.0 ms after it on a new one" in found.message
    assert "TCP_NODELAY" in (found.fix or "")


def test_nagle_needs_a_reused_and_a_new_connection() -> None:
    late = [stream(341, 300, True), stream(342, 300, True)]
    assert "nagle" not in codes(late)  # no new connection to compare with
    fresh = [stream(341, 300), stream(342, 300)]
    assert "nagle" not in codes(fresh)  # --fresh-connections: nothing to compare


def test_nagle_not_named_outside_the_delayed_ack_window() -> None:
    """A source that takes 200 ms after the head on every connection is no Nagle stall,
    nor is a reused connection as quick as the new one."""
    slow = [stream(200), stream(200, reused=True), stream(200, reused=True)]
    assert "nagle" not in codes(slow)
    quick = [stream(10), stream(11, reused=True), stream(12, reused=True)]
    assert "nagle" not in codes(quick)
    beyond = NAGLE_MS[1] + 20
    late = [stream(0, 0), stream(beyond, 0, True), stream(beyond, 0, True)]
    assert "nagle" not in codes(late)


def test_idle_timeout_names_a_close_after_silence_before_any_event() -> None:
    """Head at once, then nothing until the path closed the connection 5 s later."""
    closed = exchange(1, [], pieces=[], ending=Ending.EOF, end_ms=5001)
    closed.error = "the server closed the connection before the response ended"
    run = analyse_run(closed)
    (found,) = [f for f in run.findings if f.code == "idle_timeout"]
    assert "after 5.0 s with no bytes, before any event" in found.message
    assert "connection_error" not in [f.code for f in run.findings]


def test_a_quick_close_is_a_connection_error_not_an_idle_timeout() -> None:
    cut = exchange(1, [], pieces=[], ending=Ending.EOF, end_ms=IDLE_CLOSE_MS / 2)
    found = [f.code for f in analyse_run(cut).findings]
    assert "connection_error" in found and "idle_timeout" not in found


def test_no_heartbeat_for_a_long_silence_and_not_when_keep_alives_fill_it() -> None:
    wait = SILENCE_MS + 1000
    silent = exchange(1, [wait + 20 * i for i in range(11)])
    run = analyse_run(silent)
    assert run.silence_ms is not None and run.silence_ms >= wait - 1
    assert "no_heartbeat" in [f.code for f in run.findings]
    # the same wait filled with a keep-alive comment every second
    beats = [1000.0 * k for k in range(1, int(wait // 1000) + 1)]
    pieces = [b": keep-alive\n\n"] * len(beats) + events(10)
    filled = exchange(1, [*beats, *(wait + 20 * i for i in range(11))], pieces=pieces)
    run = analyse_run(filled)
    assert run.silence_ms is not None and run.silence_ms <= 1000
    assert "no_heartbeat" not in [f.code for f in run.findings]
    assert len(run.events) == 11  # the comments are no events


def test_reused_flag_reaches_the_analysis() -> None:
    run = analyse_run(dataclasses.replace(stream(10), reused=True))
    assert run.reused
