"""`direct`: the same prompts consumed straight from the live upstream with the `openai`
client, no tokenwire server in between. Reported beside the five transports, so the
relay's own cost shows as the difference.

Stamps are taken as the `openai` stream hands over each chunk (it parses SSE events from
the network reads itself), and bytes come from the upstream connection's TCP_INFO counters.
"""

from __future__ import annotations

import time

import openai

from clients.httpx_io import charge_bytes, exchange_head_bytes
from clients.interface import ClientSettings, StreamResult, failures_recorded
from clients.wirebytes import ByteMeter
from errors import (
    ConnectFailed,
    HTTPStatusFailed,
    StreamIncomplete,
    StreamTimedOut,
    TransportError,
)
from servers.sources.live import api_key_from_env, messages_for
from servers.sources.spec import SourceSpec
from transports import DIRECT
from wire.messages import GenerationRequest, TokenMsg

HTTP_LIBRARIES = ("httpx", "httpx2", "httpcore", "httpcore2")  # openai's, by version


def upstream_failure(exc: Exception) -> TransportError | None:
    """The error tree's name for what the `openai` client raised (a body read fails with
    the HTTP library's own error type); None for anything else, which is a bug."""
    if isinstance(exc, openai.APITimeoutError):
        return StreamTimedOut("the upstream timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ConnectFailed(f"cannot reach the upstream: {exc}")
    if isinstance(exc, openai.APIStatusError):
        return HTTPStatusFailed(f"upstream HTTP {exc.status_code}: {exc.message}")
    if isinstance(exc, openai.APIError) or type(exc).__module__.split(".")[0] in HTTP_LIBRARIES:
        return StreamIncomplete(f"upstream stream failed: {exc}")
    return None


class DirectClient:
    transport = DIRECT

    def __init__(self, settings: ClientSettings, source: SourceSpec) -> None:
        assert source.base_url and source.model
        self.source = source
        self.meter = ByteMeter()
        # openai's own HTTP client class (httpx, or its httpx2 fork in openai 3), pooled like
        # our clients and kept away from environment proxies.
        self.client = openai.AsyncOpenAI(
            base_url=source.base_url,
            api_key=api_key_from_env(),
            max_retries=0,
            timeout=settings.stream_timeout_s,
            http_client=openai.DefaultAsyncHttpxClient(trust_env=False),
        )

    async def stream(self, request: GenerationRequest, scheduled_ns: int) -> StreamResult:
        result = StreamResult.start(self.transport, request, scheduled_ns)
        with failures_recorded(result):
            await self._run(request, result)
        return result

    async def _run(self, request: GenerationRequest, result: StreamResult) -> None:
        max_tokens = request.max_tokens or self.source.max_tokens
        temperature = self.source.temperature
        try:
            stream = await self.client.chat.completions.create(
                model=str(self.source.model),
                messages=messages_for(request.prompt),  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
                seed=request.seed,
                **({"max_tokens": max_tokens} if max_tokens else {}),
                **({"temperature": temperature} if temperature is not None else {}),
            )
            result.requests += 1
            async with stream:
                try:
                    async for chunk in stream:
                        now = time.perf_counter_ns()
                        if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                            result.end_tokens = chunk.usage.completion_tokens
                        deltas = [c.delta.content for c in chunk.choices if c.delta is not None]
                        result.take([TokenMsg(i=None, text=d) for d in deltas if d], now)
                    result.end_ns = time.perf_counter_ns()
                finally:
                    result.header_bytes += exchange_head_bytes(stream.response)
                    charge_bytes(self.meter, result, stream.response)
        except Exception as exc:
            failure = upstream_failure(exc)
            if failure is None:
                raise
            raise failure from exc

    async def aclose(self) -> None:
        await self.client.close()
