"""The relay's UDP side (`--udp`, on `net:`): datagrams that reach its port inside the
namespace go on to the upstream's UDP port of the same number on loopback, and the replies
come back to the client that sent them, as a NAT would. One flow per client address, each
with a socket of its own towards the upstream, forgotten after `FLOW_IDLE_S` with no
datagram. So UDP (QUIC) crosses the emulated link end to end, like TCP, with no impairment
here: the forwarder applies it. Standard library only, like the relay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

FLOW_IDLE_S = 120.0  # a flow with no datagram either way for this long is forgotten
MAX_FLOWS = 4096


@dataclass
class DatagramStats:
    flows: int = 0
    datagrams_up: int = 0
    datagrams_down: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    refused_datagrams: int = 0  # from a new client beyond MAX_FLOWS

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Upstream(asyncio.DatagramProtocol):
    """One client's socket towards the upstream: what it receives goes back to the client."""

    def __init__(self, splice: DatagramSplice, client: Any) -> None:
        self.splice = splice
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.active_at = splice.loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport (3.11)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.active_at = self.splice.loop.time()
        self.splice.stats.datagrams_down += 1
        self.splice.stats.bytes_down += len(data)
        if self.splice.transport is not None:
            self.splice.transport.sendto(data, self.client)


class DatagramSplice(asyncio.DatagramProtocol):
    """The listening side: a flow per client address, made on its first datagram."""

    def __init__(self, loop: asyncio.AbstractEventLoop, upstream: tuple[str, int]) -> None:
        self.loop = loop
        self.upstream = upstream
        self.stats = DatagramStats()
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Any, _Upstream] = {}
        self.pending: dict[Any, list[bytes]] = {}  # datagrams waiting for their flow's socket
        self.opening: set[asyncio.Task[None]] = set()  # kept until done (the loop's are weak)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the selector loop's datagram transport does not subclass DatagramTransport (3.11)
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.loop.call_later(FLOW_IDLE_S, self._expire)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.stats.datagrams_up += 1
        self.stats.bytes_up += len(data)
        flow = self.flows.get(addr)
        if flow is not None and flow.transport is not None:
            flow.active_at = self.loop.time()
            flow.transport.sendto(data)
        elif addr in self.pending:
            self.pending[addr].append(data)
        elif len(self.flows) + len(self.pending) >= MAX_FLOWS:
            self.stats.refused_datagrams += 1
        else:
            self.pending[addr] = [data]
            task = self.loop.create_task(self._open(addr))
            self.opening.add(task)
            task.add_done_callback(self.opening.discard)

    async def _open(self, addr: Any) -> None:
        try:
            _, flow = await self.loop.create_datagram_endpoint(
                lambda: _Upstream(self, addr), remote_addr=self.upstream
            )
        except OSError:
            self.pending.pop(addr, None)
            return
        assert flow.transport is not None
        if self.closed:  # opened after the relay began to stop
            flow.transport.close()
            return
        self.flows[addr] = flow
        self.stats.flows += 1
        for data in self.pending.pop(addr, []):
            flow.transport.sendto(data)

    def _expire(self) -> None:
        now = self.loop.time()
        for addr, flow in list(self.flows.items()):
            if now - flow.active_at > FLOW_IDLE_S and flow.transport is not None:
                flow.transport.close()
                del self.flows[addr]
        self.loop.call_later(FLOW_IDLE_S, self._expire)

    def close(self) -> None:
        self.closed = True
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        if self.transport is not None:
            self.transport.close()
