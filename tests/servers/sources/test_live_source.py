"""`OpenAISource` against a real OpenAI-compatible server (the mock's own endpoint): exact
text through every transport, upstream closed when the client leaves, the key kept secret."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import FAST_POLLS, TRANSPORT_NAMES, async_client, quic_ca, webtransport_args

from clients.interface import ClientSettings
from harness.measure.server_process import ServerProcess, running_server
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire.messages import GenerationRequest

ROOT = Path(__file__).resolve().parents[3]
SECRET = "sk-tokenwire-test-5ecret-do-not-log"


def relay_in_front_of(
    upstream: ServerProcess,
    model: str,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    *extra_args: str,
) -> Iterator[ServerProcess]:
    """A tokenwire server whose source is `upstream`'s OpenAI API, for a module's fixture."""
    spec = SourceSpec(kind="openai", base_url=f"{upstream.base_url}/v1", model=model)
    log = tmp_path_factory.mktemp(name) / "server.log"
    with running_server(spec, log, extra_args=(*webtransport_args(), *extra_args)) as process:
        yield process


@pytest.fixture(scope="module")
def relay(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A tokenwire server whose source is the upstream mock, reached with the openai client."""
    yield from relay_in_front_of(server, "upstream-mock", tmp_path_factory, "relay")


def expected(corpus_spec: SourceSpec, seed: int) -> list[str]:
    source = build_source(corpus_spec)
    assert isinstance(source, MockSource)
    return list(source.plan(GenerationRequest(seed=seed)).texts)


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
async def test_relayed_live_text_is_exact(
    relay: ServerProcess, corpus_spec: SourceSpec, transport: str
) -> None:
    settings = ClientSettings(base_url=relay.base_url, knobs=FAST_POLLS, ca_file=quic_ca())
    client = async_client(transport, settings)
    request = GenerationRequest(seed=21, prompt="tell me", stream_id=f"live-{transport}")
    try:
        result = await client.stream(request, time.perf_counter_ns())
    finally:
        await client.aclose()
    assert result.error is None
    assert "".join(result.texts) == "".join(expected(corpus_spec, 21))
    assert result.texts == expected(corpus_spec, 21)  # one content delta is one token here


@pytest.fixture(scope="module")
def slow_relay(
    impatient_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A relay in front of an upstream slow enough (20 tokens/s) to be left mid-stream, with
    no resume grace: a reader that leaves is gone for good."""
    yield from relay_in_front_of(
        impatient_server, "slow", tmp_path_factory, "slow-relay", "--resume-grace-s", "0"
    )


async def test_leaving_client_closes_the_upstream_within_100_ms(
    slow_relay: ServerProcess, impatient_server: ServerProcess
) -> None:
    stream_id = "leaves-early"
    async with httpx.AsyncClient(base_url=slow_relay.base_url, trust_env=False) as http:
        async with http.stream("POST", "/v1/sse", json={"stream_id": stream_id}) as response:
            async for _ in response.aiter_raw():
                break
        left_ns = time.perf_counter_ns()
    async with httpx.AsyncClient(base_url=impatient_server.base_url, trust_env=False) as upstream:
        timeline: dict[str, object] = {}
        for _ in range(40):
            timeline = (await upstream.get(f"/v1/streams/{stream_id}/timeline")).json()
            if timeline.get("done"):
                break
            await asyncio.sleep(0.025)
    assert timeline["done"] is True
    assert timeline["error"] == "cancelled: the client left"
    ended_ns = timeline["ended_ns"]
    assert isinstance(ended_ns, int)
    assert (ended_ns - left_ns) / 1e6 < 100  # the upstream generation stopped within 100 ms


def test_api_key_never_reaches_results_or_logs(server: ServerProcess, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OPENAI_API_KEY": SECRET}
    done = subprocess.run(
        [
            sys.executable, "bench.py", "run",
            "--source", "openai", "--base-url", f"{server.base_url}/v1", "--model", "m",
            "--transports", "sse,chunked", "--requests", "2", "--concurrency", "1",
            "--warmup", "0", "--max-tokens", "8", "--out", str(out),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"results.json", "server.log"} <= {p.name for p in written}
    for path in [*written, server.log_path]:
        assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in done.stdout + done.stderr
    results = (out / "results.json").read_text()
    assert '"direct"' in results  # a live run always measures the upstream directly too
