"""A phase's jobs: the streams to run (request k of each transport), in their order and,
in an open loop, with the time each is due.

Request k uses source seed k (and prompt k) on every transport; warm-up streams use seeds
of their own (`WARMUP_SEED_BASE` + k), so they never repeat a measured one. A stream id is
`<run tag>-<transport>-<k>` (warm-ups: `...-w<k>`), unique within the run, so that the
server's timelines can be fetched by it afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from clients.interface import Turn
from errors import ScenarioError
from harness.measure.arrivals import arrival_offsets
from harness.measure.scenario import Scenario
from harness.measure.server_process import PROJECT_ROOT
from transports import DIRECT
from wire.messages import GenerationRequest

WARMUP_SEED_BASE = 1_000_000_000
DEFAULT_PROMPTS = PROJECT_ROOT / "scenarios" / "prompts.txt"


@dataclass(frozen=True, slots=True)
class Job:
    """One stream to run. A conversation's turns are consecutive jobs with a `turn` each;
    every turn but the first follows the previous one's end after `pause_s` (the tool)."""

    transport: str
    request: GenerationRequest
    at_s: float | None = None  # open loop: due this long after the window's start (None: closed)
    turn: Turn | None = None
    pause_s: float = 0.0


def job_units(jobs: Sequence[Job]) -> list[list[int]]:
    """The jobs' indices in units that one client runs in order: a conversation's turns
    together, any other job on its own."""
    units: list[list[int]] = []
    for k, job in enumerate(jobs):
        turn, previous = job.turn, jobs[k - 1].turn if k else None
        if turn and turn.index > 0 and previous and previous.conversation == turn.conversation:
            units[-1].append(k)
        else:
            units.append([k])
    return units


def measured_transports(scenario: Scenario) -> tuple[str, ...]:
    """The scenario's transports, and `direct` (the upstream read straight) for a live source."""
    return scenario.transports + ((DIRECT,) if scenario.source.live else ())


def load_prompts(scenario: Scenario) -> list[str]:
    """Live sources answer prompts: request k gets line k of the prompts file (cycling)."""
    if not scenario.source.live:
        return [""]
    path = Path(scenario.prompts) if scenario.prompts else DEFAULT_PROMPTS
    if not path.is_absolute() and not path.exists():
        path = PROJECT_ROOT / path
    try:
        prompts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ScenarioError(f"cannot read prompts file {path}: {exc.strerror or exc}") from None
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise ScenarioError(f"prompts file {path} holds no prompt")
    return prompts


def make_requests(
    scenario: Scenario, transport: str, run_tag: str, prompts: Sequence[str]
) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            seed=k,
            prompt=prompts[k % len(prompts)],
            max_tokens=scenario.source.max_tokens,
            stream_id=f"{run_tag}-{transport}-{k}",
        )
        for k in range(scenario.requests)
    ]


def warmup_requests(
    scenario: Scenario, transport: str, run_tag: str, prompts: Sequence[str]
) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            seed=WARMUP_SEED_BASE + k,
            prompt=prompts[k % len(prompts)],
            max_tokens=scenario.source.max_tokens,
            stream_id=f"{run_tag}-{transport}-w{k}",
        )
        for k in range(scenario.warmup)
    ]


def with_arrivals(jobs: Sequence[Job], rate: float, arrivals: str, seed: int) -> list[Job]:
    """The jobs, in order, due on an open-loop schedule of `rate` per second (`arrivals`:
    poisson or constant, seeded by `seed`); rate 0: the jobs as they are (closed loop)."""
    if rate <= 0:
        return list(jobs)
    offsets = arrival_offsets(len(jobs), rate, arrivals, seed)
    return [replace(job, at_s=at_s) for job, at_s in zip(jobs, offsets, strict=True)]


def diagonal(jobs: Sequence[Sequence[Job]], seed: int) -> list[Job]:
    """Interleave per-transport job lists for a live source.

    Transport j runs request k in round k + j, so each transport's request k runs close in
    time to every other's, yet no two neighbours share a request (a model server that reuses
    the previous prompt's cache would otherwise answer whichever transport came second far
    faster). Within a round the order is shuffled (seeded), because a model server's first
    token also depends on which request ran just before: measured on llama.cpp, a fixed
    order moved one transport's TTFT against `direct` by about 10 ms by position alone.
    """
    rng = random.Random(seed)
    order: list[Job] = []
    for r in range(max(len(j) for j in jobs) + len(jobs) - 1):
        round_jobs = [jobs[j][r - j] for j in range(len(jobs)) if 0 <= r - j < len(jobs[j])]
        rng.shuffle(round_jobs)
        if order and len(round_jobs) > 1 and round_jobs[0].request.seed == order[-1].request.seed:
            round_jobs.append(round_jobs.pop(0))  # never the same request twice in a row
        order += round_jobs
    return order
