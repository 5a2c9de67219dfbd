"""A phase's clients, one per shard: their settings, how many, and which kind opens them.

Per transport, one pooled client per shard of at most `SHARD_SIZE` streams (httpcore slows
down with huge pools), opened by the scenario's client kind (`client_kinds.CLIENT_KINDS`).
With several servers the shards are a multiple of their number, so each server gets as
many. `direct` (the live upstream read straight, no transport) always runs on the asyncio
driver, whatever the client kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from clients.asyncio_io import AsyncStreamClient
from clients.direct import direct_exchange, direct_settings
from clients.interface import ClientSettings, StreamClient
from harness.measure.paths import Endpoint
from harness.measure.run.client_kinds import client_kind
from harness.measure.run.kinds import ShardPlan
from harness.measure.run.timelines import server_token
from harness.measure.scenario import Scenario
from harness.measure.scenario.http_versions import client_versions
from transports import DIRECT, TRANSPORTS, TransportRegistry

SHARD_SIZE = 50  # streams per pooled HTTP client: httpcore slows down with huge pools


def client_settings(
    scenario: Scenario, endpoint: Endpoint | str, max_connections: int
) -> ClientSettings:
    """The clients' settings for this scenario, speaking to `endpoint` (the server, or the
    outermost layer of the path in front of it)."""
    if isinstance(endpoint, str):
        endpoint = Endpoint(endpoint)
    http2, http3 = client_versions(scenario.http_version(), endpoint.http2)
    return ClientSettings(
        base_url=endpoint.base_url,
        http2=http2,
        http3=http3,
        ca_file=None if endpoint.ca_file is None else str(endpoint.ca_file),
        framing=scenario.framing,
        knobs=scenario.knobs,
        max_connections=max_connections,
        stream_timeout_s=scenario.stream_timeout_s,
        token=server_token(),
        drop_at_token=scenario.faults.drop_at_token,
        leave_at_token=scenario.faults.leave_at_token,
    )


def shard_count(concurrency: int, servers: int = 1) -> int:
    """Shards for `concurrency` streams: at most `SHARD_SIZE` streams each; with several
    servers a multiple of their number, so that each server gets as many (never more
    shards than streams)."""
    count = -(-concurrency // SHARD_SIZE)
    if servers > 1:
        count = min(concurrency, -(-count // servers) * servers)
    return count


def open_shards(
    transport: str,
    scenario: Scenario,
    endpoint: Endpoint | str | Sequence[Endpoint],
    transports: TransportRegistry = TRANSPORTS,
    concurrency: int | None = None,
    server_offset: int = 0,
) -> list[StreamClient]:
    """One pooled client per shard of `concurrency` streams (default: the scenario's). Given
    one endpoint per server (several), shard i speaks to server (i + `server_offset`) % N
    only, so that every request of a stream, polls included, goes to the server that holds
    it (client process c passes c: the shards that carry one stream more than others then
    fall on different servers)."""
    endpoints = [endpoint] if isinstance(endpoint, Endpoint | str) else list(endpoint)
    concurrency = scenario.concurrency if concurrency is None else concurrency
    count = shard_count(concurrency, len(endpoints))
    size = -(-concurrency // count)
    settings = tuple(client_settings(scenario, e, size) for e in endpoints)
    if transport == DIRECT:  # the upstream itself, through the same asyncio driver
        upstream = direct_settings(settings[0], scenario.source)
        logic = direct_exchange(scenario.source)
        return [AsyncStreamClient(DIRECT, logic, upstream) for _ in range(count)]
    plan = ShardPlan(
        transport,
        settings,
        count,
        concurrency,
        server_offset,
        transports,
        scenario.streams_per_page,
    )
    return client_kind(scenario.client).open(plan)
