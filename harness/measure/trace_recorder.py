"""`bench.py record`: stream prompts from a live OpenAI-compatible model and write a trace of
every content delta's text and arrival time (see `servers.sources.trace` for the format)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import openai
from openai.types.chat import ChatCompletionMessageParam

from errors import UpstreamUnavailable
from servers.sources.live import api_key_from_env, messages_for
from servers.sources.trace import TracedRequest, TracedToken, dump_trace


async def record_one(
    client: openai.AsyncOpenAI, model: str, prompt: str, seed: int, max_tokens: int
) -> TracedRequest:
    sent = time.perf_counter_ns()
    tokens: list[TracedToken] = []
    usage = None
    # the wire's plain dicts, which openai's TypedDicts describe
    messages = cast(list[ChatCompletionMessageParam], messages_for(prompt))
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=max_tokens,
        temperature=0.0,
        seed=seed,
    )
    async with stream:
        async for chunk in stream:
            now = time.perf_counter_ns()
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta is not None and choice.delta.content:
                    tokens.append(TracedToken(choice.delta.content, (now - sent) / 1e6))
    if not tokens:
        raise UpstreamUnavailable(f"the model returned no content for prompt {prompt[:40]!r}")
    return TracedRequest(prompt=prompt, tokens=tuple(tokens), usage=usage)


async def record(
    base_url: str,
    model: str,
    prompts: Sequence[str],
    max_tokens: int,
    on_done: Callable[[int], None] | None = None,
) -> list[TracedRequest]:
    """One request at a time, so each recorded rhythm is the model's alone."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key_from_env(), max_retries=0)
    traced = []
    try:
        for k, prompt in enumerate(prompts):
            try:
                traced.append(await record_one(client, model, prompt, k, max_tokens))
            except openai.APIError as exc:
                raise UpstreamUnavailable(f"recording prompt {k + 1} failed: {exc}") from None
            if on_done is not None:
                on_done(k)
    finally:
        await client.close()
    return traced


def write_trace(
    path: Path, base_url: str, model: str, max_tokens: int, traced: Sequence[TracedRequest]
) -> None:
    header = {
        "model": model,
        "endpoint": base_url,
        "max_tokens": max_tokens,
        "recorded_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "clock": "at_ms: content delta arrival minus request send, perf_counter_ns",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump_trace(header, traced))


def run_record(
    base_url: str, model: str, prompts: Sequence[str], max_tokens: int, out: Path
) -> list[TracedRequest]:
    traced = asyncio.run(record(base_url, model, prompts, max_tokens))
    write_trace(out, base_url, model, max_tokens, traced)
    return traced
