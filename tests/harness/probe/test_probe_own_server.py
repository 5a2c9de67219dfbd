"""`bench.py probe` against tokenwire's own server: every push endpoint streams (exit 0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import bench
from harness.measure.server_process import ServerProcess, running_server
from servers.sources.spec import SourceSpec

# about 150 ms per stream: long enough that buffering would show, short enough to repeat
SPEC = SourceSpec(preset="chat", ttft_ms=20, tokens_per_s=200, tokens_per_response=30)
CHAT = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


@pytest.fixture(scope="module")
def tokenwire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("probe-server") / "server.log"
    with running_server(SPEC, Path(log)) as server:
        yield server


ENDPOINTS: list[tuple[str, str, dict | None, str, list[str]]] = [
    ("sse GET", "/v1/sse?seed=1", None, "sse", []),
    ("sse POST", "/v1/sse", {"seed": 2}, "sse", []),
    ("chunked json", "/v1/chunked", {"seed": 3}, "ndjson", []),
    ("chunked openai", "/v1/chunked?framing=openai", {"seed": 4}, "openai", []),
    ("websocket", "/v1/ws", {"seed": 5}, "websocket", []),
    # OpenAI's own shape: no id: lines, as OpenAI sends it, and so no warning for them
    ("chat completions", "/v1/chat/completions", CHAT, "openai", []),
]


@pytest.mark.parametrize(
    ("path", "data", "kind", "warnings"),
    [e[1:] for e in ENDPOINTS],
    ids=[e[0] for e in ENDPOINTS],
)
def test_tokenwire_endpoints_stream(
    capsys: pytest.CaptureFixture[str],
    tokenwire: ServerProcess,
    path: str,
    data: dict | None,
    kind: str,
    warnings: list[str],
) -> None:
    base = tokenwire.base_url
    url = base.replace("http://", "ws://") + path if kind == "websocket" else base + path
    args = ["probe", url, "--json", "--repeat", "2", "--timeout", "20"]
    if data is not None:
        args += ["--data", orjson.dumps(data).decode()]
    status = bench.main(args)
    report = orjson.loads(capsys.readouterr().out)
    assert (status, report["verdict"], report["problems"]) == (0, "streams", []), report
    assert report["kind"] == kind
    assert [w["code"] for w in report["warnings"]] == warnings
    assert report["events"] >= 10 and report["terminal"]
    assert report["events_per_read"] < 3 and report["tail_share"] < 0.5
    assert report["text"]


@pytest.mark.parametrize("path", ["nginx", "net:rtt=40ms"])
def test_probe_through_a_path_sees_the_endpoint_stream_behind_it(
    capsys: pytest.CaptureFixture[str], tokenwire: ServerProcess, path: str
) -> None:
    """`--path` starts the path in front of the URL's host: behind a default nginx or an
    emulated network the SSE endpoint still streams (nginx consumes the X-Accel-Buffering
    header, which the probe then warns is missing)."""
    url = tokenwire.base_url + "/v1/sse"
    status = bench.main(["probe", url, "--data", '{"seed": 6}', "--path", path, "--json"])
    report = orjson.loads(capsys.readouterr().out)
    assert (status, report["verdict"], report["problems"]) == (0, "streams", []), report
    assert report["events"] >= 10 and report["events_per_read"] < 3
    if path.startswith("net:"):
        assert report["ttft_ms"] >= 40  # one round trip at least
