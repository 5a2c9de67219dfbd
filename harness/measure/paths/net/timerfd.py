"""An event loop whose timers are exact: the selector waits on a timerfd (nanosecond
resolution) instead of epoll_wait's whole milliseconds, which would make every chunk the
relay holds up to 1 ms late. Where the kernel has no timerfd, the default loop (and the
relay's statistics say which ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import select
import selectors
import time
from collections.abc import Callable


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


TFD_TIMER_ABSTIME = 1


class Timerfd:
    """A one-shot CLOCK_MONOTONIC timerfd (the clock of `time.monotonic` and the event
    loop): `arm(deadline)` makes its fd readable at that absolute time."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        fd = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self.fd: int = fd
        self._spec = _Itimerspec()

    def arm(self, deadline: float) -> None:
        seconds = int(deadline)
        self._spec.it_value.tv_sec = seconds
        self._spec.it_value.tv_nsec = max(1, int((deadline - seconds) * 1e9))
        if self._settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def clear(self) -> None:
        """Consume an expiry (the fd is readable no more)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class TimerfdSelector(selectors.EpollSelector):
    """epoll whose timeouts are exact: a one-shot CLOCK_MONOTONIC timerfd (the event loop's
    own clock) set to the deadline wakes epoll_wait, whose own timeout is whole milliseconds
    rounded up (kept, plus one, as a safety net)."""

    # the standard library's own selector internals, which this subclass builds on
    _selector: select.epoll
    _fd_to_key: dict[int, selectors.SelectorKey]
    _key_from_fd: Callable[[int], selectors.SelectorKey | None]

    def __init__(self) -> None:
        super().__init__()
        self._timer = Timerfd()
        self._timerfd = self._timer.fd
        self._selector.register(self._timerfd, select.EPOLLIN)

    def _arm(self, deadline: float) -> None:
        self._timer.arm(deadline)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            poll_timeout = -1.0
        elif timeout <= 0:
            poll_timeout = 0.0
        else:
            self._arm(time.monotonic() + timeout)
            poll_timeout = (int(timeout * 1e3) + 2) * 1e-3
        ready: list[tuple[selectors.SelectorKey, int]] = []
        try:
            events = self._selector.poll(poll_timeout, len(self._fd_to_key) + 1)
        except InterruptedError:
            return ready
        for fd, event in events:
            if fd == self._timerfd:
                self._timer.clear()
                continue
            mask = 0
            if event & ~select.EPOLLIN:
                mask |= selectors.EVENT_WRITE
            if event & ~select.EPOLLOUT:
                mask |= selectors.EVENT_READ
            key = self._key_from_fd(fd)
            if key:
                ready.append((key, mask & key.events))
        return ready

    def close(self) -> None:
        self._timer.close()
        super().close()


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """An event loop with exact timers where the kernel has timerfd; else the default."""
    try:
        return asyncio.SelectorEventLoop(TimerfdSelector()), "timerfd"
    except (OSError, AttributeError):
        return asyncio.SelectorEventLoop(), "epoll (1 ms timeouts)"
