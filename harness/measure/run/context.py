"""What every phase of one benchmark run shares (`RunContext`), and where its progress goes
(`ProgressSink`). The driver makes the context once per run (one sweep point); the client
processes (`harness.measure.client_processes`) plan their share of a phase from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.measure.paths import Endpoint
from harness.measure.records import SweepValue
from harness.measure.run.conversations import conversation_jobs
from harness.measure.run.jobs import Job, make_requests, warmup_requests, with_arrivals
from harness.measure.scenario import Scenario
from transports import TransportRegistry


class ProgressSink(Protocol):
    def phase_started(self, transport: str, total: int) -> None: ...
    def stream_done(self, transport: str, failed: bool) -> None: ...
    def phase_finished(self, transport: str) -> None: ...


class NoProgress:
    def phase_started(self, transport: str, total: int) -> None: ...
    def stream_done(self, transport: str, failed: bool) -> None: ...
    def phase_finished(self, transport: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RunContext:
    """One run's scenario (one sweep point), where its clients connect (`endpoints`: one per
    server, in order: shard i of the run connects to server i % N), its transport registry,
    its stream-id tag and its prompts."""

    scenario: Scenario
    endpoints: tuple[Endpoint, ...]
    registry: TransportRegistry
    run_tag: str
    prompts: tuple[str, ...]
    sweep_value: SweepValue | None = None
    round: int | None = None  # a repeated run's round, counted from 1 (None: the first)

    def label(self, transport: str) -> str:
        """A phase's progress label: the transport, the round of a repeated run (from 2 on)
        and the sweep point's value if any."""
        label = transport if self.round is None else f"{transport} #{self.round}"
        return label if self.sweep_value is None else f"{label} @ {self.sweep_value}"

    def jobs(self, transport: str) -> list[Job]:
        """Request k of `transport`; with a rate, due at the k-th time of the scenario's
        arrival schedule (the same on every transport)."""
        s = self.scenario
        if s.conversation.turns:
            return conversation_jobs(s, transport, self.run_tag, self.prompts, self.registry)
        requests = make_requests(s, transport, self.run_tag, self.prompts)
        return with_arrivals([Job(transport, r) for r in requests], s.rate, s.arrivals, s.seed)

    def warmups(self, transports: Sequence[str], tag: str | None = None) -> list[list[Job]]:
        """Each transport's warm-up jobs, stream ids tagged with `tag` (default: the run's)."""
        tag = self.run_tag if tag is None else tag
        return [
            [Job(t, r) for r in warmup_requests(self.scenario, t, tag, self.prompts)]
            for t in transports
        ]
