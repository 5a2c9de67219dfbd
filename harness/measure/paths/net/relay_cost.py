"""The relay's and the packet forwarder's own cost, measured:
`python -m harness.measure.paths.net.relay_cost`.

A stamping server (a subprocess of its own) sends `--streams` connections a 16-byte message
(sequence number, `perf_counter_ns` at send) `--rate` times a second for `--seconds`; an
asyncio client in this process reads them and takes arrival minus send on the one clock.
The same load runs straight to the server and then through `relay:` and `net:` layers (by
default `rtt=0` and `rtt=40ms` of each). Printed per path: the one-way delay beyond the
configured one (p50, p99, max, in ms), the CPU of the layer's own processes (the relay; on
`net:` the forwarder and the splice in its namespace) per message and in all, and the
lateness figures of the one that holds data (how late it wrote against the due time; the
forwarder's worse direction).

This is lighter than a benchmark run: no HTTP, no token source, one small message per
token, so what the relay adds is not hidden under the harness's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from errors import ScenarioError
from harness.measure.paths import Endpoint, parse_path
from harness.measure.paths.net.layer import NetworkLayer
from harness.measure.paths.net.packet_layer import PacketLayer
from harness.measure.server_process import PROJECT_ROOT, bind_listener, stop_process

STAMP = struct.Struct("=IQ")


# --- the stamping server (its own process) --------------------------------------------------


async def _stamp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    count, rate = (float(x) for x in (await reader.readline()).split())
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k in range(int(count)):
        delay = start + k / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(STAMP.pack(k, time.perf_counter_ns()))
    await writer.drain()
    writer.close()


async def _serve(fd: int) -> None:
    server = await asyncio.start_server(_stamp, sock=socket.socket(fileno=fd))
    async with server:
        await server.serve_forever()


# --- the client -------------------------------------------------------------------------------


async def _read_stream(host: str, port: int, count: int, rate: float) -> list[float]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(f"{count} {rate}\n".encode())
    delays: list[float] = []
    buffer = b""
    while len(delays) < count:
        chunk = await reader.read(65536)
        if not chunk:
            break
        now = time.perf_counter_ns()
        buffer += chunk
        whole = len(buffer) - len(buffer) % STAMP.size
        for offset in range(0, whole, STAMP.size):
            delays.append((now - STAMP.unpack_from(buffer, offset)[1]) / 1e6)
        buffer = buffer[whole:]
    writer.close()
    return delays


async def _load(host: str, port: int, streams: int, rate: float, seconds: float) -> list[float]:
    count = int(rate * seconds)
    results = await asyncio.gather(*(_read_stream(host, port, count, rate) for _ in range(streams)))
    return [d for stream in results for d in stream]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _helpers(layer: NetworkLayer | PacketLayer) -> tuple[list[int], dict[str, Any] | None]:
    """The PIDs of the processes the layer runs, and the statistics of the one that holds
    data (the relay on `relay:`, the forwarder on `net:`)."""
    figures = layer.parameters()
    if isinstance(layer, PacketLayer):
        return [figures["forwarder_pid"], figures["relay_pid"]], figures.get("forwarder_stats")
    return [figures["relay_pid"]], figures.get("relay_stats")


def _lateness(stats: dict[str, Any] | None, q: str) -> float | None:
    """The relay's lateness figure, or the worse of the forwarder's two directions."""
    if stats is None:
        return None
    if "up" in stats:
        values = [stats[d][f"lateness_ms_{q}"] for d in ("up", "down")]
        return max((v for v in values if v is not None), default=None)
    value: float | None = stats.get(f"lateness_ms_{q}")
    return value


def measure(
    path: str | None, server_port: int, streams: int, rate: float, seconds: float, work: Path
) -> dict[str, Any]:
    """One load through `path` (None: straight to the server)."""
    upstream = Endpoint(f"http://127.0.0.1:{server_port}")
    with contextlib.ExitStack() as stack:
        helpers: list[psutil.Process] = []
        expected_ms = 0.0
        layer: NetworkLayer | PacketLayer | None = None
        if path is None:
            host, port = "127.0.0.1", server_port
        else:
            (made,) = parse_path(path).layers
            if not isinstance(made, (NetworkLayer, PacketLayer)):
                raise ScenarioError(f"{path}: not a net: or relay: layer")
            layer = made
            endpoint = stack.enter_context(layer.open(upstream, work / path.replace(":", "-")))
            netloc = endpoint.base_url.split("//", 1)[1]
            host, _, port_text = netloc.rpartition(":")
            port = int(port_text)
            expected_ms = layer.spec.delay_s * 1e3
            helpers = [psutil.Process(pid) for pid in _helpers(layer)[0]]
        cpu_before = sum(sum(p.cpu_times()[:2]) for p in helpers)
        delays = asyncio.run(_load(host, port, streams, rate, seconds))
        cpu = sum(sum(p.cpu_times()[:2]) for p in helpers) - cpu_before if helpers else None
        stats = _helpers(layer)[1] if layer is not None else None
    beyond = [d - expected_ms for d in delays]
    return {
        "path": path or "direct",
        "messages": len(delays),
        "expected": streams * int(rate * seconds),
        "beyond_ms_p50": _pct(beyond, 0.5),
        "beyond_ms_p99": _pct(beyond, 0.99),
        "beyond_ms_max": max(beyond),
        "relay_cpu_s": cpu,
        "relay_cpu_us_per_msg": None if cpu is None else cpu / max(1, len(delays)) * 1e6,
        "relay_lateness_ms_p50": _lateness(stats, "p50"),
        "relay_lateness_ms_p99": _lateness(stats, "p99"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.measure.paths.net.relay_cost")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rate", type=float, default=300.0, help="messages per second each")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--paths",
        default="relay:rtt=0;relay:rtt=40ms;net:rtt=0;net:rtt=40ms",
        help="relay: and net: layers, ; between",
    )
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)  # the server's role
    args = parser.parse_args(argv)
    if args.serve_fd is not None:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args.serve_fd))
        return 0
    sock = bind_listener("127.0.0.1", 0)
    port = sock.getsockname()[1]
    with sock:
        server = subprocess.Popen(
            [sys.executable, "-m", __spec__.name, "--serve-fd", str(sock.fileno())],
            pass_fds=(sock.fileno(),),
            cwd=PROJECT_ROOT,
        )
    try:
        with tempfile.TemporaryDirectory(prefix="relay-cost-") as tmp:
            paths = [None, *(p for p in args.paths.split(";") if p)]
            print(
                f"{args.streams} streams x {args.rate:g} messages/s x {args.seconds:g} s "
                "(delays beyond the configured one-way delay, ms)"
            )
            print(
                f"{'path':<18}{'msgs':>8}{'p50':>9}{'p99':>9}{'max':>9}"
                f"{'helpers CPU s':>14}{'us/msg':>9}{'late p50':>10}{'late p99':>10}"
            )
            for path in paths:
                row = measure(path, port, args.streams, args.rate, args.seconds, Path(tmp))

                def fmt(value: float | None, spec: str) -> str:
                    return "-" if value is None else format(value, spec)

                print(
                    f"{row['path']:<18}{row['messages']:>8}{row['beyond_ms_p50']:>9.3f}"
                    f"{row['beyond_ms_p99']:>9.3f}{row['beyond_ms_max']:>9.2f}"
                    f"{fmt(row['relay_cpu_s'], '.2f'):>14}"
                    f"{fmt(row['relay_cpu_us_per_msg'], '.1f'):>9}"
                    f"{fmt(row['relay_lateness_ms_p50'], '.3f'):>10}"
                    f"{fmt(row['relay_lateness_ms_p99'], '.3f'):>10}"
                )
    finally:
        stop_process(server, 5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
