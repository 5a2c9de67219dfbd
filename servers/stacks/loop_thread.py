"""The asyncio core under a thread-per-request stack: one event loop in a thread of its own,
inside `servers.core.running`, that request threads hand coroutines to and wait on.

The core (generations, the mock source's decode clock, the idle reaper, the webhook sender)
is asyncio; a WSGI view is a blocking function in one of the server's threads. Each view
runs the core's handler on this loop with `run_coroutine_threadsafe` and blocks its own
thread until the answer (or a push stream's next chunk) is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

from servers.core import running
from servers.state import ServerState

T = TypeVar("T")


class CoreStopped(Exception):
    """The core's loop has stopped (the worker is exiting): nothing more runs on it."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed (as uvicorn picks it for the asgi stacks)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def closed(agen: AsyncGenerator[Any, None]) -> None:
    while getattr(agen, "ag_running", False):  # a cancelled pull is still unwinding
        await asyncio.sleep(0)
    await agen.aclose()


async def ending(state: ServerState) -> None:
    state.generations.cancel_all()  # again when `running` ends: no harm


class CoreLoop:
    """The core's loop (module docstring). Start it in the process that serves: an event
    loop does not survive a fork."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop: asyncio.AbstractEventLoop | None = None  # the running loop, once started
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tokenwire-core", daemon=True)
        self._streams = 0  # push streams open (`streaming`), which `stop` lets end
        self._idle = threading.Condition()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # a failed start-up is raised by `start`
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running(self.state):
            self._ready.set()
            await self._stop.wait()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule `coro` on the loop; CoreStopped once it has stopped."""
        try:
            if self.loop is None or self.loop.is_closed():
                raise RuntimeError("no loop")
            return asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()  # never awaited, and not to be warned about
            raise CoreStopped from None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop; this thread waits for its result."""
        return self.submit(coro).result(timeout)

    def later(self, delay_s: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Run `callback` on the loop after `delay_s`, unless the function returned (to call
        from any thread) is called first."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return lambda: None
        timers: list[asyncio.TimerHandle] = []
        with contextlib.suppress(RuntimeError):  # a loop closing meanwhile: nothing to run
            loop.call_soon_threadsafe(lambda: timers.append(loop.call_later(delay_s, callback)))

        def stop() -> None:
            for timer in timers:
                timer.cancel()

        def cancel() -> None:  # queued after the timer's start: it runs after it
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop)

        return cancel

    def close_stream(self, agen: AsyncGenerator[Any, None]) -> None:
        """Close a stream's async generator on the loop (best effort once it is stopping)."""
        with contextlib.suppress(CoreStopped, TimeoutError, CancelledError):
            self.call(closed(agen), timeout=10.0)

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """Around a push stream, held by a request thread: `stop` waits for it to end."""
        with self._idle:
            self._streams += 1
        try:
            yield
        finally:
            with self._idle:
                self._streams -= 1
                self._idle.notify_all()

    def stop(self, drain_s: float = 2.0) -> None:
        """End every generation while the loop still runs (open streams send their end),
        give the streams `drain_s` to send it, then leave `running` and stop the loop."""
        if self.loop is None or self._stop is None or not self._thread.is_alive():
            return
        with contextlib.suppress(CoreStopped, TimeoutError):
            self.call(ending(self.state), timeout=drain_s)
        with self._idle:
            self._idle.wait_for(lambda: self._streams == 0, drain_s)
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(drain_s)
