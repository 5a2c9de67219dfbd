"""Generations: one source stream, buffered, stamped and shared with whoever delivers it.

Every transport reads tokens from a `Generation` (push transports as they appear, polling
transports by offset), so all five share the same producer and differ only in delivery.
The producer stamps each token with `time.perf_counter_ns()` the moment the source yields
it: that is the emit time the transport-added delay is measured from. A live source's
generation runs as its own task; the planned sources' (mock, trace) all run on the
server's one decode clock (`servers.decode_steps`), as a model server's batch does. The
timeline (emit times, and the texts for checks) is served out of band, never counted as
transport bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from errors import UpstreamProblem
from servers.decode_steps import DecodeClock, Scheduled
from servers.sources.mock import PlannedSource, TokenSource, Usage
from wire.messages import GenerationRequest

# a token: two list slots with the lists' spare room (20), its stamp (an int, 32), its
# text's str header (49) and the allocator's rounding (3); its characters are added as they
# are (one byte each for ASCII). Measured with tracemalloc: 101.5 bytes besides the text.
RETAINED_BYTES_PER_TOKEN = 20 + 32 + 49 + 3
RETAINED_BYTES_PER_STREAM = 1024  # the Generation, its request, its lists (measured: 690)


def prompt_digest(prompt: str) -> bytes:
    return hashlib.blake2b(prompt.encode(), digest_size=16).digest()


class StreamExists(KeyError):
    """A client asked for a stream id that is already in use."""


class TooManyStreams(RuntimeError):
    """The server runs as many generations as it may (`max_active`)."""


@dataclass(eq=False)
class Generation:
    id: str
    request: GenerationRequest
    texts: list[str] = field(default_factory=list)
    emit_ns: list[int] = field(default_factory=list)
    done: bool = False
    error: str | None = None
    cancelled: bool = False
    last_access: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    readers: int = 0  # clients reading right now: push followers and waiting long polls
    cancel_reason: str | None = None
    usage_tokens: int | None = None  # a live model's own count, when it reports one
    planned_delays_ns: tuple[int, ...] | None = None  # what a planned source meant to do
    ended_ns: int | None = None  # perf_counter_ns when the generation ended or was cancelled
    owner: str | None = None  # the creator's principal (a token's hash) when tokens are set
    problem: dict[str, str] | None = None  # why a live upstream failed: {code, message}
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)  # readers awaiting a change
    _task: asyncio.Task[None] | None = None  # a live source's generation runs as a task
    _scheduled: Scheduled | None = None  # a planned source's runs on the decode clock
    _on_end: Callable[[Generation], None] | None = None  # told once, when it ends
    _departures: int = 0  # readers that left before the end (a resume grace is per departure)
    resume_deadline: float = 0.0  # monotonic time until which a left push stream awaits a resume
    prompt_hash: bytes = b""  # `prompt_digest` of the prompt, kept when `finish` drops it
    # a conversation's turn: what the server holds of the conversation (the previous turn's
    # kept conversation, then this turn's context); at the end this turn's answer is added
    # and the whole kept when the request asked to `store` it, else dropped
    conversation: str = ""

    def _notify(self) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def changed(self) -> asyncio.Future[None]:
        """A future done at the next change: a token, or the end. Registered at once, not
        when first awaited, so a change between the call and the await is never missed.
        (An `asyncio.Event` per generation cost more per token, measured at 1,000 streams.)"""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def emit(self, text: str, emitted_ns: int) -> None:
        """One token, stamped `emitted_ns` (when the source yielded it), now readable."""
        self.emit_ns.append(emitted_ns)
        self.texts.append(text)
        self._notify()

    def finish(self) -> None:
        """The generation ended (finished, failed or cancelled): readers are told once."""
        if self.done:
            return
        if self.request.prompt:
            self.prompt_hash = prompt_digest(self.request.prompt)
        self.request = replace(self.request, prompt="", context="")  # kept for minutes
        self.conversation = self.conversation + "".join(self.texts) if self.request.store else ""
        self.ended_ns = time.perf_counter_ns()
        self.done = True
        self.finished_at = time.monotonic()
        self._notify()
        if self._on_end is not None:
            self._on_end(self)

    async def run(self, source: TokenSource, hold_s: float = 0.0) -> None:
        """Pull a live source to its end. `hold_s` (a test aid) delays each token's release,
        and its stamp is the release less `hold_s`, so exactly that is added to its delay."""
        stream = source.stream(self.request)
        try:
            async for text in stream:
                if isinstance(text, Usage):
                    self.usage_tokens = text.completion_tokens
                    continue
                emitted = time.perf_counter_ns()
                if hold_s:  # stamped at the release, less the hold: exactly hold_s is added
                    await asyncio.sleep(hold_s)
                    emitted = time.perf_counter_ns() - round(hold_s * 1e9)
                self.emit(text, emitted)
        except asyncio.CancelledError:
            self.cancelled = True
            self.error = f"cancelled: {self.cancel_reason or 'the server stopped it'}"
            raise
        except Exception as exc:  # the source failed: tell readers why, in band
            self.error = f"source failed: {type(exc).__name__}: {exc}"
            if isinstance(exc, UpstreamProblem):  # with the code `bench.py probe` names it by
                self.problem = {"code": exc.code, "message": exc.detail}
        finally:
            try:
                await stream.aclose()
            finally:  # ended, even if closing the source is cancelled again or fails
                self.finish()

    async def wait_beyond(self, offset: int, timeout: float | None = None) -> None:
        """Return once a token with index >= offset exists, the stream ended, or `timeout`
        ran out (changes that bring neither, such as an earlier token, keep it waiting)."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while len(self.texts) <= offset and not self.done:
            if deadline is None:
                await self.changed()
                continue
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed(), left)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A client is reading (following, or holding a long poll): the idle reaper leaves
        the generation alone meanwhile, and its idle time counts from when the reader left."""
        self.readers += 1
        try:
            yield
        finally:
            self.readers -= 1
            self.last_access = time.monotonic()

    async def follow(self, offset: int = 0) -> AsyncIterator[tuple[int, str]]:
        """Yield (index, text) from `offset` on, live, until the stream ends. Close it
        (`contextlib.aclosing`) so that the reader is counted out the moment it leaves."""
        i = offset
        with self.reading():
            while True:
                while i < len(self.texts):
                    yield i, self.texts[i]
                    i += 1
                if self.done:
                    return
                await self.wait_beyond(i)

    def cancel(self, reason: str) -> None:
        if self._task is not None and not self._task.done():
            self.cancel_reason = reason
            self._task.cancel()
        elif self._scheduled is not None and not self.done:
            self._scheduled.cancelled = True  # the clock skips it from now on
            self.cancel_reason = reason
            self.cancelled = True
            self.error = f"cancelled: {reason}"
            self.finish()

    def reader_left(self, grace_s: float) -> None:
        """A push reader went away before the end. With no grace the generation is cancelled
        at once unless another reader is attached; with a grace period it is cancelled when
        the period has passed since this departure and no reader has come back (a resumed
        reader that leaves again starts a new period: no earlier timer can cut it off)."""
        if self.done:
            return
        self._departures += 1
        if grace_s <= 0:
            self._cancel_if_abandoned(self._departures, "the client left")
            return
        reason = f"the client left and did not resume within {grace_s:g} s"
        self.resume_deadline = time.monotonic() + grace_s  # the idle reaper waits for it too
        loop = asyncio.get_running_loop()
        deadline = self.resume_deadline
        loop.call_later(grace_s, self._cancel_if_abandoned, self._departures, reason, deadline)

    def _cancel_if_abandoned(self, departure: int, reason: str, not_before: float = 0.0) -> None:
        if self.readers == 0 and departure == self._departures:
            early_s = not_before - time.monotonic()
            if early_s > 0:  # uvloop's timers run on a millisecond clock read at the start of
                # each loop turn, and can fire a little early: the grace is never cut short
                loop = asyncio.get_running_loop()
                loop.call_later(early_s, self._cancel_if_abandoned, departure, reason, not_before)
                return
            self.cancel(reason)

    def retained_bytes(self) -> int:
        """What keeping this generation costs in memory, at most: its texts and stamps as if
        each were an object of its own (a live source's are; a mock's texts come from its
        corpus and share objects, so they cost less). tests/servers/test_abuse.py holds the
        estimate to tracemalloc's count: within 20% for streams whose every text and stamp
        is new, never below what a mock stream holds."""
        return (
            RETAINED_BYTES_PER_STREAM
            + RETAINED_BYTES_PER_TOKEN * len(self.texts)
            + sum(map(len, self.texts))
            + len(self.conversation)
        )

    def timeline(self, texts: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "seed": self.request.seed,
            "tokens": len(self.texts),
            "emit_ns": self.emit_ns,
            "done": self.done,
            "error": self.error,
            "usage_tokens": self.usage_tokens,
            "planned_delays_ns": self.planned_delays_ns,
            "ended_ns": self.ended_ns,
            "problem": self.problem,
        }
        if texts:
            body["texts"] = self.texts
        return body


@dataclass
class Generations:
    """The live and recently finished generations of one server.

    A generation no client is reading, and that no client has touched for `idle_timeout_s`,
    is cancelled (a poller that went away must not keep a model busy; a push reader or a
    waiting long poll keeps it alive however long the stream takes); a finished one is kept for
    `retention_s` so its timeline can still be fetched, and at most `max_kept` of them, of at
    most `max_retained_bytes` together (`Generation.retained_bytes`): beyond either bound the
    ones that finished first are forgotten first, as each generation ends.
    """

    source: TokenSource
    hold_s: float = 0.0  # test aid: delay every token's release (see ServerSettings)
    idle_timeout_s: float = 30.0
    retention_s: float = 600.0
    max_kept: int = 100_000
    max_active: int = 10_000
    max_retained_bytes: int = 256 << 20
    by_id: dict[str, Generation] = field(default_factory=dict)
    active: int = 0  # generations still running
    finished: dict[Generation, int] = field(default_factory=dict)  # in order: retained bytes
    retained_bytes: int = 0  # of the finished ones kept
    _clock: DecodeClock | None = None

    def create(self, request: GenerationRequest, owner: str | None = None) -> Generation:
        """Start generating; raise `StreamExists` when the client-chosen id is taken."""
        stream_id = request.stream_id or secrets.token_hex(8)
        if stream_id in self.by_id:
            raise StreamExists(stream_id)
        if self.active >= self.max_active:
            raise TooManyStreams(self.max_active)
        gen = Generation(id=stream_id, request=request, owner=owner, _on_end=self._ended)
        self.active += 1
        self.by_id[gen.id] = gen
        if isinstance(self.source, PlannedSource):
            plan = self.source.plan(request)
            gen.planned_delays_ns = plan.delays_ns
            gen._scheduled = self.clock.start(gen, plan)
        else:
            gen._task = asyncio.create_task(
                gen.run(self.source, self.hold_s), name=f"generation-{gen.id}"
            )
        return gen

    @property
    def clock(self) -> DecodeClock:
        """The decode clock of the planned sources' generations (made on first use, inside
        the server's event loop)."""
        if self._clock is None:
            self._clock = DecodeClock(hold_ns=round(self.hold_s * 1e9))
        return self._clock

    def _ended(self, gen: Generation) -> None:
        self.active -= 1
        if self.by_id.get(gen.id) is not gen:
            return  # forgotten already
        size = gen.retained_bytes()
        self.finished[gen] = size
        self.retained_bytes += size
        while self.finished and (
            self.retained_bytes > self.max_retained_bytes or len(self.finished) > self.max_kept
        ):
            self.forget(next(iter(self.finished)))

    def forget(self, gen: Generation) -> None:
        """Drop a generation from the registry (its timeline is gone)."""
        if self.by_id.get(gen.id) is gen:
            del self.by_id[gen.id]
        self.retained_bytes -= self.finished.pop(gen, 0)

    def find(self, stream_id: str, owner: str | None = None) -> Generation | None:
        """The generation if `owner` created it (None and None without tokens); untouched."""
        gen = self.by_id.get(stream_id)
        return gen if gen is not None and gen.owner == owner else None

    def get(self, stream_id: str, owner: str | None = None) -> Generation | None:
        """`find`, and the generation counts as touched (the idle reaper leaves it longer)."""
        gen = self.find(stream_id, owner)
        if gen is not None:
            gen.last_access = time.monotonic()
        return gen

    def reap(self) -> None:
        now = time.monotonic()
        for gen in list(self.by_id.values()):
            idle = now - gen.last_access > self.idle_timeout_s and now > gen.resume_deadline
            if not gen.done and gen.readers == 0 and idle:
                gen.cancel(f"no client read this stream for {self.idle_timeout_s:g} s")
        for gen in list(self.finished):  # in the order they finished
            if gen.finished_at is None or now - gen.finished_at <= self.retention_s:
                break
            self.forget(gen)

    async def reaper(self, every_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.reap()

    def cancel_all(self) -> None:
        for gen in list(self.by_id.values()):
            gen.cancel("the server is stopping")
        if self._clock is not None:
            self._clock.close()
