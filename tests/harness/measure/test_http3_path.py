"""HTTP/3 and WebTransport through the packet emulator (`net:`): QUIC's datagrams cross the
emulated link to the server's UDP port, streams arrive whole under loss, and each stream
records the losses its connection saw while it was open. The connection's count of packets
that never came matches the forwarder's own count of what it dropped towards the client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import async_client

from clients import h3_io
from clients.interface import ClientSettings, StreamResult
from harness.measure.paths import Endpoint
from harness.measure.paths.certificate import clients_certificate
from harness.measure.paths.net.emulator import emulator_unavailable
from harness.measure.paths.net.namespace import EMULATOR_SUBNET
from harness.measure.paths.net.packet_layer import PacketLayer, packet_layer
from harness.measure.server_process import running_server
from servers.sources.spec import SourceSpec
from stacks import STACKS
from wire.messages import GenerationRequest

pytestmark = [
    pytest.mark.skipif(
        emulator_unavailable() is not None and not os.environ.get("CI"),
        reason=f"packet emulator: {emulator_unavailable()}",
    ),
    pytest.mark.timeout(180),
]

HTTP3 = next(s.name for s in STACKS if "3" in s.http_versions)
STREAMS, TOKENS = 4, 400


@contextlib.contextmanager
def through_loss(
    tmp_path: Path, webtransport: bool = False
) -> Iterator[tuple[PacketLayer, ClientSettings]]:
    """The HTTP/3 stack's server behind `net:rtt=20ms,loss=3%` (with `webtransport`: the
    default stack, answering WebTransport), and the clients' settings."""
    cert, key = clients_certificate(tmp_path / "cert")
    source = SourceSpec(preset="steady", tokens_per_s=200, tokens_per_response=TOKENS)
    args = (
        ("--webtransport-cert", str(cert), "--webtransport-key", str(key))
        if webtransport
        else ("--stack", HTTP3, "--http3-cert", str(cert), "--http3-key", str(key))
    )
    hosts = ("--allowed-host", str(EMULATOR_SUBNET))
    layer = packet_layer("rtt=20ms,loss=3%")
    assert isinstance(layer, PacketLayer)
    with (
        running_server(source, tmp_path / "server.log", extra_args=(*args, *hosts)) as server,
        layer.open(Endpoint(server.base_url, ca_file=cert), tmp_path / "path") as endpoint,
    ):
        yield (
            layer,
            ClientSettings(
                endpoint.base_url, http3=not webtransport, ca_file=str(cert), max_connections=4
            ),
        )


async def streamed(
    transport: str, settings: ClientSettings, count: int
) -> tuple[list[StreamResult], h3_io.LossTrace]:
    client = async_client(transport, settings)
    try:
        results = await asyncio.gather(
            *(
                client.stream(
                    GenerationRequest(
                        seed=k, max_tokens=TOKENS, stream_id=f"lossy-{transport}-{k}"
                    ),
                    time.perf_counter_ns(),
                )
                for k in range(count)
            )
        )
        h3 = client.http._transport
        assert isinstance(h3, h3_io.H3Transport) and h3.protocol is not None
        trace = h3.protocol.counters.trace
        assert trace is not None
        return list(results), trace
    finally:
        await client.aclose()


def test_http3_streams_arrive_whole_under_loss_and_count_what_was_lost(tmp_path: Path) -> None:
    with through_loss(tmp_path) as (layer, settings):
        results, trace = asyncio.run(streamed("sse", settings, STREAMS))
    for result in results:
        assert result.error is None and result.indices == list(range(TOKENS))
        assert result.http_version == "HTTP/3"
        assert result.packets_lost is not None and result.packets_lost > 0
    dropped = layer.forwarder_stats
    assert dropped is not None
    down = dropped["down"]["lost"]
    # the link's drops towards the client, less those of the handshake's packets, plus
    # the first packets that came before their keys could open them
    assert abs(trace.missing - down) <= max(5, down // 10), (trace.missing, down)
    # the client's own packets declared lost: no more than the link dropped upwards
    # (a lost bare ACK is never declared), give or take a probe timeout's (a busy machine's
    # late timer declares some that were not lost)
    up = dropped["up"]["lost"]
    assert trace.sent_lost <= up + max(3, up // 5), (trace.sent_lost, up)
    # the streams share the connection: each saw at most all of its losses
    assert max(r.packets_lost or 0 for r in results) <= trace.lost


def test_a_polled_stream_adds_up_the_losses_of_its_exchanges(tmp_path: Path) -> None:
    with through_loss(tmp_path) as (_, settings):
        results, trace = asyncio.run(streamed("long_poll", settings, 1))
    polled = results[0]
    assert polled.error is None and polled.indices == list(range(TOKENS))
    assert polled.requests > 1 and polled.http_version == "HTTP/3"
    assert polled.packets_lost is not None and 0 < polled.packets_lost <= trace.lost


def test_webtransport_streams_arrive_whole_under_loss_and_count_what_was_lost(
    tmp_path: Path,
) -> None:
    """A connection per stream: the streams' losses add up to what the link dropped."""

    async def streams(settings: ClientSettings) -> list[StreamResult]:
        client = async_client("webtransport", settings)
        try:
            return list(
                await asyncio.gather(
                    *(
                        client.stream(
                            GenerationRequest(seed=k, max_tokens=TOKENS, stream_id=f"wt-{k}"),
                            time.perf_counter_ns(),
                        )
                        for k in range(STREAMS)
                    )
                )
            )
        finally:
            await client.aclose()

    with through_loss(tmp_path, webtransport=True) as (layer, settings):
        results = asyncio.run(streams(settings))
    for result in results:
        assert result.error is None and result.indices == list(range(TOKENS))
        assert result.http_version == "HTTP/3" and result.connections == 1
        assert result.packets_lost is not None
    dropped = layer.forwarder_stats
    assert dropped is not None
    down, up = dropped["down"]["lost"], dropped["up"]["lost"]
    lost = sum(r.packets_lost or 0 for r in results)
    # every drop towards the clients is a gap one of them counts (less the handshakes'); of
    # the drops upwards, those the clients' recoveries declared (not their bare ACKs)
    assert down - max(5, down // 10) <= lost <= down + up + max(5, (down + up) // 10), (
        lost,
        down,
        up,
    )
