"""A live upstream's faults, named with `bench.py probe`'s codes (`wire.problems`) by the
relay's source and by `direct`, recorded per stream and shown in the run's output and
report: small misbehaving OpenAI-compatible upstreams (`openai_upstreams`) behind a real
`bench.py run --source openai`, and the two readers on their own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai_upstreams import TOKENS, Misbehaviour, upstream
from probe_servers import ScriptedServer
from support import bench

from clients.asyncio_io import AsyncStreamClient
from clients.direct import direct_exchange, direct_settings
from clients.interface import ClientSettings, StreamResult
from errors import UpstreamProblem
from servers.sources.live import OpenAISource
from servers.sources.spec import SourceSpec
from transports import DIRECT
from wire.messages import GenerationRequest

ERROR_PREFIX = "bench.py: error: "


# --- the relay's source and `direct`, each on its own -------------------------------------


async def relayed(base_url: str) -> tuple[list[str], UpstreamProblem | None]:
    """What `OpenAISource` yields for one request (its tokens), and the problem it raised."""
    source = OpenAISource(base_url, "m")
    texts: list[str] = []
    stream: AsyncIterator[Any] = source.stream(GenerationRequest(seed=1, prompt="hi"))
    try:
        async for item in stream:
            if isinstance(item, str):
                texts.append(item)
    except UpstreamProblem as exc:
        return texts, exc
    finally:
        await source.client.aclose()
    return texts, None


async def direct(base_url: str) -> StreamResult:
    spec = SourceSpec(kind="openai", base_url=base_url, model="m")
    settings = direct_settings(ClientSettings(base_url="http://unused.invalid"), spec)
    client = AsyncStreamClient(DIRECT, direct_exchange(spec), settings)
    try:
        return await client.stream(GenerationRequest(seed=1, prompt="hi"), time.perf_counter_ns())
    finally:
        await client.aclose()


FAILING = [
    (Misbehaviour.NO_DATA_PREFIX, "sse_framing", 0),
    (Misbehaviour.TRUNCATED, "truncated", TOKENS),
]


@pytest.mark.parametrize(("misbehaviour", "code", "tokens"), FAILING)
async def test_the_relay_source_fails_an_unusable_stream_with_its_code(
    misbehaviour: Misbehaviour, code: str, tokens: int
) -> None:
    with ScriptedServer(upstream(misbehaviour)) as server:
        texts, problem = await relayed(server.url("/v1"))
    assert len(texts) == tokens
    assert problem is not None and problem.code == code
    assert str(problem).startswith(f"{code}: ")


@pytest.mark.parametrize(
    "misbehaviour", [Misbehaviour.NONE, Misbehaviour.CONNECTION_CLOSE, Misbehaviour.BUFFERED]
)
async def test_the_relay_source_passes_a_usable_stream(misbehaviour: Misbehaviour) -> None:
    with ScriptedServer(upstream(misbehaviour)) as server:
        texts, problem = await relayed(server.url("/v1"))
    assert problem is None
    assert len(texts) == TOKENS


@pytest.mark.parametrize(("misbehaviour", "code", "tokens"), FAILING)
async def test_direct_fails_an_unusable_stream_with_its_code(
    misbehaviour: Misbehaviour, code: str, tokens: int
) -> None:
    with ScriptedServer(upstream(misbehaviour)) as server:
        result = await direct(server.url("/v1"))
    assert len(result.texts) == tokens
    assert result.error is not None and result.error.message.startswith(f"{code}: ")
    assert [(p["code"], p["severity"]) for p in result.problems] == [(code, "problem")]


async def test_direct_stamps_network_reads_and_warns_of_a_buffered_upstream() -> None:
    with ScriptedServer(upstream(Misbehaviour.BUFFERED)) as server:
        result = await direct(server.url("/v1"))
    assert result.error is None and len(result.texts) == TOKENS
    assert result.chunk_sizes == [TOKENS]  # one network read brought every token
    assert [(p["code"], p["severity"]) for p in result.problems] == [("buffered", "warning")]
    assert result.end_tokens == TOKENS  # the usage report


async def test_direct_counts_a_streamed_upstream_read_by_read() -> None:
    with ScriptedServer(upstream(Misbehaviour.CONNECTION_CLOSE)) as server:
        result = await direct(server.url("/v1"))
    assert result.error is None and result.problems == []
    assert len(result.texts) == TOKENS and result.end_ns is not None
    assert len(result.chunk_sizes) > TOKENS // 2  # events 10 ms apart: about one per read
    assert result.bytes_received > 0  # charged before the peer's close ended the connection
    request = server.requests[0]
    assert request.target == "/v1/chat/completions"
    body = orjson.loads(request.body)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "m" and body["messages"][0]["content"] == "hi"


# --- a real `bench.py run --source openai` against each upstream --------------------------


def run_live(misbehaviour: Misbehaviour, out: Path) -> Any:
    """`bench.py run --source openai` against an upstream that misbehaves so, into `out`."""
    with ScriptedServer(upstream(misbehaviour)) as server:
        return bench(
            "run", "--source", "openai", "--base-url", server.url("/v1"), "--model", "m",
            "--requests", "2", "--concurrency", "1", "--transports", "sse", "--warmup", "0",
            "--out", str(out),
        )  # fmt: skip


def records(out: Path) -> dict[str, list[dict[str, Any]]]:
    data = orjson.loads((out / "results.json").read_bytes())
    return {name: t["phase"]["requests"] for name, t in data["transports"].items()}


def codes(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["code"], p["severity"]) for p in record["problems"]]


@pytest.mark.slow
def test_run_against_an_upstream_that_closes_the_connection_completes(tmp_path: Path) -> None:
    """Regression: `Connection: close` after a complete stream crashed `direct` (it charged
    bytes on the socket the library had closed)."""
    done = run_live(Misbehaviour.CONNECTION_CLOSE, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    found = records(tmp_path)
    assert set(found) == {"sse", DIRECT}
    for name, requests in found.items():
        assert len(requests) == 2
        for record in requests:
            assert record["error_kind"] is None, (name, record["error_message"])
            assert len(record["token_index"]) == TOKENS and record["problems"] == []
    assert all(r["bytes_received"] > 0 for r in found[DIRECT])
    assert "upstream problems" not in done.stdout


@pytest.mark.slow
def test_run_against_an_upstream_without_data_prefixes_fails_naming_sse_framing(
    tmp_path: Path,
) -> None:
    done = run_live(Misbehaviour.NO_DATA_PREFIX, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"{ERROR_PREFIX}sse_framing: the live upstream produced no token")
    assert "(sse 2, direct 2)" in errors[0] and str(tmp_path) in errors[0]
    for requests in records(tmp_path).values():  # the run folder is written all the same
        for record in requests:
            assert record["token_index"] == [] and record["error_kind"] is not None
            assert codes(record) == [("sse_framing", "problem")]
    assert "problem  sse_framing" in done.stdout


@pytest.mark.slow
def test_run_against_a_truncating_upstream_reports_truncated(tmp_path: Path) -> None:
    done = run_live(Misbehaviour.TRUNCATED, tmp_path)
    assert done.returncode == 0, done.stderr
    found = records(tmp_path)
    for name, requests in found.items():
        for record in requests:
            assert len(record["token_index"]) == TOKENS  # the tokens that came, relayed
            assert codes(record) == [("truncated", "problem")], name
            assert record["end_ns"] is None  # a failed stream, not a complete one
    assert {r["error_kind"] for r in found["sse"]} == {"upstream"}  # the generation's error
    assert all("truncated" in r["error_message"] for r in found["sse"])
    assert {r["error_kind"] for r in found[DIRECT]} == {"incomplete"}
    assert "problem  truncated" in done.stdout
    assert "sse 2/2, direct 2/2 streams" in done.stdout
    assert "truncated" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_run_against_a_buffering_upstream_warns_buffered(tmp_path: Path) -> None:
    done = run_live(Misbehaviour.BUFFERED, tmp_path)
    assert done.returncode == 0, done.stderr
    found = records(tmp_path)
    for requests in found.values():
        assert all(r["error_kind"] is None for r in requests)
    assert all(codes(r) == [("buffered", "warning")] for r in found[DIRECT])
    assert all(r["chunk_sizes"] == [TOKENS] for r in found[DIRECT])  # per network read
    assert "warning  buffered" in done.stdout and "direct 2/2 streams" in done.stdout
    report = (tmp_path / "report.html").read_text()
    assert "Upstream problems" in report and "buffered" in report
