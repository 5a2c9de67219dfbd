"""TCP_INFO byte counting against an exchange of known size on a real loopback socket."""

from __future__ import annotations

import socket
import threading
import time

from clients.wirebytes import ByteMeter, connection_bytes, tcp_counters


def exchange(request: bytes, reply_size: int) -> tuple[socket.socket, threading.Thread]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for _ in range(2):
                got = 0
                while got < len(request):
                    got += len(conn.recv(65536))
                conn.sendall(b"r" * reply_size)
            conn.recv(1)
        listener.close()

    thread = threading.Thread(target=serve)
    thread.start()
    return socket.create_connection(listener.getsockname()), thread


def read_exactly(sock: socket.socket, size: int) -> None:
    got = 0
    while got < size:
        got += len(sock.recv(65536))


def test_meter_counts_each_request_exactly() -> None:
    sock, thread = exchange(b"q" * 777, 12345)
    meter = ByteMeter()
    with sock:
        assert connection_bytes(sock) == (0, 0)
        for _ in range(2):
            sock.sendall(b"q" * 777)
            read_exactly(sock, 12345)
            time.sleep(0.05)  # let the peer's ACK of our bytes arrive
            assert meter.charge(sock) == (777, 12345)
        assert tcp_counters(sock) == (1 + 2 * 777, 2 * 12345)  # the SYN counts once
        assert connection_bytes(sock) == (2 * 777, 2 * 12345)
    thread.join(5)
