"""The `python` client kind: the asyncio driver (`clients/asyncio_io.py`) runs each
transport's exchange logic, one pooled client per shard.

With several servers (a `ServerGroup`), shard i speaks to server (i + offset) % N only, as
a `PinnedClient`, so every request of a stream, polls included, goes to the server that
holds it, and the stream's timeline is fetched from there (`stream_servers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clients.asyncio_io import AsyncStreamClient
from clients.interface import StreamClient, StreamResult, Turn
from harness.measure.run.kinds import ClientReport, ShardPlan
from harness.measure.run.window import Window
from wire.messages import GenerationRequest


class PinnedClient:
    """A shard's client pinned to one server (`server`, its index among the run's servers),
    noting each stream it ran, so that the stream's timeline is fetched from that server."""

    def __init__(self, client: StreamClient, server: int) -> None:
        self.client = client
        self.transport = client.transport
        self.server = server
        self.stream_ids: list[str] = []

    async def stream(
        self, request: GenerationRequest, scheduled_ns: int, turn: Turn | None = None
    ) -> StreamResult:
        self.stream_ids.append(request.stream_id or "")
        return await self.client.stream(request, scheduled_ns, turn)

    async def aclose(self) -> None:
        await self.client.aclose()


def stream_servers(shards: Mapping[str, Sequence[StreamClient]]) -> dict[str, int]:
    """The server (index) each stream of pinned shards went to. Streams of unpinned shards
    (one server, or `direct`) are not listed: they went to the first server, if any."""
    return {
        stream_id: client.server
        for pool in shards.values()
        for client in pool
        if isinstance(client, PinnedClient)
        for stream_id in client.stream_ids
    }


class PythonClients:
    """The `python` client kind (`harness.measure.run.kinds.ClientKind`)."""

    name = "python"
    many_processes = True

    def open(self, plan: ShardPlan) -> list[StreamClient]:
        """One `AsyncStreamClient` per shard; pinned to a server each when there are several."""
        logic = plan.registry.get(plan.transport).exchange
        if len(plan.settings) == 1:
            settings = plan.settings[0]
            return [AsyncStreamClient(plan.transport, logic, settings) for _ in range(plan.shards)]
        servers = [(plan.server_offset + k) % len(plan.settings) for k in range(plan.shards)]
        return [
            PinnedClient(AsyncStreamClient(plan.transport, logic, plan.settings[s]), s)
            for s in servers
        ]

    async def start(self, clients: Sequence[StreamClient]) -> None:
        """Nothing to start: the clients connect as their streams begin."""

    def report(self, clients: Sequence[StreamClient], window: Window) -> ClientReport:
        """The window's client CPU is the driver's own (or its client processes')."""
        return ClientReport(window.client_cpu_s)


PYTHON = PythonClients()
