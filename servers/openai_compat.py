"""`POST /v1/chat/completions`: the server's own source behind the OpenAI chat API, so any
OpenAI client (the real `openai` package included) can use the mock as a stand-in model.

Streaming answers are `data: {chat.completion.chunk}` events ending in `data: [DONE]` (no
`id:` fields, as OpenAI sends them), with a usage chunk when `stream_options.include_usage`
is set; otherwise one `chat.completion` object. The request's `seed` selects the mock's
text and timing; without one, the prompt's CRC-32 does, so a prompt always gets the same
answer. The header `x-tokenwire-stream-id` names the stream (its timeline is then at
`/v1/streams/{id}/timeline`), which lets a relay in front be checked from this side.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from errors import ProtocolError, RequestRefused
from servers.exchange import Answer, Call, Route, json_answer
from servers.generation import Generation
from servers.push_response import answer_response
from servers.request_parsing import call_body, parse_generation_request, read_body
from servers.sources.live import STREAM_ID_HEADER
from servers.state import ServerState, start_generation, state_of
from servers.streaming import framed_batches, push_answer
from wire.framing import OPENAI
from wire.messages import STREAM_ID, loads
from wire.sse import KEEP_ALIVE, MEDIA_TYPE, encode_event

router = APIRouter(tags=["openai"])


@dataclass(frozen=True, slots=True)
class ChatCall:
    state: ServerState
    gen: Generation
    stream: bool
    include_usage: bool
    model: str


def _prompt(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise RequestRefused(400, "messages must be a non-empty list")
    last = messages[-1]
    content = last.get("content") if isinstance(last, dict) else None
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        if any(not isinstance(p.get("text"), str) for p in parts):
            raise RequestRefused(400, "a text content part needs a string `text`")
        content = "".join(p["text"] for p in parts)
    if not isinstance(content, str):
        raise RequestRefused(400, "the last message needs string content")
    return content


def positive_int(body: dict[str, Any], *names: str) -> int | None:
    """The first of `names` the body gives, a positive integer (400 otherwise)."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RequestRefused(400, f"{name} must be a positive integer")
        return value
    return None


async def open_chat(request: Request) -> ChatCall:
    """FastAPI dependency: the chat call the request makes."""
    raw = await read_body(request)
    return chat_call(state_of(request), raw, request.headers.get(STREAM_ID_HEADER))


def request_object(raw: bytes) -> dict[str, Any]:
    """An OpenAI-style request body: a JSON object (400 otherwise)."""
    try:
        body = loads(raw)
    except ProtocolError as exc:
        raise RequestRefused(400, str(exc)) from exc
    if not isinstance(body, dict):
        raise RequestRefused(400, "request body must be a JSON object")
    return body


def seed_and_model(
    state: ServerState, body: dict[str, Any], stream_id: str | None, seed_of: str
) -> tuple[int, str]:
    """The request's seed (given; else the CRC-32 of `seed_of`, so the same request gets the
    same answer) and model, checked, with the stream id its header names (400 otherwise)."""
    seed = body.get("seed")
    if seed is None:
        seed = zlib.crc32(seed_of.encode())
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RequestRefused(400, "seed must be an integer")
    if stream_id is not None and not STREAM_ID.fullmatch(stream_id):
        raise RequestRefused(
            400, f"{STREAM_ID_HEADER} must be 1-64 characters from A-Z a-z 0-9 _ -"
        )
    model = body.get("model") or state.source.model
    if not isinstance(model, str) or len(model) > state.settings.max_model_name_chars:
        raise RequestRefused(
            400,
            f"model must be a string of at most max_model_name_chars "
            f"({state.settings.max_model_name_chars}) characters",
        )
    return seed, model


def chat_call(state: ServerState, raw: bytes, stream_id: str | None) -> ChatCall:
    body = request_object(raw)
    prompt = _prompt(body.get("messages"))
    seed, model = seed_and_model(state, body, stream_id, prompt)
    options = body.get("stream_options") or {}
    fields = {
        "seed": seed,  # validated with the other fields: 0 to MAX_SEED, 400 otherwise
        "max_tokens": positive_int(body, "max_completion_tokens", "max_tokens"),
        "prompt": prompt,
        "stream_id": stream_id,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    generation_request = parse_generation_request(given, state.settings)
    return ChatCall(
        state=state,
        gen=start_generation(state, generation_request),
        stream=bool(body.get("stream")),
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        model=model,
    )


async def events(call: ChatCall) -> AsyncGenerator[bytes, None]:
    """The chunks as SSE events (`wire.sse.encode_event`); the usage chunk only when the
    request asked for it."""
    beat = call.state.settings.heartbeat_s
    stream = framed_batches(call.gen, OPENAI, call.model, heartbeat_s=beat)
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            if not batch:
                yield KEEP_ALIVE
            for m in batch:  # a body chunk each: the bytes on the wire never depend on timing
                if call.include_usage or not (m.index is None and '"usage"' in m.payload):
                    yield encode_event(m.payload)


async def answer(call: ChatCall) -> Answer:
    if call.stream:
        return push_answer(events(call), MEDIA_TYPE, call.state.settings)
    gen = call.gen
    async for _ in gen.follow():
        pass
    if gen.error is not None:
        return json_answer({"error": {"message": gen.error, "type": "upstream_error"}}, 502)
    return json_answer(
        {
            "id": f"chatcmpl-{gen.id}",
            "object": "chat.completion",
            "created": 0,
            "model": call.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(gen.texts)},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 0,
                "completion_tokens": len(gen.texts),
                "total_tokens": len(gen.texts),
            },
        }
    )


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(call: Annotated[ChatCall, Depends(open_chat)]) -> Response:
    return answer_response(await answer(call))


async def _chat(call: Call) -> Answer:
    chat = chat_call(call.state, call_body(call), call.headers.get(STREAM_ID_HEADER.lower()))
    return await answer(chat)


ROUTES = (Route("POST", "/v1/chat/completions", _chat),)
