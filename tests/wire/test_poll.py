"""The polling envelope: `encode_batch` / `decode_batch` / `decode_created`."""

from __future__ import annotations

from typing import Any

import pytest

from errors import ProtocolError
from wire.messages import TokenMsg, dumps, loads
from wire.poll import PollBatch, decode_batch, decode_created, encode_batch


def test_encode_batch_exact() -> None:
    assert encode_batch(3, ["a", " b"], False, None) == {
        "tokens": [{"i": 3, "t": "a"}, {"i": 4, "t": " b"}],
        "next": 5,
        "done": False,
    }


def test_encode_batch_with_error() -> None:
    assert encode_batch(0, ["x"], True, "boom") == {
        "tokens": [{"i": 0, "t": "x"}],
        "next": 1,
        "done": True,
        "error": "boom",
    }


def test_encode_empty_batch() -> None:
    assert encode_batch(7, [], True, None) == {"tokens": [], "next": 7, "done": True}


@pytest.mark.parametrize("done", [False, True])
@pytest.mark.parametrize("error", [None, "upstream\nfailed"])
def test_batch_round_trip_through_json(
    tricky_tokens: list[str], long_token: str, done: bool, error: str | None
) -> None:
    texts = [*tricky_tokens, long_token]
    body = loads(dumps(encode_batch(10, texts, done, error)).encode())
    assert decode_batch(body) == PollBatch(
        tokens=[TokenMsg(i=10 + k, text=t) for k, t in enumerate(texts)],
        next=10 + len(texts),
        done=done,
        error=error,
    )


def test_decode_exact() -> None:
    body = {"tokens": [{"i": 2, "t": "hi"}], "next": 3, "done": False}
    assert decode_batch(body) == PollBatch(tokens=[TokenMsg(i=2, text="hi")], next=3, done=False)


MALFORMED_BODIES: list[Any] = [
    None,
    [],
    "tokens",
    5,
    {},
    {"next": 0, "done": False},
    {"tokens": [], "done": False},
    {"tokens": [], "next": 0},
    {"tokens": None, "next": 0, "done": False},
    {"tokens": 5, "next": 0, "done": False},
    {"tokens": "ab", "next": 0, "done": False},
    {"tokens": {"i": 0, "t": "a"}, "next": 0, "done": False},
    {"tokens": [1], "next": 1, "done": False},
    {"tokens": [None], "next": 1, "done": False},
    {"tokens": [{"t": "a"}], "next": 1, "done": False},
    {"tokens": [{"i": 0}], "next": 1, "done": False},
    {"tokens": [{"i": None, "t": "a"}], "next": 1, "done": False},
    {"tokens": [{"i": "zero", "t": "a"}], "next": 1, "done": False},
    {"tokens": [], "next": None, "done": False},
    {"tokens": [], "next": "one", "done": False},
]


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=repr)
def test_decode_batch_rejects_malformed_bodies(body: Any) -> None:
    with pytest.raises(ProtocolError):
        decode_batch(body)


# Bodies that the wire type contract rejects elsewhere (the json framing requires an int `i`
# and a str `t`), but that decode_batch coerces into fabricated values.
COERCED_BODIES: list[Any] = [
    {"tokens": [{"i": 0, "t": None}], "next": 1, "done": False},
    {"tokens": [{"i": 0, "t": 7}], "next": 1, "done": False},
    {"tokens": [{"i": 0, "t": ["a"]}], "next": 1, "done": False},
    {"tokens": [{"i": 1.5, "t": "a"}], "next": 2, "done": False},
    {"tokens": [{"i": "0", "t": "a"}], "next": 1, "done": False},
    {"tokens": [], "next": 0, "done": "false"},
]


@pytest.mark.parametrize("body", COERCED_BODIES, ids=repr)
def test_decode_batch_rejects_mistyped_fields(body: Any) -> None:
    with pytest.raises(ProtocolError):
        decode_batch(body)


def test_decode_created() -> None:
    assert decode_created({"id": "abc-1"}) == "abc-1"


@pytest.mark.parametrize("body", [None, [], "abc", {}, {"id": 5}, {"id": None}], ids=repr)
def test_decode_created_rejects_malformed_bodies(body: Any) -> None:
    with pytest.raises(ProtocolError):
        decode_created(body)
