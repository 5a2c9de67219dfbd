"""A live model behind any OpenAI-compatible chat completions endpoint, streamed with httpx
and read by `wire.openai_stream`, the same pure reader `direct` uses (not the `openai`
client: it hides the raw bytes and `[DONE]`, so a body without SSE framing or a cut-off
answer would pass as a short, complete one).

Whatever makes an upstream's answer unusable fails the generation with an `UpstreamProblem`
whose code is `bench.py probe`'s (`wire.problems`): `http_status`, `connection_error`,
`timeout`, `stream_error`, `sse_framing` (bytes but no SSE event), `not_streaming` (an empty
body), `truncated` (no `finish_reason` and no `[DONE]`). Every transport then relays that
stream as failed, with the generation's error, instead of as a complete answer.

The API key comes from the environment only (`TOKENWIRE_API_KEY`, else `OPENAI_API_KEY`),
never from the command line, and is never written to results or logs. Role-only and empty
deltas are not tokens. When whoever reads this stream goes away, the generation task is
cancelled and the `async with` below closes the upstream HTTP response at once, so no
model keeps generating (and billing) for nobody.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import httpx

from errors import UpstreamProblem
from servers.sources.mock import SourceItem, Usage
from wire.messages import EndMsg, GenerationRequest, TokenMsg
from wire.openai_stream import CHAT_PATH, OpenAIStreamReader, chat_request, messages_for
from wire.problems import finding
from wire.sse import MEDIA_TYPE

API_KEY_VARIABLES = ("TOKENWIRE_API_KEY", "OPENAI_API_KEY")
NO_KEY = "no-key"  # local servers (llama.cpp, vLLM, Ollama) accept any key
STREAM_ID_HEADER = "x-tokenwire-stream-id"
TIMEOUT = httpx.Timeout(300.0, connect=10.0)
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)  # openai's own

__all__ = ["API_KEY_VARIABLES", "NO_KEY", "OpenAISource", "api_key_from_env", "messages_for"]


def api_key_from_env() -> str:
    for name in API_KEY_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    return NO_KEY


def upstream_headers() -> dict[str, str]:
    """The key as a bearer token; no compression, so bytes are read as they are sent."""
    return {
        "authorization": f"Bearer {api_key_from_env()}",
        "accept": MEDIA_TYPE,
        "accept-encoding": "identity",
    }


def problem(code: str, evidence: str) -> UpstreamProblem:
    """The failure `code` of `wire.problems`, with its summary and `evidence`."""
    rule = finding(code, evidence)
    return UpstreamProblem(rule.code, rule.message)


@dataclass
class OpenAISource:
    base_url: str
    model: str
    temperature: float | None = 0.0
    max_tokens: int | None = None  # default cap when the request sets none
    name: str = "openai"
    client: httpx.AsyncClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.client = httpx.AsyncClient(
            base_url=self.base_url, headers=upstream_headers(), timeout=TIMEOUT, limits=LIMITS
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[SourceItem, None]:
        body = chat_request(
            self.model,
            request.prompt,
            request.seed,
            request.max_tokens or self.max_tokens,
            self.temperature,
        )
        headers = {STREAM_ID_HEADER: request.stream_id} if request.stream_id else {}
        reader = OpenAIStreamReader()
        try:
            async with self.client.stream("POST", CHAT_PATH, json=body, headers=headers) as answer:
                if answer.status_code != 200:
                    text = " ".join((await answer.aread())[:300].decode(errors="replace").split())
                    raise problem("http_status", f"{answer.status_code}: {text}")
                async for data in answer.aiter_bytes():
                    for message in reader.feed(data):
                        if isinstance(message, TokenMsg):
                            yield message.text
                        elif isinstance(message, EndMsg) and message.error is not None:
                            raise problem("stream_error", message.error)
                reader.close()
        except httpx.TimeoutException as exc:
            raise problem("timeout", f"the upstream timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise problem("connection_error", f"{type(exc).__name__}: {exc}") from exc
        unusable = reader.problem()
        if unusable is not None:
            raise UpstreamProblem(unusable.code, unusable.message)
        if reader.usage_tokens is not None:
            yield Usage(reader.usage_tokens)
