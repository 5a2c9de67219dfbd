"""The mock speaks OpenAI's Responses API: the real `openai` client streams a turn from it
(`client.responses.create(..., stream=True)` and the SDK's strict `responses.stream()`
accumulator), byte-exact, ending in a tool call; the raw SSE is as OpenAI writes it."""

from __future__ import annotations

import json
import zlib

import httpx
import openai
import pytest
from openai.types.responses import (
    FunctionToolParam,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from harness.measure.server_process import ServerProcess
from servers.sources.mock import MockSource
from servers.sources.spec import SourceSpec, build_source
from wire.messages import GenerationRequest
from wire.sse import SSEStreamDecoder

LIFECYCLE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
ENDING = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


def planned_text(spec: SourceSpec, seed: int, max_tokens: int | None = None) -> str:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return "".join(source.plan(GenerationRequest(seed=seed, max_tokens=max_tokens)).texts)


def planned_tokens(spec: SourceSpec, seed: int) -> int:
    source = build_source(spec)
    assert isinstance(source, MockSource)
    return len(source.plan(GenerationRequest(seed=seed)).texts)


@pytest.fixture
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="x", max_retries=0)


def test_the_real_client_streams_the_exact_text_and_ends_in_a_tool_call(
    client: openai.OpenAI, corpus_spec: SourceSpec
) -> None:
    stream = client.responses.create(model="mock", input="hi", stream=True, extra_body={"seed": 11})
    events = list(stream)
    types = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert types == LIFECYCLE + ["response.output_text.delta"] * len(deltas) + ENDING
    text = "".join(e.delta for e in deltas)
    assert text == planned_text(corpus_spec, 11)  # byte for byte: the corpus's tricky tokens
    assert [e.sequence_number for e in events] == list(range(len(events)))
    first, final = events[0], events[-1]
    assert first.type == "response.created" and final.type == "response.completed"
    response = final.response
    assert response.status == "completed" and response.id == first.response.id
    assert response.usage is not None and response.usage.output_tokens == len(deltas)
    assert response.usage.output_tokens == planned_tokens(corpus_spec, 11)
    message, call = response.output
    assert message.type == "message" and message.content[0].type == "output_text"
    assert message.content[0].text == text
    assert response.output_text == text
    assert call.type == "function_call" and call.name == "run_tool"
    assert json.loads(call.arguments) == {"stream_id": response.id, "tokens": len(deltas)}
    arguments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(arguments) == call.arguments
    done = [e for e in events if e.type == "response.output_text.done"]
    assert done[0].text == text


def test_the_sdk_accumulator_builds_the_final_response(
    client: openai.OpenAI, corpus_spec: SourceSpec
) -> None:
    """`responses.stream()` checks every item's identity and index as it accumulates."""
    tools: list[FunctionToolParam] = [
        {"type": "function", "name": "search", "parameters": {"type": "object"}, "strict": False}
    ]
    with client.responses.stream(
        model="mock", input="look it up", tools=tools, extra_body={"seed": 3}
    ) as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    text = planned_text(corpus_spec, 3)
    assert snapshots[-1] == text and final.output_text == text
    call = final.output[-1]
    assert call.type == "function_call" and call.name == "search"


def test_the_stream_id_header_names_the_response(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="m",
        input="x",
        max_output_tokens=4,
        extra_headers={"x-tokenwire-stream-id": "resp-named-1"},
    )
    assert response.id == "resp-named-1"


def test_non_streaming_answer(client: openai.OpenAI, corpus_spec: SourceSpec) -> None:
    response = client.responses.create(
        model="m", input="x", max_output_tokens=7, extra_body={"seed": 5}
    )
    assert response.status == "completed" and response.model == "m"
    assert response.output_text == planned_text(corpus_spec, 5, 7)
    assert response.usage is not None and response.usage.output_tokens == 7
    assert [item.type for item in response.output] == ["message", "function_call"]


def test_input_items_and_the_prompt_picks_the_answer(client: openai.OpenAI) -> None:
    def ask(given: str | list) -> str:
        return client.responses.create(model="m", input=given, max_output_tokens=6).output_text

    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "same prompt"}]},
    ]
    assert ask(items) == ask(items)
    assert ask("same prompt") == ask([{"role": "user", "content": "same prompt"}])


def test_a_turn_continues_the_previous_response(client: openai.OpenAI) -> None:
    """An agent loop: the tool's output goes back with `previous_response_id`."""
    first = client.responses.create(model="m", input="start", max_output_tokens=3)
    call = first.output[-1]
    assert call.type == "function_call"
    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "42"}],
        max_output_tokens=3,
        stream=True,
    )
    events = list(second)
    assert events[-1].type == "response.completed"
    with pytest.raises(openai.NotFoundError, match="no response 'gone' to continue"):
        client.responses.create(model="m", previous_response_id="gone", input="x")


def test_bad_requests_are_400_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="input is required") as caught:
        client.responses.create(model="m")
    assert caught.value.body == {
        "message": "input is required: a string or a list of input items",
        "type": "invalid_request_error",
    }
    with pytest.raises(openai.BadRequestError, match="max_output_tokens must be a positive"):
        client.responses.create(model="m", input="x", max_output_tokens=0)
    with pytest.raises(openai.BadRequestError, match="input must be a string or a list"):
        client.responses.create(model="m", input=7)  # type: ignore[call-overload]


def test_the_raw_stream_is_named_events_without_ids_or_done(server: ServerProcess) -> None:
    body = {"model": "m", "input": "hi", "stream": True, "max_output_tokens": 3, "seed": 1}
    with httpx.Client(base_url=server.base_url, trust_env=False) as http:
        answer = http.post("/v1/responses", json=body)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-cache"
    decoder = SSEStreamDecoder()
    events = decoder.feed(answer.content) + decoder.close()
    assert len(events) == len(LIFECYCLE) + 3 + len(ENDING)
    for event in events:
        assert event.event == json.loads(event.data)["type"] and event.id == ""
    assert b"[DONE]" not in answer.content and b"\nid:" not in answer.content
    first = answer.content.split(b"\n\n", 1)[0]
    assert first.startswith(b'event: response.created\ndata: {"type":"response.created",')


def test_the_real_clients_websocket_mode_runs_an_agent_loop_on_one_connection(
    client: openai.OpenAI, corpus_spec: SourceSpec
) -> None:
    """`client.responses.connect()`: two turns on one WebSocket, the second continuing the
    first with the tool's output; each turn's text byte-exact, each ending in a tool call."""
    turns: list[tuple[str, ResponseFunctionToolCall]] = []
    with client.responses.connect() as connection:
        previous: str | None = None
        for k, given in enumerate(["hi", "the tool said 42"]):
            if previous is None:
                connection.response.create(model="mock", input=given)
            else:
                call_id = turns[-1][1].call_id
                connection.response.create(
                    model="mock",
                    previous_response_id=previous,
                    input=[{"type": "function_call_output", "call_id": call_id, "output": given}],
                )
            events = []
            for event in connection:
                events.append(event)
                if event.type in ("response.completed", "error"):
                    break
            final = events[-1]
            assert final.type == "response.completed", final
            text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
            # without a seed, the mock's seed is the CRC-32 of the previous id and the input
            seed = zlib.crc32(f"{previous or ''}\n{given}".encode())
            assert text == planned_text(corpus_spec, seed), k
            message, call = final.response.output
            assert isinstance(message, ResponseOutputMessage)
            assert isinstance(message.content[0], ResponseOutputText)
            assert message.content[0].text == text and isinstance(call, ResponseFunctionToolCall)
            turns.append((final.response.id, call))
            previous = final.response.id
    assert turns[0][0] != turns[1][0]


def test_the_websocket_mode_answers_a_bad_message_with_an_error_event(
    client: openai.OpenAI,
) -> None:
    with client.responses.connect() as connection:
        connection.response.create(model="mock", previous_response_id="nobody", input="hi")
        event = connection.recv()
        assert event.type == "error" and "nobody" in event.error.message
        connection.response.create(model="mock", input="hi")  # the connection stays open
        assert connection.recv().type == "response.created"
