"""`POST /v1/responses`: the server's own source behind OpenAI's Responses API, so the real
`openai` client (`client.responses.create(...)`) can use the mock as a stand-in model whose
every turn ends in a tool call, as an agent loop's turns do.

Streaming answers are the `openai-responses` framing's events (`wire.openai_responses`) as
OpenAI sends them: `event: <type>` and `data: <event>` per event, no `id:` fields, no
`[DONE]`, keep-alive comments every `heartbeat_s` when set; the `done` events and
`response.completed` carry the whole text. Otherwise one `response` object (status
`completed`: the message, then the function call, then usage).

The request: `input` (a string, or a list of input items: messages whose `content` is a
string or text parts, `function_call_output` items, `function_call` items), `instructions`,
`model` (echoed), `max_output_tokens` (the source's max tokens), `stream`, `tools` (the
first function tool names the call; else `run_tool`), `previous_response_id` and `store`
(default true, as OpenAI's: the turn's conversation is kept for the next turn to continue,
`servers.state.kept_conversation`). The text of the last input item is the prompt; all the
input's text (instructions first) is the turn's context. `seed` (not an OpenAI field) picks
the mock's text and timing; without one, the CRC-32 of the previous response id and the
context does, so the same turn always gets the same answer. The header
`x-tokenwire-stream-id` names the stream, which is also the response's id. Other fields
are ignored. A refusal is 400 (404, 409 for `previous_response_id`), in OpenAI's error shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from errors import RequestRefused
from servers.exchange import Answer, Call, Route, json_answer
from servers.generation import Generation
from servers.openai_compat import positive_int, request_object, seed_and_model
from servers.push_response import answer_response
from servers.request_parsing import call_body, parse_generation_request, read_body
from servers.sources.live import STREAM_ID_HEADER
from servers.state import ServerState, start_generation, state_of
from servers.streaming import framed_batches, push_answer
from wire import openai_responses
from wire.framing import OPENAI_RESPONSES, Framing
from wire.sse import KEEP_ALIVE, MEDIA_TYPE, encode_event

PATH = "/v1/responses"
TEXT_PARTS = ("input_text", "output_text", "text")

router = APIRouter(tags=["openai"])


@dataclass(frozen=True, slots=True)
class ResponsesCall:
    state: ServerState
    gen: Generation
    stream: bool
    model: str
    tool: str  # the function the turn ends by calling


def _content_text(content: Any) -> str:
    """A message's content: a string, or parts whose text parts are joined (images and
    files carry no text)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestRefused(400, "a message's content must be a string or a list of parts")
    texts = []
    for part in content:
        if not isinstance(part, dict):
            raise RequestRefused(400, "a content part must be an object")
        if part.get("type", "input_text") in TEXT_PARTS:
            if not isinstance(part.get("text"), str):
                raise RequestRefused(400, "a text content part needs a string `text`")
            texts.append(part["text"])
    return "".join(texts)


def _item_text(item: Any) -> str | None:
    """The text one input item carries; None for an item that carries none."""
    if not isinstance(item, dict):
        raise RequestRefused(400, "each input item must be an object")
    kind = item.get("type", "message")
    if kind == "message":
        return _content_text(item.get("content"))
    if kind == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else _content_text(output)
    if kind == "function_call":
        return f"{item.get('name', '')}({item.get('arguments', '')})"
    return None


def input_texts(body: dict[str, Any]) -> list[str]:
    """The texts of the request's `input`, in order (instructions first)."""
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise RequestRefused(400, "instructions must be a string")
    given = body.get("input")
    if given is None and body.get("previous_response_id") is None:
        raise RequestRefused(400, "input is required: a string or a list of input items")
    if isinstance(given, str):
        texts = [given]
    elif isinstance(given, list) or given is None:
        texts = [t for t in map(_item_text, given or []) if t is not None]
    else:
        raise RequestRefused(400, "input must be a string or a list of input items")
    return [instructions, *texts] if instructions else texts


def tool_name(tools: Any) -> str:
    """The first function tool's name: the call every turn ends in."""
    if tools is None:
        return openai_responses.TOOL_NAME
    if not isinstance(tools, list):
        raise RequestRefused(400, "tools must be a list")
    for tool in tools:
        if isinstance(tool, dict) and tool.get("type") == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not 0 < len(name) <= 64:
                raise RequestRefused(400, "a function tool needs a name of 1-64 characters")
            return name
    return openai_responses.TOOL_NAME


async def open_responses(request: Request) -> ResponsesCall:
    """FastAPI dependency: the Responses call the request makes."""
    raw = await read_body(request)
    return responses_call(state_of(request), raw, request.headers.get(STREAM_ID_HEADER))


def responses_call(state: ServerState, raw: bytes, stream_id: str | None) -> ResponsesCall:
    body = request_object(raw)
    texts = input_texts(body)
    context = "\n".join(texts)
    previous = body.get("previous_response_id")
    seed, model = seed_and_model(state, body, stream_id, f"{previous or ''}\n{context}")
    tool = tool_name(body.get("tools"))
    fields = {
        "seed": seed,  # validated with the other fields: 0 to MAX_SEED, 400 otherwise
        "max_tokens": positive_int(body, "max_output_tokens"),
        "prompt": texts[-1] if texts else "",
        "stream_id": stream_id,
        "context": context,
        "previous_response_id": previous,
        "store": body.get("store", True),
    }
    given = {k: v for k, v in fields.items() if v is not None}
    generation_request = parse_generation_request(given, state.settings)
    return ResponsesCall(
        state=state,
        gen=start_generation(state, generation_request),
        stream=bool(body.get("stream")),
        model=model,
        tool=tool,
    )


def framing_of(call: ResponsesCall) -> Framing:
    """The `openai-responses` framing whose end carries this turn's whole text and tool."""
    gen, tool = call.gen, call.tool

    def end(stream_id: str, model: str, n: int, error: str | None) -> list[str]:
        text = "".join(gen.texts[:n])
        return openai_responses.end(stream_id, model, n, error, text=text, tool=tool)

    return replace(OPENAI_RESPONSES, encode_end=end)


async def events(call: ResponsesCall) -> AsyncGenerator[bytes, None]:
    """The events as SSE, each named by its type (`wire.sse.encode_event`)."""
    beat = call.state.settings.heartbeat_s
    stream = framed_batches(call.gen, framing_of(call), call.model, heartbeat_s=beat)
    name = openai_responses.event_type
    async with contextlib.aclosing(stream) as batches:
        async for batch in batches:
            if not batch:
                yield KEEP_ALIVE
            for m in batch:  # a body chunk each: the bytes on the wire never depend on timing
                yield encode_event(m.payload, event=name(m.payload))


async def answer(call: ResponsesCall) -> Answer:
    if call.stream:
        return push_answer(events(call), MEDIA_TYPE, call.state.settings)
    gen = call.gen
    async for _ in gen.follow():
        pass
    if gen.error is not None:
        return json_answer({"error": {"message": gen.error, "type": "upstream_error"}}, 502)
    n = len(gen.texts)
    output = openai_responses.completed_output(gen.id, n, "".join(gen.texts), call.tool)
    return json_answer(openai_responses.response_object(gen.id, call.model, "completed", output, n))


@router.post(PATH, response_model=None)
async def responses(call: Annotated[ResponsesCall, Depends(open_responses)]) -> Response:
    return answer_response(await answer(call))


async def _responses(call: Call) -> Answer:
    turn = responses_call(call.state, call_body(call), call.headers.get(STREAM_ID_HEADER.lower()))
    return await answer(turn)


ROUTES = (Route("POST", PATH, _responses),)
