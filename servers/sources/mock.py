"""Token sources: where tokens come from before any transport touches them.

A source turns a `GenerationRequest` into an async stream of token strings, paced like a
model. The server stamps each token with `time.perf_counter_ns()` as the source yields it
(see `servers.generation`), so sources never timestamp themselves.

`MockSource` draws everything from seeded distributions: request `seed` k produces the same
text and the same timing on every transport, which is what makes transports comparable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np

from errors import SourceSettingsError
from servers.sources.corpus import corpus_tokens
from wire.messages import GenerationRequest


@dataclass(frozen=True, slots=True)
class Usage:
    """A live model's own count of the tokens it generated (OpenAI `usage`)."""

    completion_tokens: int


SourceItem = str | Usage


class TokenSource(Protocol):
    """Anything that streams tokens for a request: one string per token (a live model's
    content delta), optionally followed by the model's `Usage` report."""

    # read-only, so that a frozen dataclass's fields (the mock's, a trace's) are members
    @property
    def name(self) -> str: ...
    @property
    def model(self) -> str: ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[SourceItem, None]: ...


@runtime_checkable
class PlannedSource(TokenSource, Protocol):
    """A source that knows in advance what it will stream (the mock, a replayed trace)."""

    def plan(self, request: GenerationRequest) -> Plan: ...


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    """A model's rhythm. Times are medians of log-normal distributions with the given sigma
    (sigma 0 means exactly the median every time)."""

    ttft_ms: float
    ttft_sigma: float
    tokens_per_s: float  # median decode rate; math.inf means no gap between tokens
    gap_sigma: float
    stall_probability: float  # chance that a gap is a stall (batching, preemption)
    stall_ms: float
    tokens_per_response: int
    length_sigma: float
    min_tokens: int = 1
    max_tokens: int = 4096

    def validate(self) -> None:
        problems = []
        if self.ttft_ms < 0:
            problems.append("ttft_ms must be >= 0")
        if not self.tokens_per_s > 0:
            problems.append("tokens_per_s must be > 0")
        if self.tokens_per_response < 1:
            problems.append("tokens_per_response must be >= 1")
        if not 0 <= self.stall_probability <= 1:
            problems.append("stall_probability must be within 0..1")
        if min(self.ttft_sigma, self.gap_sigma, self.length_sigma, self.stall_ms) < 0:
            problems.append("sigmas and stall_ms must be >= 0")
        if not 1 <= self.min_tokens <= self.max_tokens:
            problems.append("need 1 <= min_tokens <= max_tokens")
        if problems:
            raise SourceSettingsError("invalid latency profile: " + "; ".join(problems))


# Where the figures come from:
# - instant: no delay at all, so every microsecond measured is the transport's own.
# - chat: a hosted chat model of the GPT-4o-mini / Claude Haiku class, in the range public
#   leaderboards of API latency report: first token after ~0.35 s, ~80 output tokens/s;
#   ~100-token answers, kept short so benchmark runs stay quick. Gap jitter (sigma 0.35)
#   is about twice what the local trace shows (0.16), for network and batching jitter,
#   with rare stalls when a hosted server batches.
# - local: SmolLM2-135M-Instruct on llama.cpp, 1 thread, this 2-core machine, measured
#   from scenarios/traces/smollm2-135m.jsonl (8 prompts, 427 deltas): first token median
#   111 ms (log-sigma 0.27), gaps median 16.5 ms = 61 tokens/s (log-sigma 0.16, p99
#   24 ms, no stalls), answers mostly at the 64-token cap.
# - reasoning: a model that thinks before answering: a first token after ~4 s, then a
#   chat-like rhythm and longer answers.
# - steady: no jitter at all (a first token after 100 ms, then exactly 50 tokens/s, exactly
#   100 tokens): every stream demands the same, so a scale run's demand is known exactly.
PRESETS: dict[str, LatencyProfile] = {
    # LatencyProfile(ttft_ms, ttft_sigma, tokens_per_s, gap_sigma, stall_probability, stall_ms,
    #                tokens_per_response, length_sigma, min_tokens = 1, max_tokens = 4096)
    "instant": LatencyProfile(0, 0, math.inf, 0, 0, 0, 200, 0),
    "chat": LatencyProfile(350, 0.3, 80, 0.35, 0.01, 150, 100, 0.4, 20, 400),
    "local": LatencyProfile(111, 0.27, 61, 0.16, 0, 0, 64, 0.2, 14, 64),
    "reasoning": LatencyProfile(4000, 0.4, 60, 0.35, 0.01, 200, 250, 0.4, 40, 800),
    "steady": LatencyProfile(100, 0, 50, 0, 0, 0, 100, 0),
}


def profile_for(
    preset: str,
    ttft_ms: float | None = None,
    tokens_per_s: float | None = None,
    tokens_per_response: int | None = None,
) -> LatencyProfile:
    """A named preset with optional overrides; raises `SourceSettingsError` naming the choices."""
    try:
        profile = PRESETS[preset]
    except KeyError:
        raise SourceSettingsError(
            f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}"
        ) from None
    if ttft_ms is not None:
        profile = replace(profile, ttft_ms=ttft_ms)
    if tokens_per_s is not None:
        profile = replace(profile, tokens_per_s=tokens_per_s)
    if tokens_per_response is not None:
        profile = replace(
            profile,
            tokens_per_response=tokens_per_response,
            max_tokens=max(profile.max_tokens, tokens_per_response),
            min_tokens=min(profile.min_tokens, tokens_per_response),
        )
    profile.validate()
    return profile


@dataclass(frozen=True, slots=True)
class Plan:
    """Exactly what the mock will stream for one request: token texts and, per token,
    the delay after the previous one (the first delay is the time to first token)."""

    texts: tuple[str, ...]
    delays_ns: tuple[int, ...]


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    if sigma == 0:
        return np.full(size, median, dtype=float)
    return median * np.exp(rng.normal(0.0, sigma, size))


def make_plan(profile: LatencyProfile, run_seed: int, request: GenerationRequest) -> Plan:
    """Pure and deterministic: the same profile, run seed and request seed and max_tokens
    give the same plan (the mock ignores the prompt, so the cache never holds one)."""
    return _cached_plan(profile, run_seed, request.seed, request.max_tokens)


@lru_cache(maxsize=4096)
def _cached_plan(profile: LatencyProfile, run_seed: int, seed: int, max_tokens: int | None) -> Plan:
    """Cached, because a generation asks for its plan twice: once for its planned timeline,
    once to stream it."""
    rng = np.random.default_rng([run_seed, seed])
    n = round(float(_lognormal(rng, profile.tokens_per_response, profile.length_sigma, 1)[0]))
    n = min(max(n, profile.min_tokens), profile.max_tokens)
    if max_tokens is not None:
        n = min(n, max_tokens)
    vocabulary = corpus_tokens()
    start = rng.integers(len(vocabulary)).item()
    texts = tuple(vocabulary[(start + k) % len(vocabulary)] for k in range(n))

    ttft = _lognormal(rng, profile.ttft_ms, profile.ttft_sigma, 1)
    if math.isinf(profile.tokens_per_s):
        gaps = np.zeros(n - 1)
    else:
        gaps = _lognormal(rng, 1000.0 / profile.tokens_per_s, profile.gap_sigma, n - 1)
        stalls = rng.random(n - 1) < profile.stall_probability
        gaps = gaps + stalls * _lognormal(rng, profile.stall_ms, 0.3, n - 1)
    delays_ns = (np.concatenate([ttft, gaps]) * 1_000_000).astype(np.int64)  # truncated
    return Plan(texts=texts, delays_ns=tuple(delays_ns.tolist()))


async def replay_plan(plan: Plan, speed: float = 1.0) -> AsyncGenerator[SourceItem, None]:
    """Yield each token at its planned time (divided by `speed`), scheduled from the start
    so delays never drift."""
    start = time.perf_counter_ns()
    due = start
    for text, delay in zip(plan.texts, plan.delays_ns, strict=True):
        due += round(delay / speed)
        wait_ns = due - time.perf_counter_ns()
        # sleep(0) still yields to the event loop, so an instant source cannot starve senders.
        await asyncio.sleep(max(wait_ns, 0) / 1e9)
        yield text


@dataclass(frozen=True, slots=True)
class MockSource:
    """The embedded mock model: seeded text and timing from a `LatencyProfile`."""

    profile: LatencyProfile
    seed: int = 0
    name: str = "mock"
    model: str = "tokenwire-mock"

    def plan(self, request: GenerationRequest) -> Plan:
        return make_plan(self.profile, self.seed, request)

    def stream(self, request: GenerationRequest) -> AsyncGenerator[SourceItem, None]:
        return replay_plan(self.plan(request))
