"""A server's CPU time and memory over its whole process tree.

A stack may serve from more processes than the one the harness started: gunicorn runs a
master and forks its workers, granian spawns worker processes. Their work is the
server's, so what the harness measures by the server's PID is summed over the process and
its descendants (`psutil.Process.children(recursive=True)`).

CPU time counts each CPU second once, while children come and go: a live process counts
its own user + system time, and a child that has exited and been waited for counts in its
parent's `children_user` + `children_system` (the kernel adds it there when it is
reaped, its own reaped children included). A descendant that exits between being listed
and being read is skipped (`psutil.NoSuchProcess`): its time reaches its parent's
children figures once the parent reaps it. Only the root itself must be alive: a server
that is gone raises `psutil.NoSuchProcess`, as a single process always did.

Resident memory is the sum of each live process's RSS. Forked workers share pages with
their master (copy-on-write), so the sum counts those pages once per process: a fixed
offset that the capacity search's per-stream slope does not see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import psutil

T = TypeVar("T")
GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)


def _tree(pid: int) -> tuple[psutil.Process, list[psutil.Process]]:
    """The root (psutil.NoSuchProcess if it is gone) and its descendants as listed now
    (none if they cannot be listed)."""
    root = psutil.Process(pid)
    try:
        return root, root.children(recursive=True)
    except GONE:
        return root, []


def _each(pid: int, read: Callable[[psutil.Process], T]) -> Iterator[T]:
    """`read` of the root (its errors raise) and of every descendant still there."""
    root, descendants = _tree(pid)
    yield read(root)
    for process in descendants:
        try:
            yield read(process)
        except GONE:
            continue


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of the process `pid` and every descendant, live or
    exited and reaped."""
    return sum(_each(pid, _cpu))


def tree_rss_bytes(pid: int) -> int:
    """Resident bytes of the process `pid` and its live descendants, summed."""
    return sum(_each(pid, lambda p: int(p.memory_info().rss)))


def tree_pids(pid: int) -> list[int]:
    """`pid` and its descendants' PIDs as listed now (only `pid` if it has none, or is gone)."""
    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except GONE:
        return [pid]
