"""Every transport delivers exactly the source's token sequence, over a real uvicorn server."""

from __future__ import annotations

import time

import pytest
from support import FAST_POLLS, TRANSPORT_NAMES, async_client, quic_ca

from clients.interface import ClientSettings
from harness.measure.server_process import ServerProcess
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire.messages import GenerationRequest

TRICKY = ("\r\n", "\u2028", "🎉", "東京", "data", "[DONE]", " Here")


def expected_texts(spec: SourceSpec, seed: int) -> tuple[str, ...]:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return source.plan(GenerationRequest(seed=seed)).texts


def test_the_corpus_stream_contains_the_tricky_tokens(corpus_spec: SourceSpec) -> None:
    joined = "".join(expected_texts(corpus_spec, 3))
    for piece in TRICKY:
        assert piece in joined


@pytest.mark.parametrize("framing", ["json", "openai"])
@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_transport_delivers_the_exact_sequence(
    server: ServerProcess, corpus_spec: SourceSpec, transport: str, framing: str
) -> None:
    settings = ClientSettings(
        base_url=server.base_url, framing=framing, knobs=FAST_POLLS, ca_file=quic_ca()
    )
    client = async_client(transport, settings)
    seed = 3
    stream_id = f"e2e-{transport}-{framing}"
    try:
        result = await client.stream(
            GenerationRequest(seed=seed, stream_id=stream_id), time.perf_counter_ns()
        )
    finally:
        await client.aclose()
    expected = expected_texts(corpus_spec, seed)
    assert result.error is None
    assert result.texts == list(expected)
    assert result.indices == list(range(len(expected)))
    assert result.end_ns is not None and result.end_ns >= result.recv_ns[-1]
    assert result.recv_ns == sorted(result.recv_ns)
    assert sum(result.chunk_sizes) == len(expected)
    assert result.bytes_received > sum(len(t.encode()) for t in expected)
    assert result.bytes_sent > 0
    assert 0 < result.header_bytes < result.bytes_sent + result.bytes_received
    if transport in ("sse", "chunked", "websocket", "webtransport"):
        assert result.requests == 1
    else:
        assert result.requests >= 2  # the creation request plus at least one poll
    assert result.stream_id == stream_id
