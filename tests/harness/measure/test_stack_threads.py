"""Known answer: on a thread-per-request stack, every open SSE stream holds a thread, so with
4 threads and 8 streams in flight the streams beyond the fourth wait for a thread before
their first token; short polls borrow a thread for a moment, so none of them waits that
long. `bench.py run --stack flask@gunicorn --workers 1 --threads 4`, as a user runs it, at
concurrency 8 and (the unloaded value, the same streams) concurrency 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import bench

pytestmark = pytest.mark.slow

STACK = ("--stack", "flask@gunicorn", "--workers", "1", "--threads", "4")
ARGS = (*STACK, "--transports", "sse,short_poll", "--requests", "16", "--quiet")


def first_tokens_and_ends(folder: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Per transport, per stream: (TTFT, E2E) in ms, from the raw records."""
    results = json.loads((folder / "results.json").read_text())
    found: dict[str, dict[int, tuple[float, float]]] = {}
    for name, transport in results["transports"].items():
        assert transport["phase"]["stack"] == {
            "name": "flask@gunicorn",
            "http_versions": ["1.1"],
            "workers": 1,
            "threads": 4,
        }
        streams = {}
        for record in transport["phase"]["requests"]:
            assert record["error_kind"] is None, record["error_message"]
            first = next(i for i, size in enumerate(record["token_bytes"]) if size)
            ttft = (record["recv_ns"][first] - record["scheduled_ns"]) / 1e6
            streams[record["index"]] = (ttft, (record["end_ns"] - record["scheduled_ns"]) / 1e6)
        found[name] = streams
    return found


def test_sse_streams_wait_for_a_thread_and_short_polls_do_not(tmp_path: Path) -> None:
    for concurrency in ("8", "1"):
        ran = bench(
            "run", *ARGS, "--concurrency", concurrency, "--out", str(tmp_path / concurrency)
        )
        assert ran.returncode == 0, ran.stderr
    loaded = first_tokens_and_ends(tmp_path / "8")
    unloaded = first_tokens_and_ends(tmp_path / "1")
    for transport in ("sse", "short_poll"):
        assert len(loaded[transport]) == len(unloaded[transport]) == 16
    # one stream's E2E: the shortest of the unloaded streams
    shortest = min(e2e for _, e2e in unloaded["sse"].values())
    waited = [i for i, (ttft, _) in loaded["sse"].items() if ttft > shortest]
    assert len(waited) >= 4, (shortest, loaded["sse"])
    shortest_poll = min(e2e for _, e2e in unloaded["short_poll"].values())
    assert not [i for i, (ttft, _) in loaded["short_poll"].items() if ttft > shortest_poll]
