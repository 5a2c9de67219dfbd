"""flask@gunicorn for real: the Flask app under gunicorn's gthread worker sends the same
bytes as the bare ASGI app, and an open push stream holds one of its threads for its whole
life (with T threads, stream T+1 waits for one)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from websockets.asyncio.client import connect

from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec

THREADS = 2
SPEC = SourceSpec(preset="chat", ttft_ms=20, tokens_per_s=40)  # 40 tokens take about 1 s
FLASK = ("--stack", "flask@gunicorn", "--threads", str(THREADS))


@pytest.fixture(scope="module")
def flask_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("flask") / "server.log"
    with running_server(SPEC, log, extra_args=FLASK) as process:
        yield process


@pytest.fixture(scope="module")
def asgi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("asgi") / "server.log"
    with running_server(SPEC, log, extra_args=("--stack", "asgi@uvicorn")) as process:
        yield process


def sse_body(base_url: str, stream_id: str) -> httpx.Response:
    body = {"seed": 1, "max_tokens": 5, "stream_id": stream_id}
    return httpx.post(f"{base_url}/v1/sse", json=body, timeout=10, trust_env=False)


def test_sse_bytes_are_the_asgi_stacks(flask_server: ServerProcess, asgi_server: ServerProcess):
    ours, theirs = sse_body(flask_server.base_url, "same"), sse_body(asgi_server.base_url, "same")
    assert ours.status_code == theirs.status_code == 200
    assert ours.headers["content-type"] == theirs.headers["content-type"] == "text/event-stream"
    assert ours.content == theirs.content
    assert ours.content.startswith(b"data: ") and b'"done":true' in ours.content


def test_refusals_are_json(flask_server: ServerProcess):
    with httpx.Client(base_url=flask_server.base_url, trust_env=False) as client:
        assert client.get("/nope").json() == {"error": "Not Found"}
        assert client.post("/healthz").json() == {"error": "Method Not Allowed"}
        misdirected = client.get("/healthz", headers={"host": "evil.example"})
        assert misdirected.status_code == 421
        assert misdirected.headers["connection"] == "close"


def test_websocket_stream(flask_server: ServerProcess):
    async def session() -> list[str | bytes]:
        url = flask_server.base_url.replace("http://", "ws://") + "/v1/ws"
        async with connect(url, compression=None) as ws:
            await ws.send(json.dumps({"seed": 1, "max_tokens": 3}))
            return [message async for message in ws]

    messages = asyncio.run(session())
    assert len(messages) == 4 and '"done":true' in str(messages[-1])


def test_a_stream_past_the_threads_waits_for_one(flask_server: ServerProcess):
    """THREADS + 1 streams of about 1 s at once: THREADS start at once, the last one only
    when a stream before it has ended and given its thread back."""

    limits = httpx.Limits(max_connections=THREADS + 1)
    client = httpx.Client(base_url=flask_server.base_url, limits=limits, trust_env=False)

    def first_byte_s(k: int) -> tuple[float, float]:
        started = time.monotonic()
        body = {"seed": k, "max_tokens": 40}
        with client.stream("POST", "/v1/sse", json=body, timeout=30) as response:
            head = time.monotonic() - started  # gunicorn sends the head as the stream starts
            response.read()
            return head, time.monotonic() - started

    with client, ThreadPoolExecutor(THREADS + 1) as pool:
        timings = sorted(pool.map(first_byte_s, range(THREADS + 1)))
    heads = [head for head, _ in timings]
    shortest_stream = min(total for _, total in timings[:THREADS])
    assert max(heads[:THREADS]) < 0.3, timings
    print("(head s, total s):", [(round(h, 2), round(t, 2)) for h, t in timings])
    assert heads[THREADS] > 0.7 * shortest_stream > 0.5, timings
