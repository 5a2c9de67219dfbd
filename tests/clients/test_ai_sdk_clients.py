"""Real clients: the Vercel AI SDK's own code reads tokenwire's `vercel-ui` and
`vercel-data` streams and gets exactly the source's text (`tests/node/read.mjs`, with the
versions pinned in `tests/node/package.json`: `ai` 6.0.322 for the UI message stream,
`@ai-sdk/ui-utils` 1.2.11 for the data stream).

Runs wherever `node` is; skipped only when it is not. `tests/node/node_modules` comes from
`npm ci` (`.ci/run` does it; this module does it too when it is missing)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_upstreams import Misbehaviour, upstream
from probe_servers import ScriptedServer
from support import ROOT, serve

from harness.measure.server_process import ServerProcess
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire.messages import GenerationRequest
from wire.vercel import DONE, ui_end, ui_start

NODE = shutil.which("node")
NODE_DIR = ROOT / "tests" / "node"
pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the AI SDK clients run on Node.js (>= 18)"
)


@pytest.fixture(scope="module")
def sdk() -> Path:
    """tests/node with its packages installed (`npm ci`, from package-lock.json)."""
    if not (NODE_DIR / "node_modules" / "ai" / "package.json").exists():
        npm = shutil.which("npm")
        assert npm is not None, "node is here but npm is not: cannot install tests/node"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"npm ci in tests/node failed:\n{done.stderr[-2000:]}"
    return NODE_DIR


def read_with_sdk(
    sdk: Path, kind: str, url: str, body: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, "read.mjs", kind, url, json.dumps(body)],
        cwd=sdk,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def source_tokens(spec: SourceSpec, seed: int) -> tuple[str, ...]:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return source.plan(GenerationRequest(seed=seed)).texts


def ui_chunk_types() -> list[str]:
    """The types of the chunks around the text deltas, in the order tokenwire sends them."""
    lines = [*ui_start("", ""), *ui_end("", "", 0, None)]
    return [json.loads(line)["type"] for line in lines if line != DONE]


def expected_text(spec: SourceSpec, seed: int) -> str:
    return "".join(source_tokens(spec, seed))


@pytest.mark.parametrize("seed", [3, 11])
def test_read_ui_message_stream_rebuilds_the_source_text(
    sdk: Path, server: ServerProcess, corpus_spec: SourceSpec, seed: int
) -> None:
    url = f"{server.base_url}/v1/sse?framing=vercel-ui"
    done = read_with_sdk(sdk, "vercel-ui", url, {"seed": seed})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["text"] == expected_text(corpus_spec, seed)  # CRLF, U+2028, emoji included
    assert got["events"] == [*ui_chunk_types(), "text part done"]
    assert got["headers"]["content-type"] == "text/event-stream"
    assert got["headers"]["x-vercel-ai-ui-message-stream"] == "v1"
    assert got["headers"]["cache-control"] == "no-cache"
    assert got["headers"]["x-accel-buffering"] == "no"


@pytest.mark.parametrize("seed", [3, 11])
def test_process_data_stream_rebuilds_the_source_text(
    sdk: Path, server: ServerProcess, corpus_spec: SourceSpec, seed: int
) -> None:
    url = f"{server.base_url}/v1/chunked?framing=vercel-data"
    done = read_with_sdk(sdk, "vercel-data", url, {"seed": seed, "stream_id": f"sdk-data-{seed}"})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["text"] == expected_text(corpus_spec, seed)
    tokens = len(source_tokens(corpus_spec, seed))
    assert got["events"] == [
        f"start_step msg-sdk-data-{seed}",
        "finish_step stop",
        f"finish_message stop {tokens}",
    ]
    assert got["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert got["headers"]["x-vercel-ai-data-stream"] == "v1"


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ScriptedServer(upstream(Misbehaviour.TRUNCATED)) as scripted:
        spec = SourceSpec(kind="openai", base_url=scripted.url("/v1"), model="m")
        yield from serve(tmp_path_factory, "sdk-failing", spec)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("vercel-ui", "/v1/sse?framing=vercel-ui"),
        ("vercel-data", "/v1/chunked?framing=vercel-data"),
    ],
)
def test_the_sdk_sees_a_failed_generation(
    sdk: Path, failing_server: ServerProcess, kind: str, path: str
) -> None:
    done = read_with_sdk(sdk, kind, failing_server.base_url + path, {"seed": 1})
    assert done.returncode == 1
    assert "truncated" in done.stderr
