"""Transport failures end a stream with a recorded error kind instead of raising."""

from __future__ import annotations

import socket
import time

import pytest
from support import TRANSPORT_NAMES, async_client, quic_ca

from clients.interface import ClientSettings
from harness.measure.server_process import ServerProcess
from wire.messages import GenerationRequest


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens here once the socket closes


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_nothing_listening_is_a_connect_error(transport: str) -> None:
    client = async_client(transport, ClientSettings(base_url=f"http://127.0.0.1:{closed_port()}"))
    try:
        result = await client.stream(GenerationRequest(stream_id="x"), time.perf_counter_ns())
    finally:
        await client.aclose()
    assert result.error is not None and result.error.kind == "connect"
    assert result.texts == [] and result.end_ns is None


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_a_refused_request_is_recorded(server: ServerProcess, transport: str) -> None:
    client = async_client(transport, ClientSettings(base_url=server.base_url, ca_file=quic_ca()))
    first_request = GenerationRequest(seed=1, stream_id="taken-" + transport)
    # another request under the same id: never a reconnect (SSE rejoins a repeat of the same
    # request within the resume grace), always a conflict
    bad = GenerationRequest(seed=2, stream_id="taken-" + transport)
    try:
        first = await client.stream(first_request, time.perf_counter_ns())
        second = await client.stream(bad, time.perf_counter_ns())  # the id is now taken
    finally:
        await client.aclose()
    assert first.error is None
    assert second.error is not None
    assert second.error.kind in ("http_status", "protocol")
    assert "already exists" in second.error.message
