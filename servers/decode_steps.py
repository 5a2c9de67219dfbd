"""The decode-step clock: one timer per server process emits the tokens of every planned
stream, the way an LLM server decodes its whole batch in steps.

A real model server decodes its running sequences together, step after step, and every
sequence that is due gets its next token in the same step. Planned sources (the mock, a
replayed trace) know each token's time in advance, so the server runs all of them on one
`DecodeClock`: a heap of (due time, stream), one event-loop timer armed for the earliest
due, and at each step every stream whose token is due gets it, stamped with the step's
time. That replaces one task and one timer per stream per token (measured in the note of
`scenarios/scale-1000.toml`: most of the server's CPU per token at 1,000 streams).

Each stream keeps its own plan: request k's text and timing are the same on every
transport. A token is due at the stream's start plus the sum of its planned delays, so a
late step never shifts the tokens after it; how late each one actually left is what
`source_gap_error_ms` reports. A stream gets at most one token per step, so tokens planned
at the same instant (the `instant` preset) still leave one step apart, with the event loop
free to send in between.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from servers.sources.mock import Plan

# uvloop's timers have millisecond resolution and round the delay (a timer 0.4 ms away
# fires at once), so a step takes every token due within half a millisecond: no token
# leaves more than that early, and the clock never spins waiting for a sub-ms due time.
STEP_TOLERANCE_NS = 500_000


class Stream(Protocol):
    """What the clock drives: a generation (`servers.generation.Generation`)."""

    def emit(self, text: str, emitted_ns: int) -> None: ...
    def finish(self) -> None: ...


@dataclass(eq=False, slots=True)
class Scheduled:
    """One stream on the clock: its plan and the index of its next token."""

    stream: Stream
    texts: tuple[str, ...]
    delays_ns: tuple[int, ...]
    due_ns: int
    next: int = 0
    cancelled: bool = False


@dataclass(eq=False, slots=True)
class Held:
    """A token the source gave at `emitted_ns`, released only at its due time (`hold_ns`
    later)."""

    entry: Scheduled
    text: str
    emitted_ns: int
    last: bool


@dataclass(eq=False)
class DecodeClock:
    """All planned streams of one server process on one timer. `hold_ns` (a test aid,
    `--inject-delay-ms`) releases each token that long after the source gave it, and stamps
    it at the step that releases it less `hold_ns`: whatever the step's own lateness, every
    token's added delay (arrival - stamp) grows by exactly `hold_ns`."""

    hold_ns: int = 0
    clock_ns: Callable[[], int] = time.perf_counter_ns
    _heap: list[tuple[int, int, Scheduled | Held]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)
    _timer: asyncio.TimerHandle | None = None
    _armed_ns: int | None = None

    def start(self, stream: Stream, plan: Plan) -> Scheduled:
        """Put a stream on the clock, its first token due `plan.delays_ns[0]` from now."""
        now = self.clock_ns()
        entry = Scheduled(stream, plan.texts, plan.delays_ns, now)
        if not plan.texts:
            stream.finish()
            return entry
        entry.due_ns = now + plan.delays_ns[0]
        self._push(entry.due_ns, entry)
        self._arm()
        return entry

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._armed_ns = None
        self._heap.clear()

    @property
    def pending(self) -> int:
        """Entries on the heap, cancelled ones included until their due time passes."""
        return len(self._heap)

    def _push(self, due_ns: int, item: Scheduled | Held) -> None:
        heapq.heappush(self._heap, (due_ns, next(self._order), item))

    def _arm(self) -> None:
        if not self._heap:
            return
        earliest = self._heap[0][0]
        if self._armed_ns is not None and self._armed_ns <= earliest:
            return  # an earlier (or the same) step is already due to run
        if self._timer is not None:
            self._timer.cancel()
        delay_s = max(earliest - self.clock_ns(), 0) / 1e9
        self._timer = asyncio.get_running_loop().call_later(delay_s, self.step)
        self._armed_ns = earliest

    def step(self) -> None:
        """One decode step: every stream whose token is due gets it (at most one each)."""
        self._timer = self._armed_ns = None
        now = self.clock_ns()
        horizon = now + STEP_TOLERANCE_NS
        heap = self._heap
        again: list[Scheduled] = []
        while heap and heap[0][0] <= horizon:
            item = heapq.heappop(heap)[2]
            if isinstance(item, Held):
                if not item.entry.cancelled:  # stamped at its release, less the hold: exact
                    item.entry.stream.emit(item.text, now - self.hold_ns)
                    if item.last:
                        item.entry.stream.finish()
                continue
            if item.cancelled:
                continue
            k = item.next
            last = k + 1 == len(item.texts)
            if self.hold_ns:
                self._push(now + self.hold_ns, Held(item, item.texts[k], now, last))
            else:
                item.stream.emit(item.texts[k], now)
                if last:
                    item.stream.finish()
            if not last:
                item.next = k + 1
                item.due_ns += item.delays_ns[k + 1]
                again.append(item)
        for item in again:  # after the step: a stream's next token waits for the next step
            self._push(item.due_ns, item)
        self._arm()
