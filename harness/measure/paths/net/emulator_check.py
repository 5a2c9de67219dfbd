"""The packet emulator's known answers, measured:
`python -m harness.measure.paths.net.emulator_check`.

Each check makes its own emulated link (`emulator.py`: a namespace, the forwarder and the
two TUN devices), uses sockets on both sides of it (the far side's made inside the
namespace), and removes it:

    ping   ICMP echo to the far address (the kernel inside answers); the median round trip
           against the configured RTT
    rate   1 MB down (a sender inside, a receiver here) and 1 MB up over `bw`: connect to
           the last byte, against the IP packets' bytes / bandwidth (TCP/IP headers cross
           the link too: 1.036 s for 1 MB at 8 mbit, where size / bandwidth is 1.0 s)
    tcp    a bulk TCP upload under `loss`: the sender's retransmitted segments over data
           segments sent (TCP_INFO), against the loss rate
    udp    datagrams each way under `loss`: lost over sent, against the loss rate; and the
           forwarder's own count of drops must equal the datagrams that did not arrive
    cost   the forwarder's CPU per packet (its statistics), and how late it wrote

Exit status 1 when a figure is outside its tolerance. Tolerances: ping and rate within
5%, loss 1.5% to 2.5% for loss=2% (scaled for other settings), drops counted exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.wirebytes import retransmissions
from harness.measure.paths.net.emulator import PacketLink, packet_link
from harness.measure.paths.net.netns import inside
from harness.measure.paths.net.spec import parse_network

PORT = 9000  # inside the namespace nothing else listens
IP_TCP_HEADERS = 52  # IPv4 (20) + TCP with timestamps (32): what a full segment carries
SEGMENT = 1448
IO_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    measured: float
    expected: float
    low: float
    high: float
    unit: str
    detail: str

    @property
    def ok(self) -> bool:
        return self.low <= self.measured <= self.high


@contextlib.contextmanager
def emulated(argument: str) -> Iterator[PacketLink]:
    spec, _ = parse_network(argument)
    with (
        tempfile.TemporaryDirectory(prefix="emulator-check-") as tmp,
        packet_link(spec, Path(tmp)) as link,
    ):
        yield link


def far_socket(link: PacketLink, kind: int) -> socket.socket:
    """A socket inside the namespace, bound to its address."""
    with inside(link.namespace.path):
        sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((link.namespace.ns_addr, PORT))
    return sock


# --- ping ---------------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request (type 8) with its checksum."""
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, _checksum(head + payload), ident, seq) + payload


def ping(address: str, count: int, gap_s: float = 0.05) -> list[float]:
    """Round trips (s) of `count` ICMP echoes to `address`, one at a time (a raw socket:
    needs root, which the emulator needs anyway)."""
    rtts = []
    ident = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.settimeout(2.0)
        for seq in range(count):
            sent = time.perf_counter()
            sock.sendto(echo_request(ident, seq, b"tokenwire" * 6), (address, 0))
            while True:
                reply, _ = sock.recvfrom(2048)
                header = (reply[0] & 0x0F) * 4
                kind, _, _, rid, rseq = struct.unpack_from("!BBHHH", reply, header)
                if kind == 0 and rid == ident and rseq == seq:
                    rtts.append(time.perf_counter() - sent)
                    break
            time.sleep(gap_s)
    return rtts


def check_ping(rtt_ms: float, count: int) -> Check:
    with emulated(f"rtt={rtt_ms:g}ms") as link:
        rtts = ping(link.namespace.ns_addr, count)
    median = statistics.median(rtts) * 1e3
    return Check(
        "ping RTT",
        median,
        rtt_ms,
        rtt_ms * 0.95,
        rtt_ms * 1.05,
        "ms",
        f"median of {len(rtts)} ICMP echoes; min {min(rtts) * 1e3:.2f}, max "
        f"{max(rtts) * 1e3:.2f} ms",
    )


# --- rate ---------------------------------------------------------------------------------


def _serve_once(listener: socket.socket, act: Callable[[socket.socket], None]) -> threading.Thread:
    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            act(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _drain(conn: socket.socket) -> int:
    got = 0
    while chunk := conn.recv(1 << 20):
        got += len(chunk)
    return got


def transfer_s(link: PacketLink, size: int, down: bool) -> float:
    """Seconds from connect to the last byte of `size` bytes, down (from inside) or up."""
    listener = far_socket(link, socket.SOCK_STREAM)
    listener.listen(1)
    payload = b"x" * size
    got: list[int] = []
    with listener:
        if down:
            thread = _serve_once(listener, lambda conn: conn.sendall(payload))
        else:
            thread = _serve_once(listener, lambda conn: got.append(_drain(conn)))
        start = time.perf_counter()
        with socket.create_connection((link.namespace.ns_addr, PORT), IO_TIMEOUT_S) as sock:
            if down:
                got.append(_drain(sock))
            else:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(1)  # the far side's close: everything arrived
        thread.join(IO_TIMEOUT_S)
        elapsed = time.perf_counter() - start
    if got != [size]:
        raise RuntimeError(f"moved {got} bytes, not {size}")
    return elapsed


def check_rate(bw_mbit: float, size: int) -> list[Check]:
    rate = bw_mbit * 1e6
    expected = size * 8 / rate
    segments = -(-size // SEGMENT)
    with_headers = (size + segments * IP_TCP_HEADERS) * 8 / rate
    checks = []
    with emulated(f"bw={bw_mbit:g}mbit") as link:
        for down in (True, False):
            elapsed = transfer_s(link, size, down)
            checks.append(
                Check(
                    f"{size / 1e6:g} MB {'down' if down else 'up'} at {bw_mbit:g} mbit",
                    elapsed,
                    with_headers,
                    with_headers * 0.95,
                    with_headers * 1.05,
                    "s",
                    f"the IP packets' bytes / bandwidth {with_headers:.3f} s (TCP/IP headers "
                    f"cross the link too); size / bandwidth {expected:.3f} s",
                )
            )
    return checks


# --- loss ---------------------------------------------------------------------------------


def _bounds(loss: float) -> tuple[float, float]:
    """1.5% to 2.5% for loss=2%, scaled."""
    return loss * 0.75, loss * 1.25


def check_tcp_loss(loss: float, rtt_ms: float, size: int) -> Check:
    with emulated(f"rtt={rtt_ms:g}ms,loss={loss * 100:g}%") as link:
        listener = far_socket(link, socket.SOCK_STREAM)
        listener.listen(1)
        got: list[int] = []
        with listener:
            thread = _serve_once(listener, lambda conn: got.append(_drain(conn)))
            with socket.create_connection((link.namespace.ns_addr, PORT), IO_TIMEOUT_S) as sock:
                sock.sendall(b"x" * size)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(1)
                retrans, segments = retransmissions(sock)
            thread.join(IO_TIMEOUT_S)
    low, high = _bounds(loss)
    return Check(
        f"TCP retransmissions at loss={loss * 100:g}%",
        retrans / segments * 100,
        loss * 100,
        low * 100,
        high * 100,
        "%",
        f"{retrans} retransmitted of {segments} data segments sent (TCP_INFO); "
        f"{got[0] if got else 0} bytes arrived of {size}",
    )


def udp_lost(link: PacketLink, count: int, down: bool, rate: float) -> tuple[int, int]:
    """(sent, received) datagrams across the link, paced at `rate` a second."""
    far = far_socket(link, socket.SOCK_DGRAM)
    near = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    near.bind((link.namespace.host_addr, 0))
    sender, receiver = (far, near) if down else (near, far)
    target = receiver.getsockname()
    received = 0
    with far, near:
        receiver.setblocking(False)
        start = time.perf_counter()
        for k in range(count):
            pause = start + k / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sender.sendto(k.to_bytes(4, "big") * 16, target)
            received += _drain_udp(receiver)
        deadline = time.perf_counter() + 1.0  # the last ones in flight
        while time.perf_counter() < deadline:
            received += _drain_udp(receiver)
            time.sleep(0.01)
    return count, received


def _drain_udp(sock: socket.socket) -> int:
    got = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            sock.recv(2048)
            got += 1
    return got


def check_udp_loss(loss: float, count: int) -> tuple[list[Check], dict[str, Any] | None]:
    checks = []
    low, high = _bounds(loss)
    with emulated(f"rtt=2ms,loss={loss * 100:g}%") as link:
        results = {d: udp_lost(link, count, d == "down", 5000.0) for d in ("up", "down")}
        stats = link.forwarder.stats()
    for direction, (sent, received) in results.items():
        dropped = -1 if stats is None else stats[direction]["lost"]
        checks.append(
            Check(
                f"UDP datagrams lost {direction} at loss={loss * 100:g}%",
                (sent - received) / sent * 100,
                loss * 100,
                low * 100,
                high * 100,
                "%",
                f"{sent - received} of {sent} did not arrive",
            )
        )
        checks.append(
            Check(
                f"UDP missing {direction} - forwarder's drops",
                sent - received - dropped,
                0,
                0,
                0,
                "",
                f"{sent - received} missing, {dropped} dropped by the forwarder: a count that "
                "must match",
            )
        )
    return checks, stats


def cost_lines(stats: dict[str, Any] | None) -> list[str]:
    if stats is None:
        return ["forwarder statistics unavailable"]
    lines = [
        f"forwarder: {stats['packets']} packets, {stats['cpu_s']:.2f} s CPU, "
        f"{stats['cpu_us_per_packet']} us per packet ({stats['scheduling']}, {stats['timer']})"
    ]
    for direction in ("up", "down"):
        d = stats[direction]
        lines.append(
            f"  {direction}: written late by p50 {d['lateness_ms_p50']} ms, "
            f"p99 {d['lateness_ms_p99']} ms, max {d['lateness_ms_max']} ms"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.measure.paths.net.emulator_check",
        description="The packet emulator's known answers: ping RTT, transfer time at a "
        "bandwidth, TCP retransmissions and UDP loss at a loss rate, and its own cost.",
    )
    parser.add_argument("--rtt-ms", type=float, default=60.0, help="for ping (default 60)")
    parser.add_argument("--pings", type=int, default=20)
    parser.add_argument("--bw-mbit", type=float, default=8.0, help="for rate (default 8)")
    parser.add_argument("--bytes", type=int, default=1_000_000, help="for rate (default 1 MB)")
    parser.add_argument("--loss-pct", type=float, default=2.0, help="for tcp and udp")
    parser.add_argument("--packets", type=int, default=10_000, help="UDP datagrams each way")
    parser.add_argument(
        "--tcp-bytes", type=int, default=16_000_000, help="the TCP upload (11,050 segments)"
    )
    parser.add_argument("--only", help="comma list of ping, rate, tcp, udp")
    args = parser.parse_args(argv)
    wanted = set((args.only or "ping,rate,tcp,udp").split(","))
    loss = args.loss_pct / 100
    checks: list[Check] = []
    stats = None
    if "ping" in wanted:
        checks.append(check_ping(args.rtt_ms, args.pings))
    if "rate" in wanted:
        checks += check_rate(args.bw_mbit, args.bytes)
    if "tcp" in wanted:
        checks.append(check_tcp_loss(loss, 4.0, args.tcp_bytes))
    if "udp" in wanted:
        udp, stats = check_udp_loss(loss, args.packets)
        checks += udp
    for c in checks:
        print(
            f"{'ok  ' if c.ok else 'FAIL'} {c.name:<34} {c.measured:9.3f} {c.unit:<3} "
            f"expected {c.expected:g} ({c.low:.3g} to {c.high:.3g}): {c.detail}"
        )
    if stats is not None:
        print("\n".join(cost_lines(stats)))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
