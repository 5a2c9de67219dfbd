"""Messages, the request body and the JSON helpers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from errors import ProtocolError
from wire.messages import REQUEST_FIELDS, GenerationRequest, dumps, loads


def test_wire_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


# --- GenerationRequest.from_json ----------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}])
def test_empty_request_gets_defaults(body: Any) -> None:
    assert GenerationRequest.from_json(body) == GenerationRequest(
        seed=0, max_tokens=None, prompt="", stream_id=None
    )


def test_valid_request() -> None:
    body = {"seed": 7, "max_tokens": 16, "prompt": "日本 hi", "stream_id": "run-1_A"}
    assert GenerationRequest.from_json(body) == GenerationRequest(
        seed=7, max_tokens=16, prompt="日本 hi", stream_id="run-1_A"
    )


@pytest.mark.parametrize("stream_id", ["a", "Z9", "-", "_", "a" * 64, "abc-DEF_123"])
def test_valid_stream_ids(stream_id: str) -> None:
    assert GenerationRequest.from_json({"stream_id": stream_id}).stream_id == stream_id


def test_explicit_null_max_tokens_and_stream_id_are_absent() -> None:
    request = GenerationRequest.from_json({"max_tokens": None, "stream_id": None})
    assert request == GenerationRequest()


@pytest.mark.parametrize(
    "body",
    [
        {"temperature": 0.5},
        {"seed": 1, "Seed": 1},
        {"stream": True},
        {"prompt": "x", "model": "gpt"},
    ],
    ids=repr,
)
def test_unknown_fields_are_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as exc_info:
        GenerationRequest.from_json(body)
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    assert str(exc_info.value) == (
        f"unknown request field(s) {unknown}; allowed: seed, max_tokens, prompt, stream_id, "
        "context, previous_response_id, store, tool"
    )


@pytest.mark.parametrize("body", [[], "seed", 5, True, [{"seed": 1}]], ids=repr)
def test_non_object_body_is_rejected(body: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^request body must be a JSON object$"):
        GenerationRequest.from_json(body)


@pytest.mark.parametrize("seed", [-1, True, False, 1.0, "1", None, [1]], ids=repr)
def test_bad_seed(seed: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^seed must be an integer from 0 to "):
        GenerationRequest.from_json({"seed": seed})


@pytest.mark.parametrize("max_tokens", [0, -1, True, False, 1.5, 16.0, "16"], ids=repr)
def test_bad_max_tokens(max_tokens: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^max_tokens must be a positive integer$"):
        GenerationRequest.from_json({"max_tokens": max_tokens})


def test_max_tokens_one_is_accepted() -> None:
    assert GenerationRequest.from_json({"max_tokens": 1}).max_tokens == 1


@pytest.mark.parametrize("prompt", [5, None, ["a"], {"text": "a"}, b"a"], ids=repr)
def test_bad_prompt(prompt: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^prompt must be a string$"):
        GenerationRequest.from_json({"prompt": prompt})


@pytest.mark.parametrize(
    "stream_id",
    ["", "has space", " lead", "a" * 65, "a/b", "a.b", "é", "abc\n", "\nabc", 5, ["a"]],
    ids=repr,
)
def test_bad_stream_id(stream_id: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^stream_id must be 1-64 characters"):
        GenerationRequest.from_json({"stream_id": stream_id})


# --- GenerationRequest.to_json ------------------------------------------------------------


def test_to_json_omits_absent_fields() -> None:
    assert GenerationRequest().to_json() == {"seed": 0, "prompt": ""}


def test_to_json_full() -> None:
    request = GenerationRequest(seed=3, max_tokens=5, prompt="p", stream_id="s1")
    assert request.to_json() == {"seed": 3, "prompt": "p", "max_tokens": 5, "stream_id": "s1"}


@pytest.mark.parametrize(
    "request_",
    [
        GenerationRequest(),
        GenerationRequest(seed=2**40, max_tokens=1, prompt="\u2028\n👩‍💻", stream_id="x" * 64),
        GenerationRequest(prompt="data: [DONE]"),
    ],
    ids=repr,
)
def test_request_round_trip_through_json_text(request_: GenerationRequest) -> None:
    assert GenerationRequest.from_json(loads(dumps(request_.to_json()))) == request_


# --- dumps / loads ------------------------------------------------------------------------


def test_dumps_is_compact_and_keeps_non_ascii() -> None:
    assert dumps({"i": 1, "t": "日本 😀"}) == '{"i":1,"t":"日本 😀"}'


def test_dumps_escapes_cr_and_lf() -> None:
    assert dumps("a\nb\r\nc\r") == '"a\\nb\\r\\nc\\r"'


def test_dumps_leaves_unicode_line_separators_raw() -> None:
    """orjson does not escape U+2028/U+2029/U+0085: they travel as raw UTF-8 inside
    JSON strings, which is why NDJSON must be split on 0x0A only."""
    assert dumps("\u2028\u2029\u0085") == '"\u2028\u2029\u0085"'


@pytest.mark.parametrize("text", ['{"a":1}', b'{"a":1}'], ids=["str", "bytes"])
def test_loads_accepts_str_and_bytes(text: str | bytes) -> None:
    assert loads(text) == {"a": 1}


@pytest.mark.parametrize(
    "text", ["", "{", "{'a':1}", '{"a":1}x', "NaN", b"\xff", b'"\xed\xa0\x80"'], ids=repr
)
def test_loads_maps_decode_errors_to_wire_error(text: str | bytes) -> None:
    with pytest.raises(ProtocolError, match=r"^invalid JSON: ") as exc_info:
        loads(text)
    assert isinstance(exc_info.value.__cause__, orjson.JSONDecodeError)
