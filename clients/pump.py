"""Feeding network reads to an exchange from a protocol's callbacks: the lean clients'
(`clients.h1_io`, `clients.ws_io`) one copy of it.

The driver hands the exchange over when it asks for a read (`ReadBody`, `ReceiveMessage`);
from then on each arrival steps the exchange straight from `data_received`, and the driver's
task is woken only with the exchange's next effect that is not a read (or its end, or its
failure). Arrivals before the hand-over wait in order; so does a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from clients import exchange as effects
from errors import StreamIncomplete


class Pump:
    """One connection's reads into whichever exchange step is waiting for them."""

    def __init__(self, read: type[effects.ReadBody] | type[effects.ReceiveMessage]) -> None:
        self._read = read  # the effect that asks for the next arrival
        self._pending: list[effects.Arrival | None] = []  # arrivals no exchange took yet
        self._steps: effects.Steps | None = None
        self._future: asyncio.Future[effects.Effect | None] | None = None
        self._before_end: Callable[[], None] | None = None
        self.failure: BaseException | None = None

    def start(
        self, steps: effects.Steps, before_end: Callable[[], None] | None = None
    ) -> asyncio.Future[effects.Effect | None]:
        """Hand the exchange over (`before_end` runs when the end arrives, before the
        exchange hears of it). Done with its next effect other than a read."""
        self._steps, self._before_end = steps, before_end
        future = self._future = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            future.set_exception(self.failure)
            return future
        pending, self._pending = self._pending, []
        for k, arrival in enumerate(pending):
            if future.done():  # the exchange is done with reads: keep the rest for later
                self._pending = pending[k:]
                break
            self.arrive(arrival)
        return future

    def take_pending(self) -> list[effects.Arrival | None]:
        """The arrivals no exchange has taken, handed out (and forgotten here)."""
        pending, self._pending = self._pending, []
        return pending

    def arrive(self, arrival: effects.Arrival | None) -> None:
        """One arrival (None: the end), to the waiting exchange or into the queue."""
        future, steps = self._future, self._steps
        if future is None or steps is None or future.done():
            self._pending.append(arrival)
            return
        if arrival is None and self._before_end is not None:
            self._before_end()
        try:
            effect = steps.send(arrival)
        except BaseException as exc:  # the exchange failed: its driver raises it
            self._future = None
            future.set_exception(exc)
            return
        if not isinstance(effect, self._read):
            self._future = None
            future.set_result(effect)
        elif arrival is None:
            self._future = None
            future.set_exception(StreamIncomplete("the exchange read on past the end"))

    def fail(self, exc: BaseException) -> None:
        """The connection failed: the waiting exchange (or the next) raises `exc`."""
        self.failure = exc
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_exception(exc)
