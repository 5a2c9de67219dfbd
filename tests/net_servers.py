"""Tiny servers of our own on loopback (one thread per connection) and the client side of
the `relay:` and `net:` path tests: an echo, timestamped messages, a 1 MB blob; a layer
opened in front of one, and ping-pongs, stamped delays and downloads through it.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.measure.paths import Endpoint, parse_path

STAMP = struct.Struct("=IQ")  # sequence number, perf_counter_ns at send
MB = 1_000_000


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(100_000):
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)


class Stamps(socketserver.BaseRequestHandler):
    """On a request `count:gap_ms`, sends `count` stamped messages `gap_ms` apart."""

    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        count, gap_ms = (int(x) for x in sock.recv(64).decode().split(":"))
        for k in range(count):
            sock.sendall(STAMP.pack(k, time.perf_counter_ns()))
            time.sleep(gap_ms / 1e3)


class Blob(socketserver.BaseRequestHandler):
    """On any byte, sends 1 MB and closes."""

    def handle(self) -> None:
        sock = self.request
        if sock.recv(1):
            sock.sendall(b"x" * MB)
        sock.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def through(path: str, upstream_port: int, work_dir: Path) -> Iterator[tuple[str, int, Any]]:
    """(host, port) clients use through the `net:` layer `path`, and the layer."""
    layer = parse_path(path).layers[0]
    with layer.open(Endpoint(f"http://127.0.0.1:{upstream_port}"), work_dir) as endpoint:
        netloc = endpoint.base_url.split("//", 1)[1]
        host, _, port = netloc.rpartition(":")
        yield host.strip("[]"), int(port), layer


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def ping_pongs(sock: socket.socket, count: int) -> list[float]:
    """Round trips of 4 bytes, in ms."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        sock.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = sock.recv(16)
            assert chunk, "the relay closed the connection"
            got += chunk
        times.append((time.perf_counter() - start) * 1e3)
    return times


def stamped_delays(sock: socket.socket, count: int, gap_ms: int) -> list[tuple[int, float]]:
    """(sequence, arrival - send in ms) of every stamped message."""
    sock.sendall(f"{count}:{gap_ms}".encode())
    buffer, out = b"", list[tuple[int, float]]()
    while len(out) < count:
        chunk = sock.recv(4096)
        assert chunk, "the relay closed the connection"
        now = time.perf_counter_ns()
        buffer += chunk
        while len(buffer) >= STAMP.size:
            seq, sent = STAMP.unpack_from(buffer)
            buffer = buffer[STAMP.size :]
            out.append((seq, (now - sent) / 1e6))
    return out


def download(host: str, port: int) -> tuple[float, int]:
    """Seconds from asking to the last byte of the Blob server's 1 MB, and bytes received."""
    with connect(host, port) as sock:
        start = time.perf_counter()
        sock.sendall(b"g")
        received = 0
        for _ in range(100_000):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        return time.perf_counter() - start, received
