"""The framings people ship, over a real uvicorn server: every transport that can carry a
framing delivers exactly the source's text through the asyncio and the blocking clients;
`raw` pieces align to the source's tokens (`harness.measure.run.joining.join`); a failed
generation reaches the client; impossible pairs are refused; JSON lines survive httpx's
`iter_lines`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from openai_upstreams import Misbehaviour, upstream
from probe_servers import ScriptedServer
from support import all_known, async_client, blocking_client, quic_ca, serve
from websockets.asyncio.client import connect

from clients.interface import ClientSettings, StreamResult
from harness.measure.run.joining import join
from harness.measure.run.timelines import fetch_timelines
from harness.measure.server_process import ServerProcess
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from transports import TRANSPORTS
from wire.framing import FRAMINGS, Framing
from wire.messages import GenerationRequest
from wire.raw import AS_SENT, AS_SSE_DATA, sse_form

SHIPPED = ("vercel-ui", "vercel-data", "langchain", "raw")
PAIRS = [(name, t) for name in SHIPPED for t in TRANSPORTS.carrying(FRAMINGS[name])]
SEED = 3


def expected_texts(spec: SourceSpec, seed: int) -> tuple[str, ...]:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return source.plan(GenerationRequest(seed=seed)).texts


async def stream_once(
    server: ServerProcess, transport: str, framing: str, stream_id: str
) -> StreamResult:
    settings = ClientSettings(base_url=server.base_url, framing=framing, ca_file=quic_ca())
    client = async_client(transport, settings)
    try:
        request = GenerationRequest(seed=SEED, stream_id=stream_id)
        return await client.stream(request, time.perf_counter_ns())
    finally:
        await client.aclose()


@pytest.mark.parametrize(("framing", "transport"), PAIRS)
async def test_every_carrier_delivers_the_source_text(
    server: ServerProcess, corpus_spec: SourceSpec, framing: str, transport: str
) -> None:
    stream_id = f"ship-{framing}-{transport}"
    result = await stream_once(server, transport, framing, stream_id)
    expected = list(expected_texts(corpus_spec, SEED))
    assert result.error is None, result.error
    assert result.end_ns is not None and result.requests == 1
    timeline = (await fetch_timelines(server.base_url, [stream_id]))[stream_id]
    record = join(0, SEED, result, timeline)
    assert record.token_index == list(range(len(expected)))  # nothing lost, nothing twice
    assert all_known(record.emit_ns)
    delays = [r - e for r, e in zip(record.recv_ns, record.emit_ns, strict=True)]
    assert min(delays) >= 0  # every token arrived after the server emitted it: one clock
    assert record.recv_ns == sorted(record.recv_ns)
    assert sum(record.chunk_sizes) == len(expected)
    if FRAMINGS[framing].boundaries:
        assert result.pieces is None and result.texts == expected
        assert record.text_mismatches == 0
    else:
        form = sse_form if transport == "sse" else str
        assert result.pieces == (AS_SSE_DATA if transport == "sse" else AS_SENT)
        assert "".join(result.texts) == "".join(form(t) for t in expected)
        # SSE data cannot carry CR: exactly the tokens holding one arrive changed
        assert record.text_mismatches == sum(form(t) != t for t in expected)


@pytest.mark.parametrize(("framing", "transport"), [("raw", "chunked"), ("vercel-data", "chunked")])
def test_the_blocking_client_reads_them_too(
    server: ServerProcess, corpus_spec: SourceSpec, framing: str, transport: str
) -> None:
    client = blocking_client(transport, ClientSettings(base_url=server.base_url, framing=framing))
    try:
        result = client.stream(
            GenerationRequest(seed=SEED, stream_id=f"ship-sync-{framing}"), time.perf_counter_ns()
        )
    finally:
        client.close()
    assert result.error is None
    assert "".join(result.texts) == "".join(expected_texts(corpus_spec, SEED))


# --- a failed generation ------------------------------------------------------------------


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A relay whose upstream stops mid-answer (no finish_reason, no [DONE]): every
    generation fails after its tokens (`truncated`)."""
    with ScriptedServer(upstream(Misbehaviour.TRUNCATED)) as scripted:
        spec = SourceSpec(kind="openai", base_url=scripted.url("/v1"), model="m")
        yield from serve(tmp_path_factory, "failing", spec)


@pytest.mark.parametrize(
    ("framing", "transport", "kind"),
    [
        ("raw", "chunked", "incomplete"),  # raw cannot say it: the body is cut short
        ("raw", "sse", "incomplete"),
        ("vercel-ui", "sse", "upstream"),
        ("vercel-data", "chunked", "upstream"),
        ("langchain", "websocket", "upstream"),
    ],
)
async def test_a_failed_generation_reaches_the_client(
    failing_server: ServerProcess, framing: str, transport: str, kind: str
) -> None:
    result = await stream_once(failing_server, transport, framing, f"fail-{framing}-{transport}")
    assert result.error is not None and result.error.kind == kind, result.error
    assert result.texts  # the tokens before the failure arrived
    if kind == "upstream":
        assert "truncated" in result.error.message
    assert (failing_server.log_path.read_text().count("Traceback")) == 0


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "framing"),
    [("/v1/chunked", "vercel-ui"), ("/v1/sse", "vercel-data"), ("/v1/chunked", "xml")],
)
async def test_an_impossible_pair_is_a_400(server: ServerProcess, path: str, framing: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        response = await http.post(path, params={"framing": framing}, json={"seed": 1})
    assert response.status_code == 400
    assert "framing" in response.json()["error"]


async def test_raw_over_websocket_is_refused(server: ServerProcess) -> None:
    async with connect(server.base_url.replace("http", "ws") + "/v1/ws") as ws:
        await ws.send(json.dumps({"seed": 1, "framing": "raw"}))
        refusal = json.loads(await ws.recv())
        await ws.wait_closed()
    assert refusal == {
        "error": "framing raw cannot travel over websocket; it travels over sse, chunked"
    }
    assert ws.close_code == 1008


# --- heads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "framing", "content_type", "vendor"),
    [
        ("/v1/sse", "vercel-ui", "text/event-stream", "x-vercel-ai-ui-message-stream"),
        ("/v1/chunked", "vercel-data", "text/plain; charset=utf-8", "x-vercel-ai-data-stream"),
        ("/v1/chunked", "raw", "text/plain; charset=utf-8", None),
        ("/v1/sse", "raw", "text/event-stream; charset=utf-8", None),
        ("/v1/chunked", "langchain", "application/x-ndjson", None),
    ],
)
async def test_response_heads(
    server: ServerProcess, path: str, framing: str, content_type: str, vendor: str | None
) -> None:
    async with (
        httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http,
        http.stream("POST", path, params={"framing": framing}, json={"max_tokens": 2}) as answer,
    ):
        await answer.aread()
    assert answer.headers["content-type"] == content_type
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-accel-buffering"] == "no"
    if vendor is not None:
        assert answer.headers[vendor] == "v1"


# --- JSON lines and httpx's iter_lines ----------------------------------------------------


@pytest.mark.parametrize("framing", ["json", "openai", "langchain", "vercel-data"])
async def test_httpx_iter_lines_reads_every_token(
    server: ServerProcess, corpus_spec: SourceSpec, framing: str
) -> None:
    """The corpus holds U+2028; httpx's `iter_lines` splits on it, so it must travel escaped."""
    codec = FRAMINGS[framing]
    body = {"seed": SEED, "stream_id": f"lines-{framing}"}
    async with (
        httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http,
        http.stream("POST", "/v1/chunked", params={"framing": framing}, json=body) as answer,
    ):
        lines = [line async for line in answer.aiter_lines()]
    if framing != "vercel-data":
        assert all(isinstance(json.loads(line), dict) for line in lines)
    texts = [m.text for m in map(codec.decode, lines) if hasattr(m, "text")]
    assert texts == list(expected_texts(corpus_spec, SEED))


def test_shipped_framings_decode_with_their_own_variant() -> None:
    """Clients decode with the base framing: a transport's variant changes encoding only."""
    for framing in FRAMINGS.values():
        for transport in TRANSPORTS.carrying(framing):
            variant: Framing = TRANSPORTS.framing_over(framing.name, transport)
            assert variant.decode is framing.decode
