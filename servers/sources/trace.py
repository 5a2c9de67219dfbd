"""Recorded token timing: the trace file format, and a source that replays it exactly.

A trace is JSON Lines. The first line describes the recording; each further line is one
request as a live model answered it:

    {"kind": "tokenwire-trace", "version": 1, "model": "...", "recorded_utc": "...", ...}
    {"prompt": "...", "tokens": [{"t": " Hello", "at_ms": 81.2}, ...], "usage": 64, ...}

`at_ms` is the arrival of each content delta relative to the request's send time, as the
recording client saw it. Replaying schedules token k at `at_ms[k] / speed` from the start,
so every transport sees the identical, real rhythm.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson

from errors import SourceSettingsError
from servers.sources.mock import Plan, SourceItem, replay_plan
from wire.messages import GenerationRequest

TRACE_KIND = "tokenwire-trace"
TRACE_VERSION = 1


@dataclass(frozen=True, slots=True)
class TracedToken:
    text: str
    at_ms: float


@dataclass(frozen=True, slots=True)
class TracedRequest:
    prompt: str
    tokens: tuple[TracedToken, ...]
    usage: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "tokens": [{"t": t.text, "at_ms": round(t.at_ms, 4)} for t in self.tokens],
            "usage": self.usage,
        }


@dataclass(frozen=True, slots=True)
class Trace:
    header: dict[str, Any]
    requests: tuple[TracedRequest, ...]


def dump_trace(header: dict[str, Any], requests: Sequence[TracedRequest]) -> bytes:
    lines = [orjson.dumps({"kind": TRACE_KIND, "version": TRACE_VERSION, **header})]
    lines += [orjson.dumps(r.to_json()) for r in requests]
    return b"\n".join(lines) + b"\n"


def parse_trace(data: bytes, where: str = "trace") -> Trace:
    lines = [line for line in data.splitlines() if line.strip()]
    try:
        header = orjson.loads(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("kind") != TRACE_KIND:
            raise SourceSettingsError(
                f"{where}: not a tokenwire trace (first line must name {TRACE_KIND})"
            )
        if header.get("version") != TRACE_VERSION:
            raise SourceSettingsError(
                f"{where}: trace version {header.get('version')!r} is not supported"
            )
        requests = []
        for number, line in enumerate(lines[1:], start=2):
            item = orjson.loads(line)
            tokens = tuple(TracedToken(str(t["t"]), float(t["at_ms"])) for t in item["tokens"])
            if not tokens:
                raise SourceSettingsError(f"{where}:{number}: a traced request has no tokens")
            if any(b.at_ms < a.at_ms for a, b in pairwise(tokens)):
                raise SourceSettingsError(f"{where}:{number}: token times go backwards")
            requests.append(TracedRequest(str(item.get("prompt", "")), tokens, item.get("usage")))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SourceSettingsError(f"{where}: malformed trace line: {exc}") from None
    if not requests:
        raise SourceSettingsError(f"{where}: the trace holds no requests")
    return Trace(header=header, requests=tuple(requests))


def load_trace(path: Path) -> Trace:
    try:
        return parse_trace(path.read_bytes(), str(path))
    except OSError as exc:
        raise SourceSettingsError(f"cannot read trace {path}: {exc.strerror or exc}") from None


def trace_plan(request: TracedRequest) -> Plan:
    times = [t.at_ms for t in request.tokens]
    delays = [times[0], *(b - a for a, b in pairwise(times))]
    return Plan(
        texts=tuple(t.text for t in request.tokens),
        delays_ns=tuple(round(d * 1_000_000) for d in delays),
    )


@dataclass(frozen=True, slots=True)
class TraceSource:
    """Replays a recorded trace: request seed k gets traced request k (cycling)."""

    trace: Trace
    speed: float = 1.0
    name: str = "trace"

    @property
    def model(self) -> str:
        return f"trace:{self.trace.header.get('model', 'unknown')}"

    def plan(self, request: GenerationRequest) -> Plan:
        traced = self.trace.requests[request.seed % len(self.trace.requests)]
        plan = trace_plan(traced)
        if request.max_tokens is not None:
            plan = Plan(plan.texts[: request.max_tokens], plan.delays_ns[: request.max_tokens])
        if self.speed != 1.0:  # the plan as it will run: what its timing is checked against
            plan = Plan(plan.texts, tuple(round(d / self.speed) for d in plan.delays_ns))
        return plan

    def stream(self, request: GenerationRequest) -> AsyncGenerator[SourceItem, None]:
        return replay_plan(self.plan(request))
