"""The live interleaving order: every job once, neighbours never share a request."""

from __future__ import annotations

from itertools import pairwise

from harness.measure.run.jobs import Job, diagonal
from wire.messages import GenerationRequest

TRANSPORTS = ("short_poll", "long_poll", "sse", "chunked", "websocket", "direct")


def jobs(requests: int) -> list[list[Job]]:
    return [[Job(t, GenerationRequest(seed=k)) for k in range(requests)] for t in TRANSPORTS]


def test_every_job_runs_once_and_neighbours_differ() -> None:
    order = diagonal(jobs(8), seed=1)
    assert sorted((j.transport, j.request.seed) for j in order) == sorted(
        (t, k) for t in TRANSPORTS for k in range(8)
    )
    assert all(a.request.seed != b.request.seed for a, b in pairwise(order))


def test_request_k_runs_close_together_on_every_transport() -> None:
    order = diagonal(jobs(20), seed=3)
    for k in range(20):
        positions = [n for n, job in enumerate(order) if job.request.seed == k]
        assert max(positions) - min(positions) < len(TRANSPORTS) ** 2  # within T rounds


def test_positions_vary_between_rounds_and_repeat_per_seed() -> None:
    order = diagonal(jobs(12), seed=5)
    assert order == diagonal(jobs(12), seed=5)
    firsts = {order[n].transport for n in range(0, len(order), len(TRANSPORTS))}
    assert len(firsts) > 1  # no transport always goes first
