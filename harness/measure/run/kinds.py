"""Client kinds, as the driver sees them: who reads a phase's streams (`scenario.client`).

A `ClientKind` opens a transport's clients for a phase from a `ShardPlan`, readies them
before any measured window (`start`), and reports on them after the window (`report`: the
window's client CPU as the kind counts it, and its own figures for the phase's record). The
kinds are named in one registry, `harness.measure.run.client_kinds.CLIENT_KINDS`:

- `python`: the asyncio driver (`clients/asyncio_io.py`), one pooled client per shard
  (`harness.measure.run.python_clients`); its client CPU is the driver's own.
- `browser`: Chromium pages (`harness.measure.browser.client`); its client CPU is
  Chromium's, and its figures are the phase's `BrowserFigures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clients.interface import ClientSettings, StreamClient
from harness.measure.records import BrowserFigures
from harness.measure.run.window import Window
from transports import TransportRegistry


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """One transport's clients for a phase: `shards` pooled clients (each for at most
    `SHARD_SIZE` of the `concurrency` streams in flight), speaking to the servers whose
    settings are listed (one per server, in order: shard i speaks to server
    (i + `server_offset`) % N)."""

    transport: str
    settings: tuple[ClientSettings, ...]
    shards: int
    concurrency: int
    server_offset: int
    registry: TransportRegistry
    streams_per_page: int | None = None  # the browser client's pages (None: its default)


@dataclass(frozen=True, slots=True)
class ClientReport:
    """What a client kind tells of a measured window: the client CPU spent in it, as the
    kind counts it, and the kind's own figures (None: it has none)."""

    client_cpu_s: float
    browser: BrowserFigures | None = None


class ClientKind(Protocol):
    """Who reads a phase's streams: opens, readies and reports on its clients."""

    @property
    def name(self) -> str:
        """The kind's name in scenarios (`client`) and on the command line (`--client`)."""
        ...

    @property
    def many_processes(self) -> bool:
        """Whether its streams may run in several client processes (`client_processes`)."""
        ...

    def open(self, plan: ShardPlan) -> list[StreamClient]:
        """The transport's clients for the phase (the driver's workers spread over them);
        raises ScenarioError when this kind cannot run the plan."""
        ...

    async def start(self, clients: Sequence[StreamClient]) -> None:
        """Ready the phase's clients (every transport's) before the warm-up and the window."""
        ...

    def report(self, clients: Sequence[StreamClient], window: Window) -> ClientReport:
        """The phase's client CPU in `window` as this kind counts it, and its figures."""
        ...
