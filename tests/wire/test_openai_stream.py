"""`wire.openai_stream`: the reader both sides of a live run share, on hand-made bodies fed
whole and at every split, and its findings with `bench.py probe`'s codes."""

from __future__ import annotations

from itertools import pairwise

import pytest
from openai_upstreams import TOKENS, Misbehaviour, events

from wire.messages import EndMsg, Message, TokenMsg
from wire.openai_stream import OpenAIStreamReader, chat_request
from wire.problems import RULES

MS = 1_000_000
T0 = 1_000 * MS


def read(body: bytes, splits: list[int]) -> tuple[OpenAIStreamReader, list[Message]]:
    reader = OpenAIStreamReader()
    messages: list[Message] = []
    edges = [0, *splits, len(body)]
    for k, (start, end) in enumerate(pairwise(edges)):
        messages += reader.feed(body[start:end], T0 + (k + 1) * 10 * MS)
    messages += reader.close()
    return reader, messages


def body_of(misbehaviour: Misbehaviour) -> bytes:
    return b"".join(events(misbehaviour))


@pytest.mark.parametrize("split", [None, 1, 7, 100, 333])
def test_a_correct_stream_decodes_alike_at_any_split(split: int | None) -> None:
    body = body_of(Misbehaviour.NONE)
    splits = [] if split is None else list(range(split, len(body), split))
    reader, messages = read(body, splits)
    tokens = [m for m in messages if isinstance(m, TokenMsg)]
    assert len(tokens) == TOKENS and isinstance(messages[-1], EndMsg)
    assert reader.finish_reason == "stop" and reader.done_marker
    assert reader.usage_tokens == TOKENS
    assert reader.problem() is None and reader.warnings() == []


@pytest.mark.parametrize(
    ("misbehaviour", "code"),
    [(Misbehaviour.NO_DATA_PREFIX, "sse_framing"), (Misbehaviour.TRUNCATED, "truncated")],
)
def test_an_unusable_stream_gets_the_probes_code(misbehaviour: Misbehaviour, code: str) -> None:
    reader, _ = read(body_of(misbehaviour), [50])
    problem = reader.problem()
    assert problem is not None and problem.code == code
    assert problem.message.startswith(RULES[code].summary)


def test_an_empty_body_is_not_streaming_and_half_an_end_is_a_warning() -> None:
    reader, _ = read(b"", [])
    assert (found := reader.problem()) is not None and found.code == "not_streaming"
    without_done = b"".join(events(Misbehaviour.NONE)[:-1])
    reader, _ = read(without_done, [])
    assert reader.problem() is None
    assert [w.code for w in reader.warnings()] == ["incomplete_end"]


def test_buffered_is_the_probes_rule_on_one_streams_reads() -> None:
    body = body_of(Misbehaviour.NONE)
    lump, _ = read(body, [])  # everything in one read, 10 ms after the request
    assert (found := lump.buffering(T0)) is not None and found.code == "buffered"
    pieces = events(Misbehaviour.NONE)
    streamed = OpenAIStreamReader()
    for k, piece in enumerate(pieces):  # one event per read, 10 ms apart
        streamed.feed(piece, T0 + (k + 1) * 10 * MS)
    assert streamed.buffering(T0) is None


def test_the_request_asks_for_a_stream_with_usage() -> None:
    body = chat_request("m", "", 3, None, None)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert "max_tokens" not in body and "temperature" not in body
    assert chat_request("m", "hi", 3, 8, 0.0)["max_tokens"] == 8
