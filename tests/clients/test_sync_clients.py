"""The blocking clients (locust's) deliver exactly the source's token sequence, count the same
bytes as the async clients, and under gevent receive each token as it is emitted."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from support import BLOCKING_NAMES, FAST_POLLS, all_known, async_client, blocking_client

from clients.interface import ClientSettings, StreamResult
from harness.load.records import unpack
from harness.measure.run.timelines import fetch_timelines
from harness.measure.server_process import ServerProcess, start_server, stop_server
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire.messages import GenerationRequest

ROOT = Path(__file__).resolve().parents[2]
PUSH = ("sse", "chunked", "websocket")
# Slow enough that buffering would show: 16 tokens 40 ms apart.
PACED = SourceSpec(preset="chat", ttft_ms=50, tokens_per_s=25, tokens_per_response=16)


def expected_texts(spec: SourceSpec, seed: int) -> list[str]:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return list(source.plan(GenerationRequest(seed=seed)).texts)


def sync_stream(base_url: str, transport: str, framing: str, stream_id: str) -> StreamResult:
    settings = ClientSettings(base_url=base_url, framing=framing, knobs=FAST_POLLS)
    client = blocking_client(transport, settings)
    try:
        return client.stream(GenerationRequest(seed=3, stream_id=stream_id), time.perf_counter_ns())
    finally:
        client.close()


@pytest.mark.parametrize("transport", BLOCKING_NAMES)
def test_sync_transport_delivers_the_exact_sequence(
    server: ServerProcess, corpus_spec: SourceSpec, transport: str
) -> None:
    framings = ("json", "openai")
    with ThreadPoolExecutor(len(framings)) as pool:  # both framings at once: a faster test
        results = pool.map(
            lambda framing: sync_stream(
                server.base_url, transport, framing, f"sync-{transport}-{framing}"
            ),
            framings,
        )
    expected = expected_texts(corpus_spec, 3)
    for framing, result in zip(framings, results, strict=True):
        assert result.error is None, framing
        assert result.texts == expected, framing
        assert result.indices == list(range(len(expected)))
        assert result.end_ns is not None and result.end_ns >= result.recv_ns[-1]
        assert result.recv_ns == sorted(result.recv_ns)
        assert sum(result.chunk_sizes) == len(expected)
        assert result.bytes_received > sum(len(t.encode()) for t in expected)
        assert 0 < result.header_bytes < result.bytes_sent + result.bytes_received
        assert result.requests == 1 if transport in PUSH else result.requests >= 2
        assert result.stream_id == f"sync-{transport}-{framing}"


@pytest.mark.parametrize("transport", PUSH)
async def test_sync_and_async_clients_count_the_same_bytes(
    server: ServerProcess, transport: str
) -> None:
    client = async_client(transport, ClientSettings(base_url=server.base_url))
    request = GenerationRequest(seed=3, stream_id=f"bytes-a-{transport}")
    try:
        async_result, sync_result = await asyncio.gather(  # side by side: a faster test
            client.stream(request, time.perf_counter_ns()),
            asyncio.to_thread(
                sync_stream, server.base_url, transport, "json", f"bytes-s-{transport}"
            ),
        )
    finally:
        await client.aclose()
    assert sync_result.texts == async_result.texts
    for name in ("bytes_sent", "bytes_received", "header_bytes", "requests"):
        assert getattr(sync_result, name) == getattr(async_result, name), name


@pytest.fixture
def nobody_listening() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_refused_connection_is_a_connect_error(nobody_listening: str) -> None:
    for transport in BLOCKING_NAMES:
        result = sync_stream(nobody_listening, transport, "json", f"refused-{transport}")
        assert result.error is not None and result.error.kind == "connect", transport


@pytest.fixture(scope="module")
def paced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(PACED, tmp_path_factory.mktemp("paced") / "server.log")
    yield process
    stop_server(process)


def test_under_gevent_every_token_arrives_when_it_is_emitted(paced_server: ServerProcess) -> None:
    """Every transport's streams at once, each in a greenlet of one monkey-patched process:
    tokens must arrive spread over time as the server emits them (not buffered to the end of
    the response), with little added delay, and the streams must overlap (no greenlet blocks
    the others)."""
    done = subprocess.run(
        [sys.executable, "tests/clients/sync_under_gevent.py", paced_server.base_url, "5", "2"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    results = [unpack(packed)[1] for packed in orjson.loads(done.stdout)]
    timelines = asyncio.run(fetch_timelines(paced_server.base_url, [r.stream_id for r in results]))
    expected = expected_texts(PACED, 5)
    assert len(results) == 2 * len(BLOCKING_NAMES)
    for result in results:
        assert result.error is None, (result.stream_id, result.error)
        assert result.texts == expected, result.stream_id
        emit = timelines[result.stream_id].emit_ns
        assert all_known(emit), result.stream_id
        delays_ms = [
            (recv - emit[i]) / 1e6 for i, recv in zip(result.indices, result.recv_ns, strict=True)
        ]
        emit_span = emit[-1] - emit[0]
        recv_span = result.recv_ns[-1] - result.recv_ns[0]
        if result.transport == "short_poll":  # a poll every 20 ms picks up what is there
            assert max(delays_ms) < 20 + 50, result.stream_id
            continue
        assert recv_span > 0.8 * emit_span, (result.stream_id, recv_span, emit_span)
        assert statistics.median(delays_ms) < 10, (result.stream_id, delays_ms)
        assert max(delays_ms) < 100, (result.stream_id, delays_ms)
        if result.transport in PUSH:
            assert max(result.chunk_sizes) == 1, result.stream_id  # one read per token
    latest_start = max(r.recv_ns[0] for r in results)
    earliest_end = min(r.recv_ns[-1] for r in results)
    assert latest_start < earliest_end  # all streams were in flight together
