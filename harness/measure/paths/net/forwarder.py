"""The packet emulator's forwarder process: every IP packet between two TUN devices, one in
the harness's network namespace and one in a namespace the harness made, through the link
model (`link.py`) in each direction.

    python -m harness.measure.paths.net.forwarder --netns /run/netns/NAME \\
        --outer tw1f2t0 --inner tw1f2u0 --up '{"delay_s": 0.03}' --down '{"delay_s": 0.03}'

It makes both TUN devices (`--outer` here, `--inner` inside `--netns`), prints `ready` once
they exist, and then the harness gives them addresses. They are not persistent: they go when
this process exits, so it removes what it made. Packets the outer device receives (the
client's, towards the server) go up; those the inner one receives go down. Timers are exact
(`timerfd.py`) and it asks for SCHED_FIFO 1, as the relay does. It runs until SIGTERM or
SIGINT, or until its parent (`--parent-pid`) is gone. SIGUSR1 (and the exit) write its
statistics as JSON to `--stats`: each direction's counts (`LinkCounts`), how late packets
were written against their due time, and its own CPU per packet.

Standard library only, like the relay.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import heapq
import itertools
import json
import os
import select
import signal
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.measure.paths.net.helpers import (
    LATENESS_SAMPLES,
    add_helper_arguments,
    lateness_figures,
    raise_priority,
)
from harness.measure.paths.net.link import Link, LinkSpec
from harness.measure.paths.net.netns import inside
from harness.measure.paths.net.timerfd import Timerfd

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
READ_SIZE = 65536
READS_PER_WAKE = 64  # packets read in one callback before the loop runs its timers again
PARENT_CHECK_S = 1.0  # how often it checks that the harness that started it is alive


def open_tun(name: str) -> int:
    """A new (not persistent) TUN device `name` in this thread's network namespace, as a
    non-blocking file descriptor: IP packets, no packet-information header."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class Direction:
    """One direction: reads packets from `source`, writes each copy to `sink` when due.
    Packets in order wait in a queue (their due times never decrease); reordered ones in a
    heap of their own."""

    def __init__(self, link: Link, source: int, sink: int) -> None:
        self.link = link
        self.source = source
        self.sink = sink
        self.held: collections.deque[tuple[float, bytes]] = collections.deque()
        self.overtaking: list[tuple[float, int, bytes]] = []  # reordered: (due, n, packet)
        self.order = itertools.count()  # ties in `overtaking` go first in, first out
        self.lateness_s: collections.deque[float] = collections.deque(maxlen=LATENESS_SAMPLES)
        self.write_errors = 0

    def read(self) -> None:
        """Up to READS_PER_WAKE packets, each admitted to the link when read."""
        admit, held = self.link.admit, self.held
        for _ in range(READS_PER_WAKE):
            try:
                packet = os.read(self.source, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            now = time.monotonic()
            for delivery in admit(now, len(packet)):
                if not delivery.in_order:
                    heapq.heappush(self.overtaking, (delivery.due, next(self.order), packet))
                elif delivery.due <= now and not held:
                    self._write(packet)
                else:
                    held.append((delivery.due, packet))

    def flush(self, now: float) -> None:
        """Write every packet due by `now`."""
        held, late = self.held, self.lateness_s
        while held and held[0][0] <= now:
            due, packet = held.popleft()
            late.append(now - due)
            self._write(packet)
        while self.overtaking and self.overtaking[0][0] <= now:
            due, _, packet = heapq.heappop(self.overtaking)
            late.append(now - due)
            self._write(packet)

    def next_due(self) -> float | None:
        dues = [q[0][0] for q in (self.held, self.overtaking) if q]
        return min(dues) if dues else None

    def _write(self, packet: bytes) -> None:
        try:
            os.write(self.sink, packet)
        except OSError:  # the far side is down or its queue is full: the packet is lost
            self.write_errors += 1

    def figures(self) -> dict[str, Any]:
        return {
            **asdict(self.link.counts),
            "write_errors": self.write_errors,
            "held_now": len(self.held) + len(self.overtaking),
            **lateness_figures(self.lateness_s, "held_packets_sampled"),
        }


@dataclass
class Report:
    """Where and what the statistics say (`write`)."""

    path: Path | None
    directions: dict[str, Direction]
    scheduling: str
    cpu_at_ready: float = field(default_factory=lambda: cpu_seconds())

    def write(self) -> None:
        """The statistics; CPU counted from `ready` (start-up is not a packet's cost)."""
        if self.path is None:
            return
        cpu_s = cpu_seconds() - self.cpu_at_ready
        packets = sum(d.link.counts.packets for d in self.directions.values())
        stats = {
            "timer": "timerfd",
            "scheduling": self.scheduling,
            "cpu_s": round(cpu_s, 4),
            "packets": packets,
            "cpu_us_per_packet": round(cpu_s / packets * 1e6, 3) if packets else None,
            **{name: d.figures() for name, d in self.directions.items()},
        }
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(stats, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def forward(args: argparse.Namespace, scheduling: str) -> None:
    """Make the devices, say `ready`, and forward until told to stop (or orphaned): a plain
    epoll loop with one exact timer (timerfd) for both directions."""
    outer = open_tun(args.outer)
    with inside(args.netns):
        inner = open_tun(args.inner)
    up = Direction(Link(LinkSpec(**args.up)), outer, inner)
    down = Direction(Link(LinkSpec(**args.down)), inner, outer)
    by_fd = {outer: up, inner: down}
    report = Report(args.stats, {"up": up, "down": down}, scheduling)
    flags = {"stop": False, "report": False}
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda *_: flags.update(stop=True))
    signal.signal(signal.SIGINT, lambda *_: flags.update(stop=True))
    signal.signal(signal.SIGUSR1, lambda *_: flags.update(report=True))
    timer = Timerfd()
    poller = select.epoll()
    for fd in (outer, inner, timer.fd, wake_r):
        poller.register(fd, select.EPOLLIN)
    parent = args.parent_pid if args.parent_pid is not None else os.getppid()
    next_parent_check = time.monotonic() + PARENT_CHECK_S
    armed: float | None = None
    print(f"ready {args.outer} {args.inner}", flush=True)
    try:
        while not flags["stop"]:
            due = min((d for d in (up.next_due(), down.next_due()) if d is not None), default=None)
            if due is not None and due != armed:  # a syscall saved when nothing changed
                timer.arm(due)
                armed = due
            events = poller.poll(PARENT_CHECK_S)
            for fd, _ in events:
                if fd in by_fd:
                    by_fd[fd].read()
                elif fd == timer.fd:
                    timer.clear()
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
            now = time.monotonic()
            up.flush(now)
            down.flush(now)
            if flags["report"]:
                flags["report"] = False
                report.write()
            if now >= next_parent_check:
                next_parent_check = now + PARENT_CHECK_S
                if os.getppid() != parent:
                    print("forwarder: the harness is gone; stopping", file=sys.stderr)
                    break
    finally:
        report.write()
        for fd in (outer, inner, wake_r, wake_w):
            os.close(fd)
        timer.close()
        poller.close()


def _link_spec(text: str) -> dict[str, Any]:
    try:
        fields = json.loads(text)
        LinkSpec(**fields)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"not a link spec ({exc}): {text!r}") from None
    if not isinstance(fields, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return fields


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.measure.paths.net.forwarder",
        description="Forward IP packets between two TUN devices (one inside a network "
        "namespace) with delay, jitter, loss, reordering, duplication and a rate queue.",
    )
    parser.add_argument("--netns", type=Path, required=True, help="the inner device's netns")
    parser.add_argument("--outer", required=True, help="TUN device to make here")
    parser.add_argument("--inner", required=True, help="TUN device to make inside --netns")
    parser.add_argument("--up", type=_link_spec, default={}, help="LinkSpec JSON, outer to inner")
    parser.add_argument("--down", type=_link_spec, default={}, help="LinkSpec JSON, back")
    add_helper_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    forward(args, raise_priority(args.scheduling))
    return 0


if __name__ == "__main__":
    sys.exit(main())
