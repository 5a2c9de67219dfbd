"""CPU sets for pinning, written as Linux writes cpuset lists (`0`, `0,2`, `0-3,6`), and
pinning the calling process to one (`os.sched_setaffinity`: threads started afterwards
inherit it, and so do child processes).

Pinning the server and the clients to cores of their own (`--server-cpus 0 --client-cpus
1`) keeps them from taking each other's core: "streams per core" is then measured on a
dedicated core, not extrapolated from a shared one."""

from __future__ import annotations

import os

from errors import UsageError


def parse_cpus(text: str) -> tuple[int, ...]:
    """The CPUs a list names, sorted, each once; UsageError for anything else."""
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise UsageError(
                f"{text!r} is not a CPU list: give CPU numbers and ranges, e.g. 0 or 0,2 or 0-3"
            ) from None
        if first < 0 or last < first:
            raise UsageError(f"{text!r} is not a CPU list: a range runs low-high, from 0 up")
        cpus.update(range(first, last + 1))
    return tuple(sorted(cpus))


def format_cpus(cpus: tuple[int, ...] | set[int] | frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def usable_cpus(text: str) -> tuple[int, ...]:
    """The CPUs `text` names, each one of this machine's; UsageError otherwise. (The machine's,
    not this process's: a server started by pinned clients inherits their CPUs, and pins
    itself to others.)"""
    cpus = parse_cpus(text)
    allowed = set(range(os.cpu_count() or 1))
    outside = [c for c in cpus if c not in allowed]
    if outside:
        raise UsageError(
            f"CPU(s) {format_cpus(set(outside))} are not available here: this machine offers "
            f"{format_cpus(allowed)}"
        )
    return cpus


def pin(cpus: tuple[int, ...]) -> None:
    """Run this process (and what it starts from now on) on `cpus` only; UsageError when
    the kernel refuses (CPUs outside this container's cpuset)."""
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as exc:
        raise UsageError(f"cannot run on CPUs {format_cpus(cpus)}: {exc.strerror}") from None
