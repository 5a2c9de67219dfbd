"""A userspace TCP relay that makes loopback behave like a network path.

    python -m harness.measure.paths.relay --listen-fd 3 --upstream 127.0.0.1:8000 \\
        --delay-ms 20 --rtt-ms 40 --jitter-ms 2 --loss 0.005 --down-bps 8100000 --up-bps 1350000

For every accepted connection it opens one to `--upstream` (TCP_NODELAY on both) and pumps
both directions. Each chunk read in either direction is held and written when it is due:

    depart = arrival, paced by the direction's token bucket (--down-bps / --up-bps)
    due    = max(previous due, depart + delay + jitter (+ one RTT with probability loss))

so chunks leave in the order they came (a later chunk never overtakes an earlier one, as on
one TCP connection), and a request/response round trip costs the full RTT: the hold happens
in each direction. The model, part by part:

- delay: `--delay-ms`, the one-way delay (half the RTT).
- jitter: uniform in [-jitter, +jitter] per chunk and direction (netem's default when no
  distribution is named), clamped so no chunk is held less than zero; the in-order rule
  turns a negative draw after a positive one into no gain.
- loss: what TCP makes of a lost segment, a late one: with probability `--loss` a chunk is
  held one extra RTT (a retransmission after about one RTT, as fast retransmit or a tail loss
  probe would do). No byte is ever dropped; the chunks behind it wait too (head of line).
- bandwidth: one token bucket per direction, shared by every connection (one access link),
  at `--down-bps` (server to client) and `--up-bps` (client to server); its burst is
  `BURST_S` worth of bytes (at least two full-size segments). Large reads are cut into
  slices (`SLICE_S` worth, at least one segment) so a slow link delivers progressively.
- handshake: a new connection's first bytes towards the server leave no earlier than one
  RTT after it was accepted, the cost of TCP's SYN / SYN-ACK that loopback does not charge.

With no delay, jitter, loss or bandwidth a chunk is written in the same callback that read
it. Timers are exact: the event loop's selector waits on a timerfd (nanosecond resolution)
instead of epoll_wait's whole milliseconds, which would make every held chunk up to 1 ms late.
And the relay asks for the lowest real-time priority (SCHED_FIFO 1; `--scheduling normal`
to keep the default): a chunk that is due is written even when the server and the clients
keep every core busy, as netem's kernel timers would. It uses a few tens of microseconds of
CPU per chunk, so it takes little from them. Without the privilege it runs at normal
priority; the statistics say which.

The listening socket is inherited (`--listen-fd`, bound by the harness on loopback, so no
other process can take the port between choosing and binding it) or bound here
(`--listen HOST:PORT`, optionally inside a network namespace: `--netns /run/netns/NAME`;
only that socket lives there, connections upstream are made from the relay's own
namespace). It prints `ready HOST PORT` on stdout once it accepts, and runs until SIGTERM or
SIGINT, or until its parent (`--parent-pid`) is gone. SIGUSR1 (and the exit) write the
relay's own statistics as JSON to `--stats`: bytes and chunks each way, connections, chunks
held for loss, and how late chunks were written against their due time (the relay's own
added cost).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import json
import os
import random
import select
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HIGH_WATER = 1 << 20  # bytes held in one direction before its reader is paused
LOW_WATER = 256 << 10  # ... and resumed
SEGMENT = 1448  # a full-size TCP segment on a 1500-byte MTU (with timestamps)
SLICE_S = 0.002  # a paced direction cuts reads into slices of this much link time
BURST_S = 0.005  # the token bucket's depth, in link time
LATENESS_SAMPLES = 100_000  # the most recent lateness samples kept for the statistics
CLONE_NEWNET = 0x40000000
PARENT_CHECK_S = 1.0  # how often the relay checks that the harness that started it is alive


@dataclass(frozen=True, slots=True)
class Impairment:
    """What the relay does to every chunk, in seconds and as a probability."""

    delay_s: float = 0.0  # one way
    jitter_s: float = 0.0  # uniform in [-jitter, +jitter]
    loss: float = 0.0  # probability that a chunk is held one extra RTT
    rtt_s: float = 0.0  # the retransmission penalty and the handshake's cost
    handshake: bool = True  # a new connection's first bytes wait one RTT


@dataclass
class Stats:
    connections: int = 0
    open_connections: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    chunks_up: int = 0
    chunks_down: int = 0
    held_for_loss: int = 0
    direct_writes: int = 0  # chunks written in the callback that read them (nothing to hold)
    lateness_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENESS_SAMPLES)
    )

    def to_json(self, timer: str, scheduling: str) -> dict[str, Any]:
        late = sorted(self.lateness_s)

        def pct(q: float) -> float | None:
            if not late:
                return None
            return round(late[min(len(late) - 1, int(q * len(late)))] * 1e3, 4)

        return {
            "connections": self.connections,
            "open_connections": self.open_connections,
            "upstream_failures": self.upstream_failures,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "chunks_up": self.chunks_up,
            "chunks_down": self.chunks_down,
            "held_for_loss": self.held_for_loss,
            "direct_writes": self.direct_writes,
            "timer": timer,
            "scheduling": scheduling,
            "held_chunks_sampled": len(late),
            "lateness_ms_p50": pct(0.5),
            "lateness_ms_p99": pct(0.99),
            "lateness_ms_max": None if not late else round(late[-1] * 1e3, 4),
        }


class TokenBucket:
    """One direction of the link: `rate` bytes/s, `burst` bytes deep, shared by every
    connection. `depart` answers when a chunk that is ready at `ready` has left the link
    (its last byte sent), and charges it."""

    def __init__(self, rate_bytes_per_s: float) -> None:
        self.rate = rate_bytes_per_s
        self.burst = max(2.0 * SEGMENT, rate_bytes_per_s * BURST_S)
        self.slice = max(SEGMENT, int(rate_bytes_per_s * SLICE_S))
        self.tokens = self.burst
        self.time = 0.0  # the tokens are known at this time

    def depart(self, ready: float, size: int) -> float:
        t = max(ready, self.time)
        self.tokens = min(self.burst, self.tokens + (t - self.time) * self.rate)
        self.tokens -= size
        if self.tokens < 0.0:
            t -= self.tokens / self.rate
            self.tokens = 0.0
        self.time = t
        return t


class Pipe:
    """One direction of one relayed connection: what `src` sends, held until due, into `dst`."""

    def __init__(
        self,
        relay: Relay,
        bucket: TokenBucket | None,
        rng: random.Random,
        upward: bool,
        not_before: float = 0.0,
    ) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.imp = relay.impairment
        self.bucket = bucket
        self.rng = rng
        self.upward = upward
        self.not_before = not_before
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self.queued = 0
        self.last_due = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.blocked = False  # dst's write buffer is full
        self.src_paused = False
        self.eof_seen = False
        self.done = False
        self.on_done: Any = None

    def _due(self, now: float, size: int) -> float:
        imp = self.imp
        depart = now if self.bucket is None else self.bucket.depart(now, size)
        if depart < self.not_before:
            depart = self.not_before
        hold = imp.delay_s
        if imp.jitter_s:
            hold = max(0.0, hold + self.rng.uniform(-imp.jitter_s, imp.jitter_s))
        if imp.loss and self.rng.random() < imp.loss:
            hold += imp.rtt_s
            self.relay.stats.held_for_loss += 1
        due = depart + hold
        if due < self.last_due:
            due = self.last_due
        self.last_due = due
        return due

    def push(self, data: bytes) -> None:
        stats = self.relay.stats
        if self.upward:
            stats.bytes_up += len(data)
            stats.chunks_up += 1
        else:
            stats.bytes_down += len(data)
            stats.chunks_down += 1
        now = self.loop.time()
        step = self.bucket.slice if self.bucket is not None else len(data)
        if step >= len(data):
            due = self._due(now, len(data))
            if (
                due <= now
                and not self.queue
                and not self.blocked
                and self.dst is not None
                and not self.done
            ):
                self.dst.write(data)
                stats.direct_writes += 1
                return
            self._hold(due, data)
        else:
            view = memoryview(data)
            for start in range(0, len(data), step):
                piece = bytes(view[start : start + step])
                self._hold(self._due(now, len(piece)), piece)
        if self.queued > HIGH_WATER and self.src is not None and not self.src_paused:
            self.src.pause_reading()
            self.src_paused = True

    def push_eof(self) -> None:
        """The source half-closed (or went away): pass that on once everything before it has."""
        if self.eof_seen:
            return
        self.eof_seen = True
        now = self.loop.time()
        due = max(self.last_due, now + self.imp.delay_s)
        self.last_due = due
        self._hold(due, None)

    def _hold(self, due: float, data: bytes | None) -> None:
        self.queue.append((due, data))
        if data is not None:
            self.queued += len(data)
        if self.timer is None and not self.blocked and self.dst is not None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def flush(self) -> None:
        self.timer = None
        dst = self.dst
        if self.blocked or dst is None or self.done:
            return
        now = self.loop.time()
        parts: list[bytes] = []
        late = self.relay.stats.lateness_s
        eof = False
        queue = self.queue
        while queue and queue[0][0] <= now:
            due, data = queue.popleft()
            late.append(now - due)
            if data is None:
                eof = True
                break
            parts.append(data)
            self.queued -= len(data)
        if parts:
            dst.write(parts[0] if len(parts) == 1 else b"".join(parts))
        if eof:
            queue.clear()
            self.queued = 0
            if dst.can_write_eof():
                dst.write_eof()
            else:
                dst.close()
            self.finish()
            return
        if queue:
            self.timer = self.loop.call_at(queue[0][0], self.flush)
        if self.src_paused and self.queued < LOW_WATER and self.src is not None:
            self.src_paused = False
            self.src.resume_reading()

    def start(self) -> None:
        """dst is there: write whatever is due, or wait for it."""
        if self.queue and self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def finish(self) -> None:
        """Nothing more goes this way (delivered its end, or its destination is gone)."""
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued = 0
        if self.on_done is not None:
            self.on_done()


class Side(asyncio.Protocol):
    """One socket of a relayed connection: reads into `outbound`, is written by `inbound`."""

    def __init__(self, conn: Connection, outbound: Pipe, inbound: Pipe) -> None:
        self.conn = conn
        self.outbound = outbound
        self.inbound = inbound
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.outbound.src = transport
        self.inbound.dst = transport
        self.conn.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.outbound.push(data)

    def eof_received(self) -> bool:
        self.outbound.push_eof()
        return True  # keep the other direction open (a half-close)

    def pause_writing(self) -> None:
        self.inbound.blocked = True

    def resume_writing(self) -> None:
        self.inbound.blocked = False
        self.inbound.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.outbound.src = None
        self.outbound.push_eof()  # what it sent still arrives, then the end
        self.inbound.dst = None
        self.inbound.finish()  # nobody left to write to


class Connection:
    """One client connection and the upstream connection made for it."""

    def __init__(self, relay: Relay, index: int) -> None:
        self.relay = relay
        loop = relay.loop
        rng = random.Random(relay.seed * 1_000_003 + index)
        imp = relay.impairment
        accepted = loop.time()
        floor = accepted + imp.rtt_s if imp.handshake else 0.0
        self.up = Pipe(relay, relay.up_bucket, rng, upward=True, not_before=floor)
        self.down = Pipe(relay, relay.down_bucket, rng, upward=False)
        self.client = Side(self, outbound=self.up, inbound=self.down)
        self.upstream = Side(self, outbound=self.down, inbound=self.up)
        self.up.on_done = self.down.on_done = self._pipe_done
        self.closed = False

    def side_made(self, side: Side) -> None:
        if side is self.client:
            assert side.transport is not None
            side.transport.pause_reading()  # until upstream answers
            self.relay.stats.connections += 1
            self.relay.stats.open_connections += 1
            self.relay.loop.create_task(self._connect())
        else:
            if self.client.transport is None:  # the client left while we connected
                assert side.transport is not None
                side.transport.close()
                return
            self.up.start()
            self.down.start()
            self.client.transport.resume_reading()

    async def _connect(self) -> None:
        host, port = self.relay.upstream
        try:
            await self.relay.loop.create_connection(lambda: self.upstream, host, port)
        except OSError as exc:
            self.relay.stats.upstream_failures += 1
            print(f"relay: cannot connect to {host}:{port}: {exc}", file=sys.stderr)
            self.up.finish()
            if self.client.transport is not None:
                self.client.transport.abort()

    def _pipe_done(self) -> None:
        if self.closed or not (self.up.done and self.down.done):
            return
        self.closed = True
        self.relay.stats.open_connections -= 1
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.close()


class Relay:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        upstream: tuple[str, int],
        impairment: Impairment,
        down_bps: float,
        up_bps: float,
        seed: int,
    ) -> None:
        self.loop = loop
        self.upstream = upstream
        self.impairment = impairment
        self.down_bucket = TokenBucket(down_bps / 8) if down_bps > 0 else None
        self.up_bucket = TokenBucket(up_bps / 8) if up_bps > 0 else None
        self.seed = seed
        self.stats = Stats()
        self._count = 0

    def accept(self) -> asyncio.Protocol:
        self._count += 1
        return Connection(self, self._count).client


# --- exact timers -----------------------------------------------------------------------


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


TFD_TIMER_ABSTIME = 1


class TimerfdSelector(selectors.EpollSelector):
    """epoll whose timeouts are exact: a one-shot CLOCK_MONOTONIC timerfd (the event loop's
    own clock) set to the deadline wakes epoll_wait, whose own timeout is whole milliseconds
    rounded up (kept, plus one, as a safety net)."""

    def __init__(self) -> None:
        super().__init__()
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        fd = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._timerfd = fd
        self._spec = _Itimerspec()
        self._armed = False
        self._selector.register(fd, select.EPOLLIN)

    def _arm(self, deadline: float) -> None:
        seconds = int(deadline)
        self._spec.it_value.tv_sec = seconds
        self._spec.it_value.tv_nsec = max(1, int((deadline - seconds) * 1e9))
        if self._settime(self._timerfd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")
        self._armed = True

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
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, 8)
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
        with contextlib.suppress(OSError):
            os.close(self._timerfd)
        super().close()


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """An event loop with exact timers where the kernel has timerfd; else the default."""
    try:
        return asyncio.SelectorEventLoop(TimerfdSelector()), "timerfd"
    except (OSError, AttributeError):
        return asyncio.SelectorEventLoop(), "epoll (1 ms timeouts)"


# --- the process --------------------------------------------------------------------------


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def listen_in_namespace(netns: Path, host: str, port: int) -> socket.socket:
    """A listening socket created inside the network namespace at `netns`; this thread is
    back in its own namespace when it returns."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
        try:
            return _listener(host, port)
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back failed")
    finally:
        os.close(own)
        os.close(target)


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock


def raise_priority(wanted: str) -> str:
    """SCHED_FIFO 1 when `wanted` is realtime and allowed; what the relay runs at."""
    if wanted == "realtime":
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            return "SCHED_FIFO 1"
        except (OSError, AttributeError):
            pass
    return "normal"


def write_stats(path: Path | None, relay: Relay, timer: str, scheduling: str) -> None:
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    stats = relay.stats.to_json(timer, scheduling)
    tmp.write_text(json.dumps(stats, indent=2), encoding="utf-8")
    os.replace(tmp, path)


async def serve(args: argparse.Namespace, timer: str, scheduling: str) -> None:
    loop = asyncio.get_running_loop()
    if args.listen_fd is not None:
        sock = socket.socket(fileno=args.listen_fd)
    elif args.netns is not None:
        sock = listen_in_namespace(args.netns, *args.listen)
    else:
        sock = _listener(*args.listen)
    sock.setblocking(False)
    impairment = Impairment(
        delay_s=args.delay_ms / 1e3,
        jitter_s=args.jitter_ms / 1e3,
        loss=args.loss,
        rtt_s=args.rtt_ms / 1e3,
        handshake=not args.no_handshake,
    )
    relay = Relay(loop, args.upstream, impairment, args.down_bps, args.up_bps, args.seed)
    server = await loop.create_server(relay.accept, sock=sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, write_stats, args.stats, relay, timer, scheduling)
    parent = args.parent_pid if args.parent_pid is not None else os.getppid()
    watch = loop.create_task(_watch_parent(parent, stop))
    host, port = sock.getsockname()[:2]
    print(f"ready {host} {port}", flush=True)
    try:
        await stop.wait()
    finally:
        watch.cancel()
        server.close()
        write_stats(args.stats, relay, timer, scheduling)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Stop when the harness that started us is gone (killed before it could stop us)."""
    while not stop.is_set():
        await asyncio.sleep(PARENT_CHECK_S)
        if os.getppid() != parent:
            print("relay: the harness is gone; stopping", file=sys.stderr)
            stop.set()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.measure.paths.relay",
        description="A TCP relay that holds every chunk for a one-way delay (with jitter, "
        "loss as retransmission delay and bandwidth pacing) in each direction.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen-fd", type=int, help="an inherited listening socket")
    where.add_argument("--listen", type=_host_port, help="HOST:PORT to bind and listen on")
    parser.add_argument("--netns", type=Path, help="with --listen: a namespace file to bind in")
    parser.add_argument("--upstream", type=_host_port, required=True, help="HOST:PORT to relay to")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay")
    parser.add_argument("--rtt-ms", type=float, default=None, help="default: 2 x delay")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="uniform +- per chunk")
    parser.add_argument("--loss", type=float, default=0.0, help="probability (0 to 1)")
    parser.add_argument("--down-bps", type=float, default=0.0, help="bit/s to the client")
    parser.add_argument("--up-bps", type=float, default=0.0, help="bit/s to the server")
    parser.add_argument("--seed", type=int, default=1, help="jitter and loss draws")
    parser.add_argument("--no-handshake", action="store_true", help="no RTT for a new connection")
    parser.add_argument("--stats", type=Path, help="JSON statistics, on SIGUSR1 and at exit")
    parser.add_argument("--parent-pid", type=int, help="stop when no longer this PID's child")
    parser.add_argument(
        "--scheduling",
        choices=("realtime", "normal"),
        default="realtime",
        help="realtime: SCHED_FIFO 1 when allowed (default); normal: the default policy",
    )
    args = parser.parse_args(argv)
    if args.rtt_ms is None:
        args.rtt_ms = 2 * args.delay_ms
    if args.netns is not None and args.listen is None:
        parser.error("--netns needs --listen")
    for name in ("delay_ms", "rtt_ms", "jitter_ms", "down_bps", "up_bps"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if not 0 <= args.loss < 1:
        parser.error("--loss is a probability from 0 to below 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loop, timer = new_event_loop()
    scheduling = raise_priority(args.scheduling)
    try:
        loop.run_until_complete(serve(args, timer, scheduling))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
