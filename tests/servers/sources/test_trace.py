"""Trace files: written, read back, validated, and replayed on their recorded schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from errors import SourceError
from servers.sources.trace import (
    TracedRequest,
    TracedToken,
    TraceSource,
    dump_trace,
    load_trace,
    parse_trace,
    trace_plan,
)
from wire.messages import GenerationRequest

REQUESTS = [
    TracedRequest("p0", (TracedToken("Hel", 80.0), TracedToken("lo\n", 95.5)), usage=2),
    TracedRequest(
        "p1", (TracedToken("東", 10.0), TracedToken("京", 10.0), TracedToken("!", 42.25))
    ),
]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(dump_trace({"model": "m"}, REQUESTS))
    trace = load_trace(path)
    assert trace.requests == tuple(REQUESTS)
    assert trace.header["model"] == "m" and trace.header["kind"] == "tokenwire-trace"


def test_plan_reproduces_the_recorded_gaps() -> None:
    plan = trace_plan(REQUESTS[1])
    assert plan.texts == ("東", "京", "!")
    assert plan.delays_ns == (10_000_000, 0, 32_250_000)


def test_source_cycles_requests_and_caps_tokens() -> None:
    source = TraceSource(parse_trace(dump_trace({"model": "m"}, REQUESTS)), speed=2.0)
    assert source.plan(GenerationRequest(seed=3)).texts == ("東", "京", "!")
    assert source.plan(GenerationRequest(seed=0, max_tokens=1)).texts == ("Hel",)
    assert source.model == "trace:m"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "not a tokenwire trace"),
        (b'{"kind":"other"}\n', "not a tokenwire trace"),
        (b'{"kind":"tokenwire-trace","version":9}\n', "version 9 is not supported"),
        (b'{"kind":"tokenwire-trace","version":1}\n', "holds no requests"),
        (b'{"kind":"tokenwire-trace","version":1}\n{"tokens":[]}\n', "has no tokens"),
        (b'{"kind":"tokenwire-trace","version":1}\n{"tokens":[{"t":"a"}]}\n', "malformed"),
        (
            b'{"kind":"tokenwire-trace","version":1}\n'
            b'{"tokens":[{"t":"a","at_ms":5},{"t":"b","at_ms":4}]}\n',
            "go backwards",
        ),
    ],
)
def test_bad_traces_are_rejected(data: bytes, needle: str) -> None:
    with pytest.raises(SourceError, match=needle):
        parse_trace(data)


def test_missing_trace_file() -> None:
    with pytest.raises(SourceError, match="cannot read trace"):
        load_trace(Path("/nonexistent/trace.jsonl"))
