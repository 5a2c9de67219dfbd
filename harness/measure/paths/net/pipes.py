"""The relay's asyncio protocols: for each accepted connection one to the upstream, and a
`Pipe` per direction that holds what one side reads until it is due (`pacing.py`) and
writes it into the other, in order, with back-pressure both ways (a full write buffer
stops the pipe; a pipe holding `HIGH_WATER` bytes pauses its reader). A half-close passes
through once everything before it has; a connection closes when both directions are done.
`Stats` counts what the relay did, for its statistics file.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from clients.wirebytes import retransmissions
from harness.measure.paths.net.datagrams import DatagramSplice
from harness.measure.paths.net.helpers import LATENESS_SAMPLES, lateness_figures
from harness.measure.paths.net.holding import HoldStats, ResponseHold
from harness.measure.paths.net.pacing import Impairment, TokenBucket

HIGH_WATER = 1 << 20  # bytes held in one direction before its reader is paused
LOW_WATER = 256 << 10  # ... and resumed
MAX_CONNECTIONS_LISTED = 10_000  # per-connection retransmission counts kept


@dataclass
class Stats:
    """What the relay did, for its statistics file: counts, and how late held chunks were
    written against their due time."""

    connections: int = 0
    open_connections: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    chunks_up: int = 0
    chunks_down: int = 0
    held_for_loss: int = 0
    direct_writes: int = 0  # chunks written in the callback that read them (nothing to hold)
    idle_closes: int = 0  # connections closed for carrying no bytes for `idle_s`
    # TCP_INFO of each client connection as it closes: segments the relay resent towards
    # the client, of data segments sent (on `net:`, what the emulated link's loss cost)
    client_retransmits: int = 0
    client_data_segments: int = 0
    retransmits_per_connection: list[int] = field(default_factory=list)
    lateness_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENESS_SAMPLES)
    )

    def count_retransmissions(self, transport: asyncio.BaseTransport) -> None:
        """Add a closing client connection's TCP_INFO counts (its socket is still open in
        `connection_lost`; asyncio closes it after)."""
        counts = tcp_retransmissions(transport)
        if counts is None:
            return
        self.client_retransmits += counts[0]
        self.client_data_segments += counts[1]
        if len(self.retransmits_per_connection) < MAX_CONNECTIONS_LISTED:
            self.retransmits_per_connection.append(counts[0])

    def to_json(
        self, timer: str, scheduling: str, live: list[tuple[int, int]] | None = None
    ) -> dict[str, Any]:
        """The statistics; `live`: the open client connections' retransmission counts so
        far, added to those of the closed ones."""
        live = live or []
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
            "idle_closes": self.idle_closes,
            "client_retransmits": self.client_retransmits + sum(r for r, _ in live),
            "client_data_segments": self.client_data_segments + sum(n for _, n in live),
            "retransmits_per_connection": [
                *self.retransmits_per_connection,
                *(r for r, _ in live),
            ][:MAX_CONNECTIONS_LISTED],
            "timer": timer,
            "scheduling": scheduling,
            **lateness_figures(self.lateness_s, "held_chunks_sampled"),
        }


def tcp_retransmissions(transport: asyncio.BaseTransport) -> tuple[int, int] | None:
    """(retransmitted, data segments sent) of a transport's TCP socket; None when unknown."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        return retransmissions(sock)
    except OSError:  # not Linux, or the socket is already gone
        return None


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
        # a new connection's bytes take the link only once its handshake is done: TCP sends
        # no data before it (pacing them first let a large upload hide the handshake)
        ready = now if now >= self.not_before else self.not_before
        depart = ready if self.bucket is None else self.bucket.depart(ready, size)
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
        conn = self.conn
        conn.active_at = conn.relay.loop.time()
        if conn.hold is not None:  # a buffering CDN: what it lets through now
            if self is conn.client:
                conn.hold.from_client(data)
            else:
                data = conn.hold.from_origin(data)
                if not data:
                    return
        self.outbound.push(data)

    def _held_rest(self) -> None:
        """The origin's end: whatever the CDN still holds goes first."""
        conn = self.conn
        if conn.hold is not None and self is conn.upstream:
            rest = conn.hold.from_origin(b"")
            if rest:
                self.outbound.push(rest)

    def eof_received(self) -> bool:
        self._held_rest()
        self.outbound.push_eof()
        return True  # keep the other direction open (a half-close)

    def pause_writing(self) -> None:
        self.inbound.blocked = True

    def resume_writing(self) -> None:
        self.inbound.blocked = False
        self.inbound.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self is self.conn.client and self.transport is not None:
            self.conn.relay.stats.count_retransmissions(self.transport)
            self.conn.relay.open.discard(self.conn)  # counted: not live any more
        self.transport = None
        self.outbound.src = None
        self._held_rest()
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
        self.active_at = accepted  # the last bytes either way (the idle timeout's clock)
        self.hold = ResponseHold(relay.hold_bytes, relay.hold_stats) if relay.hold_bytes else None
        if relay.idle_s > 0:
            loop.call_at(accepted + relay.idle_s, self._idle_check)

    def _idle_check(self) -> None:
        """A load balancer's idle timeout: no bytes either way for `idle_s`, and both
        connections are closed (a FIN each way; what was in flight is dropped)."""
        if self.closed:
            return
        loop, idle_s = self.relay.loop, self.relay.idle_s
        quiet_until = self.active_at + idle_s
        if loop.time() < quiet_until:
            loop.call_at(quiet_until, self._idle_check)
            return
        self.relay.stats.idle_closes += 1
        self.up.finish()
        self.down.finish()

    def side_made(self, side: Side) -> None:
        if side is self.client:
            assert side.transport is not None
            side.transport.pause_reading()  # until upstream answers
            self.relay.stats.connections += 1
            self.relay.stats.open_connections += 1
            self.relay.open.add(self)
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
        self.relay.stats.open_connections -= 1  # (its TCP_INFO is counted as it goes)
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
        idle_s: float = 0.0,
        hold_bytes: int = 0,
    ) -> None:
        self.loop = loop
        self.idle_s = idle_s  # close a connection with no bytes either way for this long
        self.hold_bytes = hold_bytes  # a buffering CDN's hold (holding.py); 0: none
        self.hold_stats = HoldStats()
        self.upstream = upstream
        self.impairment = impairment
        self.down_bucket = TokenBucket(down_bps / 8) if down_bps > 0 else None
        self.up_bucket = TokenBucket(up_bps / 8) if up_bps > 0 else None
        self.seed = seed
        self.stats = Stats()
        self.open: set[Connection] = set()  # accepted, not yet closed
        self.datagrams: DatagramSplice | None = None  # `--udp`: the UDP side
        self._count = 0

    def live_retransmissions(self) -> list[tuple[int, int]]:
        """The open client connections' TCP_INFO retransmission counts so far."""
        out = []
        for conn in self.open:
            transport = conn.client.transport
            counts = tcp_retransmissions(transport) if transport is not None else None
            if counts is not None:
                out.append(counts)
        return out

    def accept(self) -> asyncio.Protocol:
        self._count += 1
        return Connection(self, self._count).client
