"""The decode-step clock: every planned stream on one timer, each token at its planned time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from servers.decode_steps import STEP_TOLERANCE_NS, DecodeClock
from servers.generation import Generations
from servers.sources.mock import MockSource, Plan, profile_for
from wire.messages import GenerationRequest

MS = 1_000_000


@dataclass
class Recorder:
    """A stream that records what the clock gave it."""

    texts: list[str] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    finished: int = 0

    def emit(self, text: str, emitted_ns: int) -> None:
        self.texts.append(text)
        self.stamps.append(emitted_ns)

    def finish(self) -> None:
        self.finished += 1


async def until(condition: Callable[[], object], within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.005)


async def test_every_stream_gets_its_tokens_in_order_and_finishes_once() -> None:
    clock = DecodeClock()
    streams = [Recorder() for _ in range(20)]
    for k, stream in enumerate(streams):
        texts = tuple(f"s{k}t{i}" for i in range(5))
        clock.start(stream, Plan(texts, (k * MS // 4,) + (2 * MS,) * 4))
    await until(lambda: all(s.finished for s in streams))
    for k, stream in enumerate(streams):
        assert stream.texts == [f"s{k}t{i}" for i in range(5)]
        assert stream.finished == 1
        assert stream.stamps == sorted(stream.stamps)
    assert clock.pending == 0


async def test_no_token_leaves_earlier_than_planned_beyond_the_step_tolerance() -> None:
    """Known answer: tokens are due at start + the sum of the delays before them."""
    clock = DecodeClock()
    stream = Recorder()
    delays = (10 * MS, 3 * MS, 7 * MS, 1 * MS, 5 * MS)
    start = clock.clock_ns()
    clock.start(stream, Plan(tuple("abcde"), delays))
    await until(lambda: stream.finished)
    due = start
    for delay, stamp in zip(delays, stream.stamps, strict=True):
        due += delay
        assert stamp >= due - STEP_TOLERANCE_NS


async def test_tokens_planned_at_once_still_leave_one_step_apart() -> None:
    """The instant preset: a stream gets at most one token per step, so the event loop can
    send each before the next appears."""
    clock = DecodeClock()
    a, b = Recorder(), Recorder()
    clock.start(a, Plan(("1", "2", "3"), (0, 0, 0)))
    clock.start(b, Plan(("x", "y"), (0, 0)))
    clock.step()
    assert (a.texts, b.texts) == (["1"], ["x"])
    clock.step()
    assert (a.texts, b.texts) == (["1", "2"], ["x", "y"]) and b.finished == 1
    await until(lambda: a.finished)
    assert a.texts == ["1", "2", "3"]


async def test_a_cancelled_stream_gets_nothing_more() -> None:
    clock = DecodeClock()
    stream = Recorder()
    entry = clock.start(stream, Plan(("a", "b", "c"), (0, 50 * MS, 50 * MS)))
    clock.step()
    entry.cancelled = True
    await asyncio.sleep(0.15)
    assert stream.texts == ["a"] and stream.finished == 0


async def test_held_tokens_are_stamped_exactly_a_hold_before_their_release() -> None:
    """The inject-delay test aid: readable `hold_ns` after the source gave them, stamped at
    the release less `hold_ns`, so the added delay grows by exactly `hold_ns`."""
    hold = 30 * MS
    clock = DecodeClock(hold_ns=hold)
    released: list[int] = []

    class Noting(Recorder):
        def emit(self, text: str, emitted_ns: int) -> None:
            released.append(clock.clock_ns())
            super().emit(text, emitted_ns)

    stream = Noting()
    clock.start(stream, Plan(("a", "b"), (0, 5 * MS)))
    await until(lambda: stream.finished)
    assert stream.texts == ["a", "b"]
    for stamp, at in zip(stream.stamps, released, strict=True):
        assert hold <= at - stamp < hold + STEP_TOLERANCE_NS  # (`at`: read just after)


async def test_a_late_release_is_not_counted_in_the_held_tokens_stamp() -> None:
    """A step that releases held tokens 0.7 ms late stamps them at its own time less the
    hold: the injected delay stays exactly the hold, the lateness is the server's."""
    hold, now = 2 * MS, [0]
    clock = DecodeClock(hold_ns=hold, clock_ns=lambda: now[0])
    stream = Recorder()
    clock.start(stream, Plan(("a",), (0,)))
    clock.step()  # the source gives "a" at 0; it is held until 2 ms
    assert stream.texts == []
    now[0] = hold + 700_000
    clock.step()
    assert stream.texts == ["a"] and stream.stamps == [700_000]
    clock.close()


async def test_an_empty_plan_finishes_at_once() -> None:
    stream = Recorder()
    DecodeClock().start(stream, Plan((), ()))
    assert stream.finished == 1 and stream.texts == []


async def test_mock_generations_run_on_the_clock_and_count_as_active_until_they_end() -> None:
    profile = profile_for("chat", ttft_ms=5, tokens_per_s=500, tokens_per_response=10)
    source = MockSource(profile)
    generations = Generations(source)
    gens = [generations.create(GenerationRequest(seed=k, stream_id=f"g{k}")) for k in range(3)]
    assert generations.active == 3
    gens[1].cancel("a test")
    assert generations.active == 2 and gens[1].error == "cancelled: a test"
    await until(lambda: gens[0].done and gens[2].done)
    assert generations.active == 0
    for k in (0, 2):
        plan = source.plan(GenerationRequest(seed=k))
        assert gens[k].texts == list(plan.texts) and gens[k].error is None
        assert gens[k].planned_delays_ns == plan.delays_ns
    generations.cancel_all()


async def test_a_change_right_after_a_long_poll_starts_waiting_is_never_missed() -> None:
    """A long poll's wait runs as a task; a token emitted before that task first runs must
    still end the wait at once (it used to wait out the whole long-poll timeout)."""
    from servers.generation import Generation

    gen = Generation(id="g", request=GenerationRequest())
    waiter = gen.changed()
    gen.emit("a", 1)
    assert waiter.done()
    loop = asyncio.get_running_loop()
    waiting = asyncio.ensure_future(gen.wait_beyond(1, timeout=5.0))
    loop.call_soon(gen.emit, "b", 2)  # before the wait's task has run
    started = loop.time()
    await waiting
    assert loop.time() - started < 1.0 and gen.texts == ["a", "b"]
