"""The peak resident memory of the servers under test, for `bench.py capacity`.

The driver reads the server's RSS once, as its measured window closes; by then the streams
have ended and memory the server held for them may be back in its allocator's free lists
(or returned), so that figure under-reports what the streams cost. The kernel keeps the
high-water mark instead: `VmHWM` in `/proc/<pid>/status`, the most resident memory the
process ever had; on a fresh server per probe it is the probe's peak.

`PeakSampler` finds the server processes this process started (children running
`servers.run`, however many, and their own descendants: a stack's worker processes) and
reads their high-water marks in a thread while a probe runs: the servers are stopped
before the probe returns, so the mark must be read while they live. Reads are cheap (one
small /proc file per process every `interval_s`); looking for new servers and workers
walks the process table, so it is done less often.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import psutil

from harness.measure.process_tree import tree_pids

SERVER_MODULE = "servers.run"


def peak_rss_bytes(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The process's resident high-water mark (VmHWM) in bytes; None where /proc has no
    such figure (not Linux, or the process is gone)."""
    try:
        status = (proc / str(pid) / "status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            value, _, unit = line.split(":", 1)[1].strip().partition(" ")
            scale = {"kB": 1024, "mB": 1024**2, "gB": 1024**3}.get(unit.strip(), 1024)
            return int(value) * scale
    return None


def server_children(module: str = SERVER_MODULE) -> list[int]:
    """PIDs of this process's descendants running `python -m <module>`."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if module in child.cmdline():
                found.append(child.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def server_trees(module: str = SERVER_MODULE) -> set[int]:
    """PIDs of the servers among this process's descendants (`server_children`) and of
    every process under them (a stack's workers, whatever their command line)."""
    return {pid for root in server_children(module) for pid in tree_pids(root)}


class PeakSampler:
    """While the context is open, the high-water mark of every server process started
    within it, workers included. `peak_bytes`: the sum over those processes of each one's
    highest mark read (None when none was read)."""

    def __init__(self, interval_s: float = 0.1, discover_every: int = 5) -> None:
        self.interval_s = interval_s
        self.discover_every = discover_every
        self.peaks: dict[int, int] = {}
        self._known: set[int] = set()
        self._before: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakSampler:
        self._before = server_trees()  # servers that were already running are not ours
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_bytes(self) -> int | None:
        return sum(self.peaks.values()) if self.peaks else None

    def sample(self, discover: bool) -> None:
        if discover:
            self._known |= server_trees() - self._before
        for pid in self._known:
            peak = peak_rss_bytes(pid)
            if peak is not None:
                self.peaks[pid] = max(peak, self.peaks.get(pid, 0))

    def _run(self) -> None:
        k = 0
        while True:
            self.sample(discover=not self._known or k % self.discover_every == 0)
            k += 1
            if self._stop.wait(self.interval_s):
                return
