"""The relay process: a userspace TCP relay that makes loopback behave like a network path.

    python -m harness.measure.paths.net.relay --listen-fd 3 --upstream 127.0.0.1:8000 \\
        --delay-ms 20 --rtt-ms 40 --jitter-ms 2 --loss 0.005 --down-bps 8100000 --up-bps 1350000

For every accepted connection it opens one to `--upstream` (TCP_NODELAY on both) and pumps
both directions (`pipes.py`), each chunk read held and written when it is due (the model,
in full: `pacing.py`). Timers are exact (`timerfd.py`). And the relay asks for the lowest
real-time priority (SCHED_FIFO 1; `--scheduling normal` to keep the default): a chunk that
is due is written even when the server and the clients keep every core busy, as netem's
kernel timers would. It uses a few tens of microseconds of CPU per chunk, so it takes
little from them. Without the privilege it runs at normal priority; the statistics say
which.

The listening socket is inherited (`--listen-fd`, bound by the harness on loopback, so no
other process can take the port between choosing and binding it) or bound here
(`--listen HOST:PORT`, optionally inside a network namespace: `--netns /run/netns/NAME`;
only that socket lives there, connections upstream are made from the relay's own
namespace). It prints `ready HOST PORT` on stdout once it accepts, and runs until SIGTERM or
SIGINT, or until its parent (`--parent-pid`) is gone. With `--udp` it also splices UDP on
its port to the upstream's UDP port of the same number (`datagrams.py`), with no
impairment: on `net:` the forwarder applies it to both. SIGUSR1 (and the exit) write the
relay's own statistics as JSON to `--stats`: bytes and chunks each way, connections, chunks
held for loss, the TCP retransmissions towards the clients (each client connection's
TCP_INFO as it closes: on `net:`, what the emulated link's loss cost), and how late chunks
were written against their due time (the relay's own added cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from dataclasses import asdict
from pathlib import Path

from harness.measure.paths.net.datagrams import DatagramSplice
from harness.measure.paths.net.helpers import add_helper_arguments, raise_priority
from harness.measure.paths.net.netns import inside
from harness.measure.paths.net.pacing import Impairment
from harness.measure.paths.net.pipes import Relay
from harness.measure.paths.net.timerfd import new_event_loop

PARENT_CHECK_S = 1.0  # how often the relay checks that the harness that started it is alive


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def listen_in_namespace(netns: Path, host: str, port: int) -> socket.socket:
    """A listening socket created inside the network namespace at `netns`; this thread is
    back in its own namespace when it returns."""
    with inside(netns):
        return _listener(host, port)


def bound_in_namespace(netns: Path, host: str, port: int) -> socket.socket:
    """A UDP socket bound inside the network namespace at `netns`."""
    with inside(netns):
        return _udp(host, port)


def _udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    return sock


def write_stats(path: Path | None, relay: Relay, timer: str, scheduling: str) -> None:
    if path is None:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    stats = relay.stats.to_json(timer, scheduling, relay.live_retransmissions())
    if relay.datagrams is not None:
        stats["udp"] = relay.datagrams.stats.to_json()
    if relay.hold_bytes:
        stats["cdn_hold"] = {"hold_bytes": relay.hold_bytes, **asdict(relay.hold_stats)}
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
    relay = Relay(
        loop,
        args.upstream,
        impairment,
        args.down_bps,
        args.up_bps,
        args.seed,
        args.idle_s,
        round(args.hold_kib * 1024),
    )
    server = await loop.create_server(relay.accept, sock=sock)
    datagrams = None
    if args.udp:  # the same port for UDP, to the upstream's UDP port of the same number
        host, port = sock.getsockname()[:2]
        udp = bound_in_namespace(args.netns, host, port) if args.netns else _udp(host, port)
        _, datagrams = await loop.create_datagram_endpoint(
            lambda: DatagramSplice(loop, args.upstream), sock=udp
        )
        relay.datagrams = datagrams
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
        if datagrams is not None:
            datagrams.close()
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
        prog="python -m harness.measure.paths.net.relay",
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
    parser.add_argument(
        "--udp",
        action="store_true",
        help="also splice UDP on the same port to the upstream's (no impairment: for net:)",
    )
    parser.add_argument(
        "--idle-s", type=float, default=0.0, help="close a connection idle this long (0: never)"
    )
    parser.add_argument(
        "--hold-kib",
        type=float,
        default=0.0,
        help="hold responses until this much body or their end, as a buffering CDN (0: never)",
    )
    add_helper_arguments(parser)
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
