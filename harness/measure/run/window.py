"""The measured window: its bounds, and the CPU both sides spent in it; the server (or
servers) it is measured on; and what a phase's window produced (`Measured`).

Client CPU is the driver's event-loop thread's (`time.thread_time`: progress drawing runs in
another thread), or the client processes' sum (`harness.measure.client_processes`), or
Chromium's (the browser client kind's report). Server CPU and RSS are the servers' sums.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from clients.interface import StreamResult
from harness.measure.records import BrowserFigures
from harness.measure.server_process import ServerGroup


class Server(Protocol):
    """The server under test, as the driver uses it (`ServerProcess`, or one in-process), or
    several (`ServerGroup`: CPU and RSS summed, a base URL each; see `server_urls`)."""

    @property
    def base_url(self) -> str: ...

    def cpu_seconds(self) -> float: ...
    def rss_bytes(self) -> int: ...


def server_urls(server: Server) -> list[str]:
    """Every server's base URL, in order: a `ServerGroup`'s, or the one server's."""
    return server.base_urls if isinstance(server, ServerGroup) else [server.base_url]


@dataclass
class Window:
    """A measured window: wall-clock bounds and the CPU both sides spent in it."""

    server: Server
    start_ns: int = 0
    end_ns: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    server_rss_bytes: int = 0
    _cpu0: tuple[float, float] = field(default=(0.0, 0.0))

    def open(self) -> None:
        self._cpu0 = (self.server.cpu_seconds(), time.thread_time())
        self.start_ns = time.perf_counter_ns()

    def close(self) -> None:
        self.end_ns = time.perf_counter_ns()
        # the driver's event-loop thread only: progress drawing runs in another thread
        self.client_cpu_s = time.thread_time() - self._cpu0[1]
        self.server_cpu_s = self.server.cpu_seconds() - self._cpu0[0]
        self.server_rss_bytes = self.server.rss_bytes()


@dataclass(frozen=True, slots=True)
class Measured:
    """What a phase's measured window produced: the window (its client CPU as the client
    kind counts it), each job's result, and where each stream went."""

    window: Window
    results: list[StreamResult]  # in job order
    routes: dict[str, int]  # stream id -> server index (pinned shards only)
    client_cpu_s_per_process: list[float] | None = None  # several client processes
    browser: BrowserFigures | None = None  # the browser client kind's figures
