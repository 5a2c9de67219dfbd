"""The mock speaks the OpenAI chat API: the real `openai` client streams from it."""

from __future__ import annotations

import openai
import pytest

from harness.measure.server_process import ServerProcess
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire.messages import GenerationRequest


def planned_text(spec: SourceSpec, seed: int, max_tokens: int | None = None) -> str:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return "".join(source.plan(GenerationRequest(seed=seed, max_tokens=max_tokens)).texts)


@pytest.fixture
def client(server: ServerProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)


async def test_streaming_gives_the_exact_text_and_usage(
    client: openai.AsyncOpenAI, corpus_spec: SourceSpec
) -> None:
    stream = await client.chat.completions.create(
        model="anything",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
        seed=11,
    )
    text, usage, roles, finish = "", None, [], []
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
        for choice in chunk.choices:
            text += choice.delta.content or ""
            roles += [choice.delta.role] if choice.delta.role else []
            finish += [choice.finish_reason] if choice.finish_reason else []
    expected = build_source(corpus_spec)
    assert isinstance(expected, MockSource)
    plan = expected.plan(GenerationRequest(seed=11))
    assert text == "".join(plan.texts)
    assert usage == len(plan.texts)
    assert roles == ["assistant"] and finish == ["stop"]


async def test_without_include_usage_no_usage_chunk(
    client: openai.AsyncOpenAI, corpus_spec: SourceSpec
) -> None:
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True, seed=2, max_tokens=9
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)
    assert text == planned_text(corpus_spec, 2, 9)


async def test_non_streaming_answer(client: openai.AsyncOpenAI, corpus_spec: SourceSpec) -> None:
    answer = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], seed=5, max_tokens=7
    )
    assert answer.choices[0].message.content == planned_text(corpus_spec, 5, 7)
    assert answer.usage is not None and answer.usage.completion_tokens == 7


async def test_the_prompt_picks_the_answer_when_no_seed(client: openai.AsyncOpenAI) -> None:
    async def ask(prompt: str) -> str | None:
        answer = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": prompt}], max_tokens=6
        )
        return answer.choices[0].message.content

    assert await ask("same prompt") == await ask("same prompt")


async def test_bad_chat_requests_are_4xx(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages must be a non-empty list"):
        await client.chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.BadRequestError, match="max_tokens must be a positive integer"):
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}], max_tokens=0
        )
