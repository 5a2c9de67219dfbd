"""A live model behind any OpenAI-compatible chat completions endpoint, streamed with the
official `openai` async client.

The API key comes from the environment only (`TOKENWIRE_API_KEY`, else `OPENAI_API_KEY`),
never from the command line, and is never written to results or logs. Role-only and empty
deltas are not tokens. When whoever reads this stream goes away, the generation task is
cancelled and the `async with` below closes the upstream HTTP response at once, so no
model keeps generating (and billing) for nobody.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import openai

from errors import UpstreamUnavailable
from servers.sources.mock import SourceItem, Usage
from wire.messages import GenerationRequest

API_KEY_VARIABLES = ("TOKENWIRE_API_KEY", "OPENAI_API_KEY")
NO_KEY = "no-key"  # local servers (llama.cpp, vLLM, Ollama) accept any key
STREAM_ID_HEADER = "x-tokenwire-stream-id"


def api_key_from_env() -> str:
    for name in API_KEY_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return NO_KEY


def messages_for(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt or "Say hello."}]


@dataclass
class OpenAISource:
    base_url: str
    model: str
    temperature: float | None = 0.0
    max_tokens: int | None = None  # default cap when the request sets none
    name: str = "openai"
    client: openai.AsyncOpenAI = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=api_key_from_env(), max_retries=0, timeout=300.0
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[SourceItem]:
        max_tokens = request.max_tokens or self.max_tokens
        headers = {STREAM_ID_HEADER: request.stream_id} if request.stream_id else {}
        try:
            stream = await self.client.chat.completions.create(
                model=self.model,
                messages=messages_for(request.prompt),  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                seed=request.seed,
                **({"max_tokens": max_tokens} if max_tokens else {}),
                **({"temperature": self.temperature} if self.temperature is not None else {}),
                extra_headers=headers,
            )
        except openai.APIError as exc:
            raise UpstreamUnavailable(f"upstream refused the request: {exc}") from exc
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                    yield Usage(chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        yield choice.delta.content
