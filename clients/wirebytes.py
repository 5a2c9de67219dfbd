"""Exact bytes on the wire, read from the kernel's TCP_INFO counters of a socket.

`tcpi_bytes_acked` counts the payload bytes this side sent that the peer acknowledged and
`tcpi_bytes_received` the payload bytes received: everything above TCP (HTTP request lines,
headers, chunk framing, WebSocket frame headers, bodies), nothing below it (TCP/IP headers).
Linux only. A pooled connection serves one request at a time, so a request's bytes are the
counters' growth since the previous request on the same connection finished. The callback
receivers' accepted connections are charged the same way (`AcceptedCounters`).
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass, field

_TCP_INFO_SIZE = 232
_BYTES_OFFSET = 120  # tcpi_bytes_acked, then tcpi_bytes_received (both __u64), per linux/tcp.h
_BYTES = struct.Struct("=QQ")

ConnectionKey = tuple[int, object, object]
# The kernel counts the SYN's sequence number in tcpi_bytes_acked (a fresh connection reads
# (1, 0) before any data moves), so a connection's baseline is (1, 0), not (0, 0).
FRESH = (1, 0)


def tcp_counters(sock: socket.socket) -> tuple[int, int]:
    """(bytes sent and acknowledged, bytes received) so far on this TCP connection."""
    if not sys.platform.startswith("linux"):
        raise OSError("wire byte counts need Linux TCP_INFO counters")
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    if len(info) < _BYTES_OFFSET + _BYTES.size:
        raise OSError("this kernel's TCP_INFO has no byte counters (needs Linux >= 4.2)")
    acked, received = _BYTES.unpack_from(info, _BYTES_OFFSET)
    return acked, received


_RETRANS_OFFSET = 100  # tcpi_total_retrans (__u32), per linux/tcp.h
_DATA_SEGS_OUT_OFFSET = 156  # tcpi_data_segs_out (__u32, Linux >= 4.6)


def retransmissions(sock: socket.socket) -> tuple[int, int]:
    """(segments retransmitted, data segments sent, retransmissions included) so far on
    this TCP connection: the kernel's own count of what loss cost it."""
    if not sys.platform.startswith("linux"):
        raise OSError("retransmission counts need Linux TCP_INFO counters")
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    if len(info) < _DATA_SEGS_OUT_OFFSET + 4:
        raise OSError("this kernel's TCP_INFO has no segment counters (needs Linux >= 4.6)")
    (retrans,) = struct.unpack_from("=I", info, _RETRANS_OFFSET)
    (segs,) = struct.unpack_from("=I", info, _DATA_SEGS_OUT_OFFSET)
    return retrans, segs


def connection_bytes(sock: socket.socket) -> tuple[int, int]:
    """(sent, received) over the whole life of a connection (readable even after it closed)."""
    sent, received = tcp_counters(sock)
    return sent - FRESH[0], received - FRESH[1]


@dataclass
class ByteMeter:
    """Attributes each connection's counter growth to the request that just used it."""

    _seen: dict[ConnectionKey, tuple[int, int]] = field(default_factory=dict)
    _known: set[ConnectionKey] = field(default_factory=set)

    def is_new(self, sock: socket.socket) -> bool:
        """True the first time it is asked of a connection (its descriptor and addresses)."""
        key: ConnectionKey = (sock.fileno(), sock.getsockname(), sock.getpeername())
        if key in self._known:
            return False
        self._known.add(key)
        return True

    def charge(self, sock: socket.socket) -> tuple[int, int]:
        """Bytes (sent, received) on `sock` since this meter last looked at it."""
        key: ConnectionKey = (sock.fileno(), sock.getsockname(), sock.getpeername())
        sent, received = tcp_counters(sock)
        last_sent, last_received = self._seen.get(key, FRESH)
        if sent < last_sent or received < last_received:  # a new connection reused the key
            last_sent, last_received = FRESH
        self._seen[key] = (sent, received)
        return sent - last_sent, received - last_received


# An accepted connection's counters read (0, 0) before any data moves (the active side's
# read (1, 0): its SYN counts as acknowledged, `FRESH`). Not read at
# accept: by then the first request may already be in, and counted.
ACCEPTED_FRESH = (0, 0)


class AcceptedCounters:
    """An accepted connection's TCP_INFO counters, charged request by request."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        try:
            tcp_counters(sock)
            self.last: tuple[int, int] | None = ACCEPTED_FRESH
        except OSError:  # no TCP_INFO byte counters (not Linux): no wire bytes
            self.last = None

    def charge(self) -> tuple[int, int]:
        if self.last is None:
            return 0, 0
        try:
            now = tcp_counters(self.sock)
        except OSError:
            return 0, 0
        sent, received = now[0] - self.last[0], now[1] - self.last[1]
        self.last = now
        return sent, received
