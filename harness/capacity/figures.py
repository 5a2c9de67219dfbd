"""What a capacity search found: a transport's capacity and figures from its probes on one
server stack (`conclude`: capacity, the limiting figure, cores busy, streams per core,
memory per stream, a threaded stack's thread limit), and the whole run (`CapacityRun`: a
cell per transport and stack), both as `capacity.json` holds them. Pure. The definitions
are in `harness/capacity/__init__.py`.

`capacity.json` versions: 1, `transports.<name>` (one stack, the default); 2, `cells`, a
list, each naming its transport and stack (`CapacityRun.from_json` reads both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from harness.capacity.assess import SEARCH, UNLOADED, Probe
from harness.capacity.search import SearchLimits, bracket
from harness.capacity.slo import FIGURES, NO_DESIGN_DELAY, DesignDelay, Slo, fmt
from stacks import DEFAULT as DEFAULT_STACK

SCHEMA_VERSION = 2
# a threaded stack's thread limit bound the capacity when the capacity is within this share
# of the limit (the search brackets to within 10%) and the first failure lies above it
THREAD_BOUND_SHARE = 0.9


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
    stack: str = DEFAULT_STACK  # the server stack the probes ran on (stacks.py)
    workers: int | None = None  # a threaded stack's worker processes (None: not threaded)
    threads: int | None = None  # a threaded stack's threads per worker, resolved

    @property
    def probes_run(self) -> int:
        return len(self.probes)

    @property
    def thread_limit(self) -> int | None:
        """Requests a threaded stack serves at once, workers x threads (a push stream holds
        a thread from start to end); None for other stacks."""
        if self.workers is None or self.threads is None:
            return None
        return self.workers * self.threads

    @property
    def bound_by_threads(self) -> bool:
        """The thread limit bound the capacity: it is within `THREAD_BOUND_SHARE` of the
        limit, at most the limit, and the first failure came above the limit (streams beyond
        the threads waited for one)."""
        limit = self.thread_limit
        if limit is None or not self.capacity or self.limiting_concurrency is None:
            return False
        near = THREAD_BOUND_SHARE * limit <= self.capacity <= limit
        return near and self.limiting_concurrency > limit

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "probes"}
        data["probes_run"] = self.probes_run
        data["thread_limit"] = self.thread_limit
        data["bound_by_threads"] = self.bound_by_threads
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
    design: DesignDelay = NO_DESIGN_DELAY,
    strict: bool = False,
    raised: dict[str, float] | None = None,
    stack: str = DEFAULT_STACK,
    workers: int | None = None,
    threads: int | None = None,
) -> TransportCapacity:
    """The transport's capacity and figures from its probes on `stack` (a threaded one's
    `workers` and `threads`); `stopped` is why the search ended (`Step.why`, "time", or
    "unloaded" when the unloaded probe failed); `raised`: the unloaded values its limits
    were raised by (figure -> value)."""
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
    limiting = None
    if limiting_probe is not None:
        limiting = limiting_probe.verdict.limiting()
        added = limiting_probe.verdict.figure("added_delay_p99_ms")
        if design.ms and strict and not floor and added is not None and not added.passed:
            limiting += f" (by design: {transport} waits up to its {design.what}, "
            limiting += f"{fmt(design.ms)} ms; drop --strict to allow it)"
    memory = [
        (p.concurrency, p.server_peak_rss_bytes)
        for p in probes
        if p.server_peak_rss_bytes and p.errors == 0
    ]
    cores = None if at is None else at.server_cores_busy
    kib, kib_stderr = memory_per_stream_kib(memory)
    limits = {
        c.figure: c.limit
        for c in (unloaded[-1].verdict.checks if unloaded else ())
        if c.figure in raised
    }
    reason = _reason(stopped, capacity, high, search_limits)
    if limits:
        parts = [
            f"{FIGURES[f][0]} ≤ {fmt(v)} {FIGURES[f][1]} (unloaded already {fmt(raised[f])})"
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
        stack=stack,
        workers=workers,
        threads=threads,
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


def cell_name(transport: str, stack: str, stacks: int) -> str:
    """A cell as tables and legends name it: the transport, and its stack when the run has
    more than one (`sse on asgi@uvicorn`)."""
    return transport if stacks < 2 else f"{transport} on {stack}"


@dataclass
class CapacityRun:
    metadata: dict[str, Any]
    scenario: dict[str, Any]
    slo: Slo
    limits: SearchLimits
    settings: dict[str, Any]  # streams per probe, unloaded streams, time budget, re-run margin
    cells: list[TransportCapacity]  # one per transport and stack, in the order searched

    @property
    def transports(self) -> list[str]:
        return list(dict.fromkeys(c.transport for c in self.cells))

    @property
    def stacks(self) -> list[str]:
        return list(dict.fromkeys(c.stack for c in self.cells))

    def cell(self, transport: str, stack: str | None = None) -> TransportCapacity:
        """The cell of `transport` on `stack` (on the run's only stack when None)."""
        for c in self.cells:
            if c.transport == transport and (stack is None or c.stack == stack):
                return c
        raise KeyError(f"no capacity cell for {transport} on {stack or 'any stack'}")

    def name(self, cell: TransportCapacity) -> str:
        return cell_name(cell.transport, cell.stack, len(self.stacks))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "capacity",
            "schema_version": SCHEMA_VERSION,
            "metadata": self.metadata,
            "scenario": self.scenario,
            "slo": asdict(self.slo),
            "search": self.limits.to_json(),
            "settings": self.settings,
            "stacks": self.stacks,
            "cells": [c.to_json() for c in self.cells],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CapacityRun:
        """A `capacity.json` of version 1 (one stack: the default) or 2."""
        if data.get("schema_version", 1) == 1:
            cells = [TransportCapacity.from_json(t) for t in data["transports"].values()]
        else:
            cells = [TransportCapacity.from_json(c) for c in data["cells"]]
        return cls(
            metadata=data["metadata"],
            scenario=data["scenario"],
            slo=Slo(**data["slo"]),
            limits=SearchLimits(**data["search"]),
            settings=data["settings"],
            cells=cells,
        )
