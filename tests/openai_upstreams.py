"""Small OpenAI-compatible upstreams that misbehave on purpose, for `bench.py run --source
openai` tests: `POST /v1/chat/completions` answered with a hand-written stream of
`chat.completion.chunk` events by `probe_servers.ScriptedServer` (127.0.0.1, port 0, a
thread of its own), one connection per request.

    with ScriptedServer(upstream(Misbehaviour.TRUNCATED)) as server:
        bench("run", "--source", "openai", "--base-url", server.url("/v1"), ...)
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum

from probe_servers import CHUNKED, LAST_CHUNK, SSE_HEADERS, WORDS, Handler, Request, chunk, head

TOKENS = 12  # content deltas per answer
GAP_S = 0.01  # between two events of a streamed answer
BUFFER_S = 0.3  # a buffering upstream's wait before it sends the whole answer


class Misbehaviour(StrEnum):
    NONE = "none"  # a correct stream: role, content deltas, finish_reason, usage, [DONE]
    CONNECTION_CLOSE = "connection_close"  # correct, with `Connection: close`, then closes
    NO_DATA_PREFIX = "no_data_prefix"  # payloads and blank lines, but no `data:` field names
    TRUNCATED = "truncated"  # content deltas, then the body ends: no finish_reason, no [DONE]
    BUFFERED = "buffered"  # correct events, all sent at once after BUFFER_S


def _chunk(delta: dict[str, str], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return json.dumps(
        {
            "id": "chatcmpl-upstream",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [choice],
        }
    )


def _usage(tokens: int) -> str:
    usage = {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": tokens + 3}
    return json.dumps(
        {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 0,
         "model": "m", "choices": [], "usage": usage}
    )  # fmt: skip


def payloads(misbehaviour: Misbehaviour) -> list[str]:
    """The event payloads of one answer, in order."""
    tokens = [_chunk({"content": f" {WORDS[k % len(WORDS)]}"}) for k in range(TOKENS)]
    start = [_chunk({"role": "assistant", "content": ""})]
    if misbehaviour is Misbehaviour.TRUNCATED:
        return start + tokens
    return [*start, *tokens, _chunk({}, "stop"), _usage(TOKENS), "[DONE]"]


def events(misbehaviour: Misbehaviour) -> list[bytes]:
    prefix = "" if misbehaviour is Misbehaviour.NO_DATA_PREFIX else "data: "
    return [f"{prefix}{payload}\n\n".encode() for payload in payloads(misbehaviour)]


def upstream(misbehaviour: Misbehaviour) -> Handler:
    """A `ScriptedServer` handler: `POST .../chat/completions` answered as `misbehaviour`
    says; anything else is a 404."""

    async def handle(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.method != "POST" or not request.target.endswith("/chat/completions"):
            body = b'{"error": {"message": "no such route"}}'
            writer.write(head("404 Not Found", f"Content-Length: {len(body)}"))
            writer.write(body)
            return
        answer = events(misbehaviour)
        if misbehaviour is Misbehaviour.BUFFERED:
            await asyncio.sleep(BUFFER_S)
            body = b"".join(answer)
            writer.write(head("200 OK", *SSE_HEADERS, f"Content-Length: {len(body)}") + body)
            return
        close = ("Connection: close",) if misbehaviour is Misbehaviour.CONNECTION_CLOSE else ()
        writer.write(head("200 OK", *SSE_HEADERS, *close, CHUNKED))
        for event in answer:
            writer.write(chunk(event))
            await writer.drain()
            await asyncio.sleep(GAP_S)
        writer.write(LAST_CHUNK)

    return handle
