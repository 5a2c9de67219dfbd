"""Fuzzing the real server process: every endpoint, with hypothesis and schemathesis.

One server (`running_server`, a fast mock, short limits) takes every fuzz test in this
module; the last fuzz test checks what the whole run did to it. Properties:

- no answer is a 5xx; every 4xx is JSON with an `error` member;
- nothing hangs: every request finishes (or the server drops it) within a bound;
- afterwards, the server log has no traceback and no ERROR line, and once generations have
  ended and been forgotten, the server's RSS is within 20 MB of its value after a warm-up.

The default suite runs a bounded sample (about 500 requests); `TOKENWIRE_FUZZ_REQUESTS=N`
scales it, and `python -m pytest -m fuzz` selects the fuzz tests alone (see `.ci/run`).

The bugs the fuzzing found have tests at the end of the module, on a server of their own
(a bug may leave a traceback in its log): a regression test for each one fixed since, a
strict xfail for each one still open (`tests/fuzz_support.py` keeps the strategies clear of
those, and counts the answers it tolerates).
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from fuzz_support import (
    ENDINGS,
    FALSY_JSON_BODIES,
    FUZZ_SERVER_ARGS,
    FUZZ_SPEC,
    HTTP_TIMEOUT_S,
    JSON_MEDIA_TYPE,
    LOOPBACK_HOST,
    MAX_HEAD_BYTES,
    MAX_LONG_POLL_WAIT_S,
    PARSER_4XX,
    REQUEST_TIMEOUT_S,
    RSS_TOLERANCE_BYTES,
    SETTLE_S,
    SLOW_CLOSE_MARGIN_S,
    STREAM_DEADLINE_S,
    TRANSFER_ENCODINGS,
    UNKNOWN_CODING_501,
    WS_HANDSHAKE_4XX,
    Ledger,
    RawAnswer,
    Reader,
    content_types,
    examples_for,
    fuzz_requests,
    fuzz_settings,
    head_fields,
    host_port,
    host_samples,
    integers_of_every_size,
    is_terminal,
    json_but_not_an_object,
    json_declared,
    json_scalars,
    json_text,
    json_values,
    known_non_json_4xx,
    malformed_json,
    ndjson_payloads,
    negative_seed,
    origin_samples,
    raw_exchange,
    read_answer,
    short_text,
    sse_payloads,
    unknown_coding,
    with_request_bodies,
)
from hypothesis import given, reject
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from stack_behaviour import (
    REQUEST_TIMEOUT,
    UNREAD_BODY_TIMEOUT,
    closes,
    guard_holds,
    lacking,
    under_test,
)
from support import stack_args, stack_under_test
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from harness.measure.server_process import ServerProcess, running_server
from servers.app import create_app
from servers.core import routes
from servers.sources.mock import MockSource, profile_for
from stacks import STACKS
from transports import TRANSPORTS

CREATE = "POST /v1/streams"
POLL = "GET /v1/streams/{stream_id}"
SSE_POST = "POST /v1/sse"
SSE_GET = "GET /v1/sse"
CHUNKED = "POST /v1/chunked"
WEBSOCKET = "WS /v1/ws"
CHAT = "POST /v1/chat/completions"
TIMELINE = "GET /v1/streams/{stream_id}/timeline"
TIMELINES = "POST /v1/timelines"
SCHEMA = "GET /openapi.json"
RAW = "raw HTTP (malformed)"
SLOW = "raw HTTP (slow clients)"
GUARDS = "raw HTTP (Host, Origin, TE, type)"

# Every operation FastAPI publishes, as (method, path); the schema test checks the list.
OPERATIONS = [
    ("POST", "/v1/streams"),
    ("GET", "/v1/streams/{stream_id}"),
    ("POST", "/v1/sse"),
    ("GET", "/v1/sse"),
    ("POST", "/v1/chunked"),
    ("GET", "/v1/streams/{stream_id}/timeline"),
    ("POST", "/v1/timelines"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/webhooks"),
    ("GET", "/healthz"),
    ("GET", "/"),
]
FUZZED_ENDPOINTS = [f"{m} {p}" for m, p in OPERATIONS] + [WEBSOCKET, SCHEMA, RAW, SLOW, GUARDS]
BODY_ENDPOINTS = [
    "/v1/streams",
    "/v1/sse",
    "/v1/chunked",
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/timelines",
]
READS = ("all", "some", "none")  # read a streaming answer to its end, a little, or not at all
ALL_KNOWN_4XX = (PARSER_4XX, WS_HANDSHAKE_4XX)
BYTES_IN_HEADERS = (PARSER_4XX,)  # arbitrary header bytes: the server's parser may refuse
FUZZ_TIMEOUT_S = max(120, fuzz_requests() // 25)
fuzz = pytest.mark.fuzz


# --- the server under fuzz ----------------------------------------------------------------


@dataclass
class FuzzTarget:
    server: ServerProcess
    http: httpx.Client
    ledger: Ledger
    rss_warm: int

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/v1/ws"

    @property
    def address(self) -> tuple[str, int]:
        return host_port(self.base_url)


def http_client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, trust_env=False, timeout=HTTP_TIMEOUT_S)


def ws_connect(url: str) -> ClientConnection:
    return connect(
        url,
        open_timeout=HTTP_TIMEOUT_S,
        close_timeout=2,
        ping_interval=None,
        compression=None,
        max_size=None,
        max_queue=None,  # never stop reading: a client that leaves early must see the close
        proxy=None,
    )


def warm_up(base_url: str, http: httpx.Client) -> None:
    """Every endpoint a few times, so that imports, caches and pools exist before the RSS
    baseline is taken."""
    for k in range(8):
        stream_id = http.post("/v1/streams", json={"seed": k, "max_tokens": 5}).json()["id"]
        http.get(f"/v1/streams/{stream_id}", params={"offset": 0, "wait": 1})
        http.get(f"/v1/streams/{stream_id}/timeline", params={"texts": True})
        http.post("/v1/timelines", json={"ids": [stream_id], "texts": True})
        http.post("/v1/sse", json={"seed": k}, params={"framing": "openai"})
        http.get("/v1/sse", params={"seed": k})
        http.post("/v1/chunked", json={"seed": k})
        http.post("/v1/streams", content=b"{nope", headers={"content-type": JSON_MEDIA_TYPE})
        for stream in (False, True):
            http.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "hi"}], "stream": stream},
            )
        with ws_connect(base_url.replace("http://", "ws://") + "/v1/ws") as ws:
            ws.send(json.dumps({"seed": k}))
            with contextlib.suppress(ConnectionClosed):
                while True:
                    ws.recv(timeout=HTTP_TIMEOUT_S)
        raw_exchange(host_port(base_url), b"GET /\x00 HTTP/1.1\r\n\r\n", "answer", 5)


@contextlib.contextmanager
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    """The server under fuzzing (its log in a fresh folder) and a client of it."""
    log = tmp_path_factory.mktemp(name) / "server.log"
    with (
        running_server(FUZZ_SPEC, log, extra_args=(*stack_args(), *FUZZ_SERVER_ARGS)) as server,
        http_client(server.base_url) as http,
    ):
        yield server, http


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    with fuzzed_server(tmp_path_factory, "fuzz") as (server, http):
        warm_up(server.base_url, http)
        time.sleep(SETTLE_S)
        yield FuzzTarget(server=server, http=http, ledger=Ledger(), rss_warm=server.rss_bytes())


@contextlib.contextmanager
def sends(target: FuzzTarget, endpoint: str) -> Iterator[None]:
    """The test must send at least one request to `endpoint`."""
    before = target.ledger.sent[endpoint]
    yield
    assert target.ledger.sent[endpoint] > before, f"the fuzzing sent no request to {endpoint}"


# --- one HTTP request, checked ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    whole: bool  # the body was read to its end


def exchange(
    target: FuzzTarget,
    endpoint: str,
    method: str,
    url: str,
    read: str = "all",
    tolerate: tuple[str, ...] = (),
    content_type: str | None = None,
    **kwargs: Any,
) -> Answer:
    """Send one request; read a 200 answer as `read` says (any other answer whole); check it.
    A request the client library refuses to send (a header it cannot encode) is rejected."""
    if content_type is not None:
        kwargs["headers"] = {"content-type": content_type, **kwargs.get("headers", {})}
    ledger = target.ledger
    deadline = time.monotonic() + STREAM_DEADLINE_S
    try:
        with target.http.stream(method, url, **kwargs) as response:
            ledger.send(endpoint)
            body = b""
            whole = response.status_code != 200 or read == "all"
            if whole:
                for chunk in response.iter_raw():
                    body += chunk
                    if time.monotonic() > deadline:
                        raise ledger.hang(endpoint, f"{method} {url}: still streaming")
            elif read == "some":
                for chunk in response.iter_raw():
                    body += chunk
                    break
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        reject()
    except httpx.TimeoutException as exc:
        ledger.send(endpoint)
        raise ledger.hang(endpoint, f"{method} {url}: {exc!r}") from exc
    except httpx.TransportError as exc:
        ledger.send(endpoint)
        raise AssertionError(f"{endpoint}: {method} {url}: no answer: {exc!r}") from exc
    ledger.check(endpoint, response.status_code, body, tolerate)
    content_type = response.headers.get("content-type", "")
    return Answer(response.status_code, body, content_type, whole)


def check_stream_end(answer: Answer) -> None:
    """A push answer read to its end ends with its framing's terminal message."""
    if answer.status != 200 or not answer.whole:
        return
    if answer.content_type.startswith("text/event-stream"):
        payloads = sse_payloads(answer.body)
    elif answer.content_type.startswith("application/x-ndjson"):
        payloads = ndjson_payloads(answer.body)
    else:
        return
    assert payloads and is_terminal(payloads[-1]), f"no terminal message: {answer.body[-300:]!r}"


def new_stream(target: FuzzTarget, done: bool = False) -> str:
    """A stream the server holds: running (it has just started) or done."""
    stream_id = f"fz-{uuid.uuid4().hex[:16]}"
    body = {"stream_id": stream_id, "max_tokens": 3 if done else 40}
    answer = exchange(target, CREATE, "POST", "/v1/streams", json=body)
    assert answer.status == 201, answer
    if done:
        time.sleep(0.01)
    return stream_id


def stream_target(target: FuzzTarget, kind: str, odd: str) -> str | None:
    """A stream id of the given kind: a running or done stream, an unknown valid id, an
    arbitrary string, or none."""
    if kind in ("running", "done"):
        return new_stream(target, done=kind == "done")
    if kind == "unknown":
        return f"never-{uuid.uuid4().hex[:12]}"
    if kind == "odd":
        return odd
    return None


TARGETS = st.sampled_from(["running", "done", "unknown", "odd", "none"])


def path_id(stream_id: str) -> str:
    return quote(stream_id, safe="") or "%20"


# --- strategies ---------------------------------------------------------------------------


def query_values(
    numbers: st.SearchStrategy[Any], valid: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[str | None]:
    """A query parameter's text: absent, a valid value (as often as the rest together, so
    that whole requests are often valid), a number of any size, or anything."""
    fuzzed = st.one_of(
        numbers.map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["nan", "inf", "-inf", "1e-320", "-0", "0x10", " 1", "1.0", "", "1_0"]),
        st.text(max_size=12),
    )
    if valid is None:
        return st.one_of(st.none(), fuzzed)
    return st.one_of(st.none(), valid.map(str), fuzzed)


@functools.cache
def framings() -> st.SearchStrategy[str | None]:
    valid = st.sampled_from(["json", "openai"])
    return st.one_of(st.none(), valid, valid, st.text(max_size=10))


@functools.cache
def stream_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        st.text(max_size=70),
    )


@functools.cache
def header_values() -> st.SearchStrategy[bytes]:
    """Header values as bytes: latin-1 text, which HTTP allows, and the odd control byte."""
    latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
    return st.one_of(
        st.text(alphabet=latin1, max_size=24).map(lambda s: s.encode("latin-1")),
        st.binary(max_size=8),
    )


@functools.cache
def last_event_ids() -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),
        st.none(),
        st.integers(min_value=-3, max_value=60).map(lambda k: str(k).encode()),
        integers_of_every_size().map(lambda k: str(k).encode()),
        st.integers(min_value=1, max_value=6000).map(lambda k: b"9" * k),
        st.sampled_from([b"", b" 1", b"1 ", b"+1", b"1.0", b"0x1", "\u00b2".encode("latin-1")]),
        header_values(),
    )


@functools.cache
def generation_objects() -> st.SearchStrategy[dict[str, Any]]:
    """Generation requests whose fields have every JSON type and size, sometimes with a field
    that does not exist."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "seed": st.one_of(integers_of_every_size(), json_values()),
            "max_tokens": st.one_of(integers_of_every_size(), json_values()),
            "prompt": st.one_of(short_text(), json_values()),
            "stream_id": st.one_of(stream_ids(), json_values()),
        },
    )
    extra = st.dictionaries(short_text(), json_scalars(), max_size=2)
    return st.one_of(fields, st.tuples(fields, extra).map(lambda fe: {**fe[1], **fe[0]}))


@functools.cache
def generation_bodies() -> st.SearchStrategy[bytes]:
    large = st.one_of(
        st.sampled_from(
            [
                b"x" * ((1 << 20) + 1),  # past max_body_bytes: 413
                json.dumps({"prompt": "p" * 100_001}).encode(),  # past max_prompt_chars: 400
                json.dumps({"max_tokens": 65_537}).encode(),  # past max_tokens_limit: 400
            ]
        ),
        st.integers(0, 10**6)
        .map(  # a long prompt, accepted (and not kept afterwards)
            lambda k: json.dumps({"seed": k, "max_tokens": 2, "prompt": f"{k}" + "p" * 50_000})
        )
        .map(str.encode),
    )
    return st.one_of(
        st.just(b""),
        st.sampled_from(FALSY_JSON_BODIES),  # JSON, not an object: 400
        malformed_json(),
        json_values().map(lambda v: json_text(v).encode()),
        generation_objects().map(lambda v: json_text(v).encode()),
        st.integers(0, 9).flatmap(lambda k: large if k == 7 else st.just(b"{}")),
    )


# --- schemathesis, over the published schema ------------------------------------------------


@fuzz
def test_the_published_schema_lists_every_operation(fuzz_target: FuzzTarget) -> None:
    """The FastAPI app is built with docs_url=None, yet /openapi.json is served and lists
    every HTTP operation (the WebSocket is not in it). A stack without FastAPI publishes no
    schema (404), and serves exactly the operations FastAPI's lists."""
    with sends(fuzz_target, SCHEMA):
        answer = exchange(fuzz_target, SCHEMA, "GET", "/openapi.json")
    if STACKS.get(stack_under_test()).neutral:
        assert answer.status == 404
        served = {(r.method, r.path) for r in routes(TRANSPORTS) if r.method in ("GET", "POST")}
        assert served == set(OPERATIONS)
        published = fastapi_schema()["paths"]
    else:
        assert answer.status == 200
        published = json.loads(answer.body)["paths"]
    listed = {(m.upper(), p) for p, methods in published.items() for m in methods}
    assert listed == set(OPERATIONS)
    docs = fuzz_target.http.get("/docs")
    assert docs.status_code == 404


def fastapi_schema() -> dict[str, Any]:
    """The schema the FastAPI app publishes: the same operations on every stack."""
    return create_app(MockSource(profile_for("instant"))).openapi()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> schemathesis.schemas.BaseSchema:
    if STACKS.get(stack_under_test()).neutral:
        published = fastapi_schema()
    else:
        published = fuzz_target.http.get("/openapi.json").json()
    return schemathesis.openapi.from_dict(
        with_request_bodies(published), config=SchemathesisConfig()
    )


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_schemathesis_fuzzes_every_published_operation(
    fuzz_target: FuzzTarget, api_schema: Any, method: str, path: str
) -> None:
    """Valid and invalid parameters, headers and bodies for each operation, as schemathesis
    generates them from the schema (plus the request bodies it does not publish)."""
    operation = api_schema[path][method]
    has_inputs = bool(operation.definition.raw.get("parameters")) or "requestBody" in (
        operation.definition.raw
    )
    modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if has_inputs else [])
    strategy = st.one_of(*(operation.as_strategy(mode) for mode in modes))
    endpoint = f"{method} {path}"
    session = requests.Session()
    session.trust_env = False
    ledger = fuzz_target.ledger

    @fuzz_settings(examples_for(0.02))
    @given(case=strategy)
    def run(case: Any) -> None:
        try:
            response = case.call(
                base_url=fuzz_target.base_url, session=session, timeout=HTTP_TIMEOUT_S
            )
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError):
            reject()  # the client cannot send it: nothing reached the server
        except requests.exceptions.Timeout as exc:
            ledger.send(endpoint)
            raise ledger.hang(endpoint, repr(exc)) from exc
        ledger.send(endpoint)
        ledger.check(endpoint, response.status_code, response.content)
        case.validate_response(response, checks=[not_a_server_error])

    with sends(fuzz_target, endpoint):
        run()


# --- hypothesis, endpoint by endpoint -------------------------------------------------------


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_generation_request_bodies(fuzz_target: FuzzTarget) -> None:
    """POST /v1/streams, /v1/sse and /v1/chunked with bodies of every shape: empty, broken
    JSON, JSON that is not an object, objects with fields of every type and size, unknown
    fields, oversized bodies and prompts; push answers read to the end, a little, or not.
    Each can start a generation, so each needs `Content-Type: application/json`, even with
    an empty body (415 first, before any limit); JSON that is not an object is 400; an empty
    JSON body is the default request."""
    paths = {"/v1/streams": CREATE, "/v1/sse": SSE_POST, "/v1/chunked": CHUNKED}

    @fuzz_settings(examples_for(0.16))
    @given(
        path=st.sampled_from(sorted(paths)),
        body=generation_bodies(),
        content_type=content_types(),
        framing=framings(),
        read=st.sampled_from(READS),
    )
    def run(
        path: str, body: bytes, content_type: str | None, framing: str | None, read: str
    ) -> None:
        params = {} if framing is None else {"framing": framing}
        answer = exchange(
            fuzz_target,
            paths[path],
            "POST",
            path,
            read=read,
            content=body,
            content_type=content_type,
            params=params,
        )
        check_stream_end(answer)
        if not json_declared(content_type):
            assert answer.status == 415, (path, content_type, body[:100], answer)
            return
        assert answer.status != 415, (path, content_type, answer)
        if json_but_not_an_object(body):
            assert answer.status == 400, (path, body[:100], answer)
        elif body == b"" and framing is None:
            assert answer.status in (200, 201), (path, answer)

    with sends(fuzz_target, CREATE), sends(fuzz_target, SSE_POST), sends(fuzz_target, CHUNKED):
        run()


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_polling(fuzz_target: FuzzTarget) -> None:
    """GET /v1/streams/{id} on running, done, unknown and arbitrary ids, with offsets and
    waits of every type and size (long polls capped at 2 s by the server's setting)."""

    @fuzz_settings(examples_for(0.10, 1.5))
    @given(
        kind=st.sampled_from(["running", "done", "unknown", "odd"]),
        odd=st.text(min_size=1, max_size=80),
        offset=query_values(integers_of_every_size(), st.integers(0, 20)),
        wait=query_values(st.floats(0, MAX_LONG_POLL_WAIT_S + 0.5), st.floats(0, 0.3)),
    )
    def run(kind: str, odd: str, offset: str | None, wait: str | None) -> None:
        stream_id = stream_target(fuzz_target, kind, odd)
        assert stream_id is not None
        params = {k: v for k, v in (("offset", offset), ("wait", wait)) if v is not None}
        url = f"/v1/streams/{path_id(stream_id)}"
        answer = exchange(fuzz_target, POLL, "GET", url, params=params)
        if answer.status == 200:
            batch = json.loads(answer.body)
            assert set(batch) >= {"tokens", "next", "done"}

    with sends(fuzz_target, POLL):
        run()


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_sse_and_its_resume(fuzz_target: FuzzTarget) -> None:
    """POST and GET /v1/sse with Last-Event-ID headers of every kind, ?stream= naming
    running, done, unknown and arbitrary streams (or the id in the POST body), query
    parameters of every type for the EventSource form, and any framing."""

    @fuzz_settings(examples_for(0.10, 1.4))
    @given(
        method=st.sampled_from(["GET", "POST"]),
        kind=TARGETS,
        odd=st.text(max_size=70),
        id_in_body=st.booleans(),
        last_event_id=last_event_ids(),
        framing=framings(),
        seed=query_values(integers_of_every_size(), st.integers(0, 1000)),
        max_tokens=query_values(integers_of_every_size(), st.integers(1, 30)),
        prompt=st.one_of(st.none(), short_text()),
        read=st.sampled_from(READS),
    )
    def run(
        method: str,
        kind: str,
        odd: str,
        id_in_body: bool,
        last_event_id: bytes | None,
        framing: str | None,
        seed: str | None,
        max_tokens: str | None,
        prompt: str | None,
        read: str,
    ) -> None:
        stream_id = stream_target(fuzz_target, kind, odd)
        params: dict[str, str] = {} if framing is None else {"framing": framing}
        headers = {} if last_event_id is None else {"last-event-id": last_event_id}
        if method == "GET":
            query = {"seed": seed, "max_tokens": max_tokens, "prompt": prompt, "stream": stream_id}
            params |= {k: v for k, v in query.items() if v is not None}
            answer = exchange(
                fuzz_target,
                SSE_GET,
                "GET",
                "/v1/sse",
                read=read,
                params=params,
                headers=headers,
                tolerate=BYTES_IN_HEADERS,
            )
        else:
            body: dict[str, Any] = {}
            if stream_id is not None and id_in_body:
                body["stream_id"] = stream_id
            elif stream_id is not None:
                params["stream"] = stream_id
            answer = exchange(
                fuzz_target,
                SSE_POST,
                "POST",
                "/v1/sse",
                read=read,
                params=params,
                headers=headers,
                tolerate=BYTES_IN_HEADERS,
                content=json_text(body).encode(),
                content_type=JSON_MEDIA_TYPE,
            )
        check_stream_end(answer)

    with sends(fuzz_target, SSE_GET), sends(fuzz_target, SSE_POST):
        run()


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_chunked_resume(fuzz_target: FuzzTarget) -> None:
    """POST /v1/chunked?stream=&from= with every kind of stream and index, with and without
    a body, in any framing. Without `stream` and `from` it starts a generation: JSON
    Content-Type needed, empty body or not (415); a resume needs it only with a body."""

    @fuzz_settings(examples_for(0.06, 1.4))
    @given(
        kind=TARGETS,
        odd=st.text(max_size=70),
        start=query_values(integers_of_every_size(), st.integers(0, 20)),
        framing=framings(),
        body=st.one_of(st.just(b""), st.just(b"{}"), generation_bodies()),
        content_type=content_types(),
        read=st.sampled_from(READS),
    )
    def run(
        kind: str,
        odd: str,
        start: str | None,
        framing: str | None,
        body: bytes,
        content_type: str | None,
        read: str,
    ) -> None:
        stream_id = stream_target(fuzz_target, kind, odd)
        query = {"stream": stream_id, "from": start, "framing": framing}
        params = {k: v for k, v in query.items() if v is not None}
        answer = exchange(
            fuzz_target,
            CHUNKED,
            "POST",
            "/v1/chunked",
            read=read,
            params=params,
            content=body,
            content_type=content_type,
        )
        check_stream_end(answer)
        declared = json_declared(content_type)
        starts = stream_id is None and start is None
        # `from` as FastAPI reads it before the endpoint runs (anything else: its 422 first)
        plain_from = start is None or (start.isascii() and start.isdigit() and len(start) < 19)
        if answer.status == 415:
            assert not declared and (starts or body), (params, content_type, body[:100])
        if not declared and plain_from and (starts or body):
            assert answer.status == 415, (params, content_type, body[:100], answer)
        if declared and plain_from and json_but_not_an_object(body):
            assert answer.status == 400, (params, body[:100], answer)

    with sends(fuzz_target, CHUNKED):
        run()


# --- WebSocket ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WsCase:
    """A first message (text, binary, a resume of a fresh stream, or none), whether the
    server must accept it, and how the client ends: reads to the end, reads one message,
    closes at once or drops the connection."""

    kind: str  # "text", "binary", "resume" (of a fresh stream) or "none"
    payload: Any
    valid: bool
    ending: str  # "read", "read_some", "close_at_once", "drop"


WS_FRAMINGS = st.one_of(st.sampled_from(["json", "openai"]), json_values(max_leaves=2))
WS_RESUME_FROM = st.one_of(integers_of_every_size(), json_values(max_leaves=2))
RESUME_KEYS = ("resume", "from", "framing")  # all a resume message may hold
# fields a resume does not take (a resume with any of them is refused: 1008)
WS_RESUME_EXTRAS = st.dictionaries(
    st.one_of(
        st.sampled_from(["seed", "max_tokens", "prompt", "stream_id", "From", "resume_from", ""]),
        short_text(),
    ).filter(lambda k: k not in RESUME_KEYS),
    json_scalars(),
    min_size=1,
    max_size=2,
)
WS_FUZZED_FIRST = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=40)),
    st.tuples(st.just("text"), malformed_json().map(lambda b: b.decode(errors="replace"))),
    st.tuples(st.just("text"), json_values().map(json_text)),
    st.tuples(
        st.just("text"),
        st.tuples(generation_objects(), st.one_of(st.none(), WS_FRAMINGS)).map(
            lambda of: json_text(of[0] if of[1] is None else {**of[0], "framing": of[1]})
        ),
    ),
    st.tuples(
        st.just("text"),
        st.fixed_dictionaries(
            {"resume": st.one_of(stream_ids(), json_values(max_leaves=2))},
            optional={"from": WS_RESUME_FROM, "framing": WS_FRAMINGS},
        ).map(json_text),
    ),
    st.tuples(st.just("resume"), st.fixed_dictionaries({"from": WS_RESUME_FROM})),
    st.tuples(  # a resume of a real stream, valid but for a field it does not take
        st.just("resume"),
        st.tuples(
            st.fixed_dictionaries(
                {"from": st.just(0)}, optional={"framing": st.sampled_from(["json", "openai"])}
            ),
            WS_RESUME_EXTRAS,
        ).map(lambda fe: {**fe[1], **fe[0]}),
    ),
    st.tuples(st.just("binary"), st.binary(max_size=64)),
)
WS_VALID_FIRST = st.one_of(
    st.tuples(
        st.just("text"),
        st.fixed_dictionaries(
            {"max_tokens": st.integers(1, 40)},
            optional={"seed": st.integers(0, 1000), "framing": st.sampled_from(["json", "openai"])},
        ).map(json_text),
    ),
    st.tuples(st.just("resume"), st.fixed_dictionaries({"from": st.just(0)})),
    st.tuples(st.just("none"), st.none()),
)
WS_ENDINGS = st.sampled_from(["read", "read_some", "close_at_once", "drop"])


@st.composite
def ws_cases(draw: st.DrawFn) -> WsCase:
    valid = draw(st.booleans())
    kind, payload = draw(WS_VALID_FIRST if valid else WS_FUZZED_FIRST)
    return WsCase(kind, payload, valid, "read" if kind == "none" else draw(WS_ENDINGS))


def resume_with_extras(first: str | bytes | None) -> bool:
    """The first message is a resume (an object with `resume`) with a field it does not take."""
    if not isinstance(first, str):
        return False
    try:
        body = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and "resume" in body and bool(set(body) - set(RESUME_KEYS))


def drop_connection(ws: ClientConnection) -> None:
    """Leave without a close frame: the TCP connection just ends."""
    with contextlib.suppress(OSError):
        ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()


def read_until_closed(ws: ClientConnection, deadline: float) -> list[str | bytes]:
    messages: list[str | bytes] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            messages.append(ws.recv(timeout=left))
    return messages


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_websocket_first_messages(fuzz_target: FuzzTarget) -> None:
    """/v1/ws with first messages of every kind (text that is not JSON, JSON that is not an
    object, fields of wrong types and huge numbers, any framing value, binary frames,
    resumes with bad ids and indices or fields a resume does not take) and clients that read
    to the end, read a little, close at once or drop the connection. A refused message gets
    one `{"error"}` message and close code 1008; an accepted one ends with its terminal
    message and close code 1000. A resume with any field but resume, from and framing is
    refused."""
    ledger = fuzz_target.ledger

    @fuzz_settings(examples_for(0.14, 1.25))
    @given(case=ws_cases())
    def run(case: WsCase) -> None:
        first: str | bytes | None = case.payload
        if case.kind == "resume":
            first = json_text({"resume": new_stream(fuzz_target), **case.payload})
        deadline = time.monotonic() + STREAM_DEADLINE_S
        try:
            with ws_connect(fuzz_target.ws_url) as ws:
                ledger.send(WEBSOCKET)
                if first is None:
                    ws.close()  # nothing sent: the client leaves at once
                    return
                ws.send(first)
                if case.ending == "close_at_once":
                    ws.close()
                    return
                if case.ending == "drop":
                    drop_connection(ws)
                    return
                if case.ending == "read_some":
                    with contextlib.suppress(ConnectionClosed):
                        ws.recv(timeout=HTTP_TIMEOUT_S)
                    ws.close()
                    return
                messages = read_until_closed(ws, deadline)
                code = ws.close_code
        except TimeoutError as exc:
            raise ledger.hang(WEBSOCKET, f"first message {first!r:.200}") from exc
        except (InvalidHandshake, OSError) as exc:
            ledger.send(WEBSOCKET)
            raise AssertionError(f"{WEBSOCKET}: the handshake failed: {exc!r}") from exc
        assert messages, f"no message for {first!r:.200}; close code {code}"
        last = messages[-1]
        assert isinstance(last, str)
        refusal = json.loads(last) if code == 1008 else None
        if resume_with_extras(first):
            assert refusal is not None, f"a resume with extra fields was taken: {first!r:.200}"
        if refusal is not None:
            assert len(messages) == 1 and isinstance(refusal.get("error"), str), messages
            assert not case.valid, f"a valid first message was refused: {refusal}"
            ledger.statuses[WEBSOCKET][1008] += 1
        else:
            assert code == 1000, f"close code {code} after {messages[-3:]}"
            assert is_terminal(last), f"no terminal message: {messages[-3:]}"
            ledger.statuses[WEBSOCKET][1000] += 1

    with sends(fuzz_target, WEBSOCKET):
        run()


# --- the OpenAI-compatible endpoint ---------------------------------------------------------


@functools.cache
def content_parts() -> st.SearchStrategy[Any]:
    part = st.one_of(
        json_values(max_leaves=3),
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.one_of(
                    st.sampled_from(["text", "image_url", "input_audio", "Text", ""]),
                    json_scalars(),
                ),
                "text": st.one_of(short_text(), json_scalars()),
                "image_url": json_values(max_leaves=2),
            },
        ),
    )
    return st.lists(part, max_size=3)


@functools.cache
def chat_messages() -> st.SearchStrategy[Any]:
    content = st.one_of(short_text(), json_scalars(), content_parts(), json_values(max_leaves=3))
    message = st.one_of(
        json_scalars(),
        st.fixed_dictionaries(
            {},
            optional={
                "role": st.one_of(st.sampled_from(["user", "system", "assistant"]), json_scalars()),
                "content": content,
            },
        ),
    )
    return st.one_of(st.lists(message, max_size=3), json_values(max_leaves=3))


@functools.cache
def chat_bodies() -> st.SearchStrategy[bytes]:
    everything = st.fixed_dictionaries(
        {"messages": chat_messages()},
        optional={
            "seed": st.one_of(integers_of_every_size(), json_values(max_leaves=2)),
            "stream": st.one_of(st.booleans(), json_values(max_leaves=2)),
            "stream_options": st.one_of(
                json_values(max_leaves=2),
                st.fixed_dictionaries({}, optional={"include_usage": json_scalars()}),
            ),
            "model": st.one_of(
                st.text(max_size=300),
                st.sampled_from(["", "m" * 256, "m" * 257, "gpt-4o-mini"]),
                json_values(max_leaves=2),
            ),
            "max_tokens": st.one_of(integers_of_every_size(), json_scalars()),
            "max_completion_tokens": st.one_of(integers_of_every_size(), json_scalars()),
            "temperature": json_scalars(),
            "n": json_scalars(),
        },
    )
    plausible = st.fixed_dictionaries(
        {
            "messages": st.lists(
                st.fixed_dictionaries(
                    {"role": st.just("user"), "content": st.one_of(short_text(), content_parts())}
                ),
                min_size=1,
                max_size=2,
            ),
            "stream": st.booleans(),
        },
        optional={
            "seed": st.one_of(integers_of_every_size(), st.integers(-(2**63), -1)),
            "max_tokens": st.integers(1, 40),
            "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
            "model": st.text(max_size=20),
        },
    )
    return st.one_of(
        everything.map(lambda v: json_text(v).encode()),
        plausible.map(lambda v: json_text(v).encode()),
        st.sampled_from(FALSY_JSON_BODIES),
        malformed_json(),
        json_values().map(lambda v: json_text(v).encode()),
    )


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_chat_completions(fuzz_target: FuzzTarget) -> None:
    """POST /v1/chat/completions with messages and content parts of every JSON type, stream
    flags, stream_options, model names and seeds of every JSON type and size, and stream id
    headers; streamed answers read to the end, a little, or not at all. Without a JSON
    Content-Type: 415; a body that is JSON but not an object, or a negative seed: 400."""

    @fuzz_settings(examples_for(0.14))
    @given(
        body=chat_bodies(),
        content_type=content_types(),
        stream_id=st.one_of(st.none(), st.just("fresh"), header_values()),
        read=st.sampled_from(READS),
    )
    def run(
        body: bytes, content_type: str | None, stream_id: bytes | str | None, read: str
    ) -> None:
        headers: dict[str, bytes | str] = {}
        if stream_id == "fresh":
            headers["x-tokenwire-stream-id"] = f"fz-chat-{uuid.uuid4().hex[:12]}"
        elif stream_id is not None:
            headers["x-tokenwire-stream-id"] = stream_id
        answer = exchange(
            fuzz_target,
            CHAT,
            "POST",
            "/v1/chat/completions",
            read=read,
            content=body,
            content_type=content_type,
            headers=headers,
            tolerate=BYTES_IN_HEADERS,
        )
        json_answer = answer.content_type.startswith("application/json")
        if answer.status == 200 and answer.whole and json_answer:
            completion = json.loads(answer.body)
            assert completion["object"] == "chat.completion", completion
        check_stream_end(answer)
        if known_non_json_4xx(answer.status, answer.body) == PARSER_4XX:
            return  # the stream id header's bytes: refused before the app
        declared = json_declared(content_type)
        assert (answer.status == 415) == (not declared), (content_type, answer)
        if declared and (json_but_not_an_object(body) or negative_seed(body)):
            assert answer.status == 400, (body[:200], answer)

    with sends(fuzz_target, CHAT):
        run()


# --- timelines ----------------------------------------------------------------------------


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_timelines(fuzz_target: FuzzTarget) -> None:
    """GET /v1/streams/{id}/timeline on every kind of id with any `texts`, and POST
    /v1/timelines with bodies of every shape, mixing real ids, unknown ones and non-strings,
    with `texts` and `drop` of every type. It starts nothing: a body needs a JSON
    Content-Type only when it is not empty (415)."""

    @fuzz_settings(examples_for(0.06, 1.5))
    @given(
        form=st.sampled_from(["GET", "POST"]),
        kind=st.sampled_from(["running", "done", "unknown", "odd"]),
        odd=st.text(min_size=1, max_size=80),
        texts=query_values(st.text(max_size=5), st.sampled_from(["true", "0", "yes", "off"])),
        ids=st.lists(st.one_of(st.just("real"), stream_ids(), json_scalars()), max_size=6),
        flags=st.fixed_dictionaries({}, optional={"texts": json_scalars(), "drop": json_scalars()}),
        other=st.one_of(st.none(), malformed_json(), json_values().map(lambda v: json_text(v))),
        content_type=content_types(),
    )
    def run(
        form: str,
        kind: str,
        odd: str,
        texts: str | None,
        ids: list[Any],
        flags: dict[str, Any],
        other: bytes | str | None,
        content_type: str | None,
    ) -> None:
        stream_id = stream_target(fuzz_target, kind, odd)
        assert stream_id is not None
        if form == "GET":
            params = {} if texts is None else {"texts": texts}
            url = f"/v1/streams/{path_id(stream_id)}/timeline"
            answer = exchange(fuzz_target, TIMELINE, "GET", url, params=params)
            if answer.status == 200:
                assert json.loads(answer.body)["id"] == stream_id
            return
        if other is not None:
            body = other if isinstance(other, bytes) else other.encode()
        else:
            real = [stream_id if i == "real" else i for i in ids]
            body = json_text({"ids": real, **flags}).encode()
        answer = exchange(
            fuzz_target,
            TIMELINES,
            "POST",
            "/v1/timelines",
            content=body,
            content_type=content_type,
        )
        if answer.status == 200:
            assert set(json.loads(answer.body)) == {"timelines", "missing"}
        declared = json_declared(content_type)
        assert (answer.status == 415) == (bool(body) and not declared), (content_type, answer)
        if declared and json_but_not_an_object(body):
            assert answer.status == 400, (body[:100], answer)

    with sends(fuzz_target, TIMELINE), sends(fuzz_target, TIMELINES):
        run()


# --- raw HTTP -----------------------------------------------------------------------------

RAW_TARGETS = [
    b"/",
    b"/healthz",
    b"/v1/streams",
    b"/v1/streams/x?offset=0&wait=0.1",
    b"/v1/sse?seed=1",
    b"/v1/sse?stream=x",
    b"/v1/chunked?stream=x&from=0",
    b"/v1/chat/completions",
    b"/v1/timelines",
    b"/v1/streams/x/timeline",
    b"/v1/ws",
    b"/openapi.json",
    b"*",
    b"http://h/healthz",
    b"/" + b"a" * 9000,
    b"/v1/sse?seed=" + b"9" * 5000,
]
# (Host and Origin come first, drawn by raw_requests.)
GOOD_HEADERS = [
    b"Accept: */*",
    b"Content-Type: application/json",
    b"Content-Type: application/json",
    b"Content-Type: text/plain",
    b"Content-Type: multipart/form-data; boundary=x",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Expect: 100-continue",
    b"Last-Event-ID: 3",
    b"x-tokenwire-stream-id: raw",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Version: 13",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: identity",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: chunked; identity",
    b"Transfer-Encoding: chunked, chunked",
    b"Content-Length: 0",
    b"Content-Length: -1",
    b"Content-Length: 1e3",
    b"Content-Length: 99999999999999999999999",
]
BAD_HEADERS = [
    b"No-Colon",
    b": empty-name",
    b"Bad Name: x",
    b"X-Null: a\x00b",
    b"X-Del: \x7f",
    b"X-High: \xff\xfe",
    b"X-Fold: a\r\n folded",
    b"X-Long: " + b"v" * 20_000,
    b"X-Huge: " + b"v" * (MAX_HEAD_BYTES + 100),  # past max_head_bytes: 431
    b"Host: evil.example\r\nHost: 127.0.0.1",  # a second and a third Host
]


RAW_METHODS = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH"]),
    st.binary(max_size=8),
)
RAW_TARGET = st.one_of(st.sampled_from(RAW_TARGETS), st.binary(max_size=24))
RAW_VERSIONS = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"HTP/1.1", b""]
)
RAW_HEADERS = st.lists(
    st.one_of(
        st.sampled_from(GOOD_HEADERS),
        st.sampled_from(BAD_HEADERS),
        st.tuples(st.binary(max_size=12), st.binary(max_size=24)).map(
            lambda nv: nv[0] + b": " + nv[1]
        ),
    ),
    max_size=5,
)
RAW_CONTENT = st.one_of(st.just(b""), malformed_json(), st.just(b'{"seed": 1}'))
RAW_FRAMINGS = st.sampled_from(
    ["none", "length", "length_short", "chunked", "chunked_cut", "chunked_bad_size"]
)
RAW_EOLS = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def raw_requests(draw: st.DrawFn, port: int) -> tuple[bytes, bool]:
    """A request, maybe malformed, and whether it is complete (so an answer is due). Its
    first header is mostly `Host: 127.0.0.1`, else any Host of `host_samples` or none; an
    Origin of `origin_samples` (own or foreign) follows now and then."""
    method, target, version = draw(RAW_METHODS), draw(RAW_TARGET), draw(RAW_VERSIONS)
    host = draw(
        st.one_of(
            st.just(LOOPBACK_HOST),
            st.just(LOOPBACK_HOST),
            st.sampled_from([b"Host: " + h for h, _ in host_samples(port)]),
            st.none(),
        )
    )
    origins = origin_samples(None if host is None else host.removeprefix(b"Host: "), port)
    origin = draw(st.one_of(st.none(), st.none(), st.sampled_from([o for o, _ in origins])))
    headers = [h for h in (host, None if origin is None else b"Origin: " + origin) if h]
    headers += draw(RAW_HEADERS)
    content, framing = draw(RAW_CONTENT), draw(RAW_FRAMINGS)
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(content))
    elif framing == "length_short":  # the body promised is longer than the body sent
        headers.append(b"Content-Length: %d" % (len(content) + draw(st.integers(1, 10**6))))
    elif framing.startswith("chunked"):
        headers.append(b"Transfer-Encoding: chunked")
        size = b"zz" if framing == "chunked_bad_size" else b"%x" % len(content)
        content = size + b"\r\n" + content + b"\r\n" + b"0\r\n\r\n"
        if framing == "chunked_cut":
            content = content[: draw(st.integers(0, max(0, len(content) - 3)))]
    eol = draw(RAW_EOLS)
    data = method + b" " + target + b" " + version + eol + b"".join(h + eol for h in headers)
    data += eol + content
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    complete = cut is None and framing in ("none", "length", "chunked", "chunked_bad_size")
    return data, complete


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_raw_http(fuzz_target: FuzzTarget) -> None:
    """Malformed HTTP over a plain socket: odd methods, targets and versions, invalid header
    bytes, folded and huge headers (past max_head_bytes too), bodies longer or shorter than
    their Content-Length, chunked bodies cut off or with bad sizes, any Host (loopback,
    foreign, garbage, none), own and foreign Origins, Transfer-Encodings other than chunked,
    requests cut at any byte; the client reads the answer, half-closes, closes or resets. The
    server answers (4xx, never 5xx but a 501 to a Transfer-Encoding other than chunked) or
    closes within the request timeout. A 421 only for a Host it does not answer to, a 403
    (from the app) only for a foreign Origin, a 415 only for a POST not declared JSON, a 431
    only past max_head_bytes."""
    ledger = fuzz_target.ledger
    port = fuzz_target.address[1]

    @fuzz_settings(examples_for(0.06))
    @given(request=raw_requests(port), ending=st.sampled_from(ENDINGS))
    def run(request: tuple[bytes, bool], ending: str) -> None:
        data, complete = request
        if ending == "answer" and not complete:
            ending = "half_close"  # an incomplete request waited for is a slow client
        ledger.send(RAW)
        try:
            answer: RawAnswer | None = raw_exchange(
                fuzz_target.address, data, ending, REQUEST_TIMEOUT_S + 2 * SLOW_CLOSE_MARGIN_S
            )
        except TimeoutError as exc:
            raise ledger.hang(RAW, f"{ending} after {data[:200]!r}") from exc
        if answer is not None:
            head = data.startswith(b"HEAD ")
            fields = head_fields(data)
            odd_coding = unknown_coding(fields.get(b"transfer-encoding", ()))
            tolerate = ALL_KNOWN_4XX + ((UNKNOWN_CODING_501,) if odd_coding else ())
            ledger.check(RAW, answer.status, answer.body, tolerate, has_body=not head)
            check_guard_answer(answer, fields, data, port)

    with sends(fuzz_target, RAW):
        run()


def check_guard_answer(
    answer: RawAnswer, fields: dict[bytes, list[bytes]], data: bytes, port: int
) -> None:
    """What a guard's answer implies about the request (`fields`: its head's)."""
    status, why = answer.status, (data[:300], answer.status, answer.body[:200])
    if status == 421:
        allowed = dict(host_samples(port))
        hosts = fields.get(b"host", [])
        assert hosts and not all(allowed.get(h) for h in hosts), why
    if status == 403 and known_non_json_4xx(status, answer.body) is None:
        own = {
            o for h in fields.get(b"host", []) for o, is_own in origin_samples(h, port) if is_own
        }
        origins = fields.get(b"origin", [])
        assert origins and not all(o in own for o in origins), why
    if status == 415:
        types = fields.get(b"content-type", [])  # none: not declared JSON either
        declared = bool(types) and all(json_declared(t) for t in types)
        assert data.startswith(b"POST ") and not declared, why
    if status == 431:
        assert len(data) > MAX_HEAD_BYTES, why


# --- the guards: Host, Origin, Transfer-Encoding, Content-Type, bodies that are no object ---

CHAT_HI = b'{"messages": [{"role": "user", "content": "hi"}], '
WS_UPGRADE = (
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Version: 13",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
)
BODY_KINDS = ("empty", "object", "falsy", "negative_seed")


@dataclass(frozen=True, slots=True)
class GuardForm:
    """A request the guards stand in front of, and its status once they all let it pass, by
    body kind (BODY_KINDS; "none" for a request without a body). `kind`: "get" (no body),
    "upgrade" (a WebSocket handshake), "start" (a POST that can start a generation: JSON
    Content-Type needed, empty body or not), "post" (JSON Content-Type needed for a body)."""

    method: bytes
    target: bytes
    kind: str
    passes: dict[str, int]
    body_object: bytes = b'{"max_tokens": 2}'
    body_negative_seed: bytes = b'{"seed": -5, "max_tokens": 2}'


def by_body(empty: int, valid: int, falsy: int, negative_seed: int) -> dict[str, int]:
    """A POST form's statuses past the guards, by BODY_KINDS."""
    return dict(zip(BODY_KINDS, (empty, valid, falsy, negative_seed), strict=True))


GET_FORM = {"none": 200}
GUARD_FORMS = {
    "GET /healthz": GuardForm(b"GET", b"/healthz", "get", GET_FORM),
    "HEAD /healthz": GuardForm(b"HEAD", b"/healthz", "get", GET_FORM),
    "GET /v1/sse": GuardForm(b"GET", b"/v1/sse?seed=1&max_tokens=2", "get", GET_FORM),
    "GET /v1/streams/{id}": GuardForm(b"GET", b"/v1/streams/no-such", "get", {"none": 404}),
    "WS /v1/ws": GuardForm(b"GET", b"/v1/ws", "upgrade", {"none": 101}),
    "POST /v1/streams": GuardForm(b"POST", b"/v1/streams", "start", by_body(201, 201, 400, 400)),
    "POST /v1/sse": GuardForm(b"POST", b"/v1/sse", "start", by_body(200, 200, 400, 400)),
    "POST /v1/chunked": GuardForm(b"POST", b"/v1/chunked", "start", by_body(200, 200, 400, 400)),
    "POST /v1/chat/completions": GuardForm(
        b"POST",
        b"/v1/chat/completions",
        "start",
        by_body(400, 200, 400, 400),  # an empty body is no chat request
        CHAT_HI + b'"max_tokens": 2}',
        CHAT_HI + b'"seed": -5}',
    ),
    "POST /v1/webhooks": GuardForm(  # no callback_url in these bodies: 400 once past guards
        b"POST", b"/v1/webhooks", "start", by_body(400, 400, 400, 400)
    ),
    "POST /v1/chunked (resume)": GuardForm(  # a resume reads no field of its body
        b"POST",
        b"/v1/chunked?stream=no-such&from=0",
        "post",
        by_body(404, 404, 400, 404),
    ),
    "POST /v1/timelines": GuardForm(
        b"POST",
        b"/v1/timelines",
        "post",
        by_body(400, 200, 400, 400),
        b'{"ids": ["no-such"]}',
    ),
}
GUARD_CONTENT_TYPES = (
    b"application/json",
    b"application/json; charset=utf-8",
    b"APPLICATION/JSON",
    None,
    b"",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
)


@dataclass(frozen=True, slots=True)
class GuardCase:
    form: str  # a key of GUARD_FORMS
    host: bytes | None = b"127.0.0.1"
    origin: bytes | None = None
    transfer_encoding: tuple[bytes, ...] = ()  # header lines (none: Content-Length)
    content_type: bytes | None = None
    body_kind: str = "none"
    body: bytes = b""

    def request(self) -> bytes:
        form = GUARD_FORMS[self.form]
        lines = [form.method + b" " + form.target + b" HTTP/1.1"]
        lines += [] if self.host is None else [b"Host: " + self.host]
        lines += [] if self.origin is None else [b"Origin: " + self.origin]
        lines += WS_UPGRADE if form.kind == "upgrade" else ()
        lines += [] if self.content_type is None else [b"Content-Type: " + self.content_type]
        body = b""
        if form.kind in ("start", "post") and self.transfer_encoding:
            lines += [b"Transfer-Encoding: " + value for value in self.transfer_encoding]
            body = (
                b"%x\r\n%s\r\n" % (len(self.body), self.body) if self.body else b""
            ) + b"0\r\n\r\n"
        elif form.kind in ("start", "post"):
            lines.append(b"Content-Length: %d" % len(self.body))
            body = self.body
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def expected(self, port: int) -> int:
        """The status due: the guards in their order (Host, Origin, Transfer-Encoding, then
        the endpoint's Content-Type), else the form's own."""
        form = GUARD_FORMS[self.form]
        if not self.host:  # an HTTP/1.1 request needs one Host (RFC 9112, 3.2); empty is none
            return 400
        if not dict(host_samples(port))[self.host]:
            return 421
        if self.origin is not None and not dict(origin_samples(self.host, port))[self.origin]:
            return 403
        if unknown_coding(self.transfer_encoding):
            return 501
        if not json_declared(self.content_type) and (
            form.kind == "start" or (form.kind == "post" and self.body)
        ):
            return 415
        return form.passes[self.body_kind]


@st.composite
def guard_cases(draw: st.DrawFn, port: int) -> GuardCase:
    name = draw(st.sampled_from(sorted(GUARD_FORMS)))
    form = GUARD_FORMS[name]
    hosts = [h for h, _ in host_samples(port)]
    host = draw(st.one_of(st.just(b"127.0.0.1:%d" % port), st.sampled_from(hosts), st.none()))
    origins = [o for o, _ in origin_samples(host, port)]
    origin = draw(st.one_of(st.none(), st.sampled_from(origins)))
    if form.kind in ("get", "upgrade"):
        return GuardCase(name, host, origin)
    codings = draw(st.one_of(st.just(()), st.sampled_from(TRANSFER_ENCODINGS)))
    content_type = draw(st.sampled_from(GUARD_CONTENT_TYPES))
    body_kind = draw(st.sampled_from(BODY_KINDS))
    body = {
        "empty": b"",
        "object": form.body_object,
        "falsy": draw(st.sampled_from(FALSY_JSON_BODIES)),
        "negative_seed": form.body_negative_seed,
    }[body_kind]
    return GuardCase(name, host, origin, codings, content_type, body_kind, body)


def guard_examples(port: int) -> list[GuardCase]:
    """One case for each guard, always tried."""
    json_type = b"application/json"
    return [
        GuardCase("GET /healthz", b"evil.example"),
        GuardCase("WS /v1/ws", b"evil.example:%d" % port),
        GuardCase("WS /v1/ws", b"[::1]:%d" % port, b"http://[::1]:%d" % port),
        GuardCase("GET /v1/sse", b"127.0.0.1:%d" % port, b"http://evil.example"),
        GuardCase("GET /healthz", b"localhost:1", b"http://localhost:1"),
        GuardCase(
            "POST /v1/streams",
            transfer_encoding=(b"gzip, chunked",),
            content_type=json_type,
            body_kind="object",
            body=b'{"max_tokens": 2}',
        ),
        GuardCase("POST /v1/sse", body_kind="empty"),
        GuardCase("POST /v1/chunked", content_type=b"text/plain", body_kind="empty"),
        GuardCase(
            "POST /v1/chat/completions",
            content_type=json_type,
            body_kind="negative_seed",
            body=CHAT_HI + b'"seed": -5}',
        ),
        GuardCase("POST /v1/streams", content_type=json_type, body_kind="falsy", body=b"[]"),
        GuardCase("HEAD /healthz", None),
    ]


@fuzz
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_fuzz_the_guards(fuzz_target: FuzzTarget) -> None:
    """Well-formed requests to every kind of endpoint (GET, HEAD, a WebSocket handshake,
    POSTs that start generations, a resume, timelines) with a Host among loopback forms,
    foreign names, garbage and other addresses (or none), an Origin own or foreign (or none),
    a Transfer-Encoding chunked or not, any Content-Type and bodies empty, valid, JSON but
    not an object, or with a negative seed. The answer is exactly the one due: 421 for a
    Host the server does not answer to, else 403 for a foreign Origin, else 501 for a
    Transfer-Encoding other than chunked, else 415 for a starting POST (or a body) not
    declared JSON, else the endpoint's own answer (400 for a body that is no object, or a
    negative seed). A coding the server's parser refuses (uvicorn's: `chunked, chunked`;
    tests/stack_behaviour.py) is refused before the app sees Host or Origin: 501 then (or the
    parser's own 400 or 501), whatever they are; so is a missing Host, where the parser
    refuses it. The refusals of the first three close the connection."""
    ledger = fuzz_target.ledger
    port = fuzz_target.address[1]
    seen: set[int] = set()

    def check(case: GuardCase) -> None:
        data, due = case.request(), case.expected(port)
        odd_coding = unknown_coding(case.transfer_encoding)
        ledger.send(GUARDS)
        try:
            answer = raw_exchange(fuzz_target.address, data, "answer", STREAM_DEADLINE_S)
        except TimeoutError as exc:
            raise ledger.hang(GUARDS, f"{data[:300]!r}") from exc
        assert answer is not None, f"no answer to {data[:300]!r}"
        head = data.startswith(b"HEAD ")
        tolerate: tuple[str, ...] = (PARSER_4XX, UNKNOWN_CODING_501) if odd_coding else ()
        tolerate += (PARSER_4XX,) if case.host is None else ()
        ledger.check(GUARDS, answer.status, answer.body, tolerate, has_body=not head)
        parser_refused = known_non_json_4xx(answer.status, answer.body) == PARSER_4XX
        refused_coding = odd_coding and (answer.status == 501 or parser_refused)
        assert answer.status == due or refused_coding, (
            f"{data[:300]!r}: {due} due, got {answer.status} {answer.body[:200]!r}"
        )
        if answer.status in (421, 403, 501):
            assert closes(answer.headers), answer.headers
        seen.add(answer.status)

    @fuzz_settings(examples_for(0.06))
    @given(case=guard_cases(port))
    def run(case: GuardCase) -> None:
        check(case)

    with sends(fuzz_target, GUARDS):
        for case in guard_examples(port):
            check(case)
        assert seen >= {421, 403, 501, 415, 400, 101, 200}, seen
        run()


# --- slow clients -------------------------------------------------------------------------

SLOW_HEAD = b"POST /v1/streams HTTP/1.1\r\n%s\r\nContent-Length: 2\r\nX-Slow: " % LOOPBACK_HOST
JSON_HEADER = b"Content-Type: application/json\r\n"


def slow_client(
    address: tuple[str, int], kind: str, path: str
) -> tuple[str, float, RawAnswer | None]:
    """One slow client; returns (what happened, when, the answer if any)."""
    bound = REQUEST_TIMEOUT_S + SLOW_CLOSE_MARGIN_S
    start = time.monotonic()
    if kind == "ws_silent":  # opens a WebSocket, never sends its first message
        url = "ws://{}:{}/v1/ws".format(*address)
        with ws_connect(url) as ws:
            try:
                messages = read_until_closed(ws, start + bound)
            except TimeoutError:
                return "open", time.monotonic() - start, None
            refused = ws.close_code == 1008 and len(messages) == 1
            outcome = "refused" if refused and "error" in json.loads(messages[0]) else "closed"
            return outcome, time.monotonic() - start, None
    with socket.create_connection(address, timeout=bound + 1) as sock:
        if kind == "silent":  # connects, sends nothing
            sock.settimeout(bound)
            try:
                data = sock.recv(1)
            except TimeoutError:
                return "open", time.monotonic() - start, None
            return ("closed" if not data else "data"), time.monotonic() - start, None
        if kind == "slowloris":  # a head that never ends, one byte at a time
            sock.sendall(SLOW_HEAD)
            while time.monotonic() - start < bound:
                try:
                    sock.sendall(b"a")
                    sock.settimeout(0.2)
                    if not sock.recv(1):
                        return "closed", time.monotonic() - start, None
                    return "data", time.monotonic() - start, None
                except TimeoutError:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    return "closed", time.monotonic() - start, None
            return "open", time.monotonic() - start, None
        # a whole head, then a body cut off: the client waits for the answer
        if kind == "short_length":
            head = b"POST %s HTTP/1.1\r\n%s\r\nContent-Length: 100\r\n%s\r\n" % (
                path.encode(),
                LOOPBACK_HOST,
                JSON_HEADER,
            )
            sock.sendall(head + b'{"seed": 1')
        else:
            head = b"POST %s HTTP/1.1\r\n%s\r\nTransfer-Encoding: chunked\r\n%s\r\n" % (
                path.encode(),
                LOOPBACK_HOST,
                JSON_HEADER,
            )
            sock.sendall(head + b"40\r\n{")
        reader = Reader(sock, start + bound)
        answer = None
        try:
            answer = read_answer(reader)
            while reader.fill():  # the rest of the body would follow: the server closes
                pass
        except TimeoutError:
            return "open", time.monotonic() - start, answer
        return "answered", time.monotonic() - start, answer


HEAD_KINDS = ("silent", "slowloris")  # the slow clients only a request timeout cuts off


@fuzz
@lacking(REQUEST_TIMEOUT)
@pytest.mark.timeout(FUZZ_TIMEOUT_S)
def test_slow_clients_are_cut_off_in_time(fuzz_target: FuzzTarget) -> None:
    """Many slow clients at once: connections that send nothing and heads that never finish
    (slowloris) are closed within the request timeout, WebSockets that never send their
    first message are refused (1008) within it; a body cut off (by Content-Length or chunked)
    on an endpoint that reads it gets 408 with a JSON error within it, and the connection
    is closed."""
    per_kind = max(3, fuzz_requests() // 250)
    jobs = [
        (kind, BODY_ENDPOINTS[k % len(BODY_ENDPOINTS)])
        for kind in ("silent", "slowloris", "ws_silent", "short_length", "cut_chunked")
        for k in range(per_kind)
    ]
    ledger = fuzz_target.ledger
    # without a request timeout, heads that never end hold a threaded server's threads:
    # they go last, so that the other slow clients' answers are still checked
    batches = [jobs]
    if REQUEST_TIMEOUT in under_test().lacks:
        jobs.sort(key=lambda job: job[0] in HEAD_KINDS)
        batches = [
            [j for j in jobs if j[0] not in HEAD_KINDS],
            [j for j in jobs if j[0] in HEAD_KINDS],
        ]
    results: list[tuple[str, float, RawAnswer | None]] = []
    for batch in batches:
        with ThreadPoolExecutor(max_workers=min(len(batch), 64)) as pool:
            results += pool.map(lambda job: slow_client(fuzz_target.address, *job), batch)
    ledger.send(SLOW, len(jobs))
    bound = REQUEST_TIMEOUT_S + SLOW_CLOSE_MARGIN_S
    held: list[tuple[str, str]] = []  # heads the server did not time out
    for (kind, path), (outcome, after, answer) in zip(jobs, results, strict=True):
        if kind in HEAD_KINDS and outcome == "open" and REQUEST_TIMEOUT in under_test().lacks:
            held.append((kind, outcome))  # the guard's own failure, checked last
            continue
        if outcome == "open":
            ledger.hangs += 1
        assert after <= bound + 0.5, (kind, path, outcome, after)
        if kind in ("silent", "slowloris", "ws_silent"):
            assert outcome == ("refused" if kind == "ws_silent" else "closed"), (kind, outcome)
            assert after >= REQUEST_TIMEOUT_S - 0.2, (kind, after)
        else:
            assert outcome == "answered" and answer is not None, (kind, path, outcome, after)
            ledger.check(SLOW, answer.status, answer.body)
            assert answer.status == 408, (kind, path, answer)
    guard_holds(REQUEST_TIMEOUT, not held, f"{len(held)} heads held open: {held[:3]}")


# --- the run's verdict --------------------------------------------------------------------


def log_problems(log_path: Path) -> list[str]:
    text = log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line]


@fuzz
def test_the_server_survived_the_fuzzing(fuzz_target: FuzzTarget) -> None:
    """After every fuzz test above: each endpoint was fuzzed, the sample had its size, the
    log has no traceback or ERROR line, and the memory came back."""
    ledger = fuzz_target.ledger
    time.sleep(SETTLE_S)  # generations end or get cancelled; finished ones are forgotten
    rss_after = fuzz_target.server.rss_bytes()
    problems = log_problems(fuzz_target.server.log_path)
    print(ledger.table())
    print(f"server log: {len(problems)} traceback or ERROR lines")
    print(
        f"server RSS after warm-up {fuzz_target.rss_warm / 2**20:.1f} MiB, "
        f"after the run and {SETTLE_S:g} s {rss_after / 2**20:.1f} MiB"
    )
    unfuzzed = [e for e in FUZZED_ENDPOINTS if ledger.sent[e] == 0]
    assert not unfuzzed, f"no request was sent to {unfuzzed} (run the whole module)"
    assert ledger.total() >= 0.8 * fuzz_requests(), ledger.table()
    assert ledger.server_errors == 0 and ledger.hangs == 0
    assert not problems, "\n".join(problems[:20])
    growth = rss_after - fuzz_target.rss_warm
    assert growth <= RSS_TOLERANCE_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB"


# --- bugs the fuzzing found (strict xfail: a fix makes them fail, to be unmarked) ----------


@dataclass
class ProbeServer:
    server: ServerProcess
    http: httpx.Client

    def log_since(self, offset: int) -> str:
        time.sleep(0.3)  # uvicorn logs an application error after the answer
        return self.server.log_path.read_bytes()[offset:].decode(errors="replace")

    def log_size(self) -> int:
        return self.server.log_path.stat().st_size


@pytest.fixture(scope="module")
def probe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeServer]:
    with fuzzed_server(tmp_path_factory, "fuzz-probes") as (server, http):
        yield ProbeServer(server, http)


# Found by this fuzzing and fixed in servers/ while the suite was being written: regression
# tests now.


@pytest.mark.parametrize("digits", [19, 4301, 10_000])
def test_a_last_event_id_of_any_length_is_refused_not_a_500(
    probe_server: ProbeServer, digits: int
) -> None:
    """Was: int() of more than 4300 digits raised ValueError in resume_index: 500."""
    headers = {"last-event-id": "1" * digits}
    response = probe_server.http.post("/v1/sse", headers=headers, json={"stream_id": "any"})
    assert response.status_code == 400, response.text
    assert "error" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/sse?seed={2**64}&max_tokens=1&stream=big-seed-q", None),
        ("GET", f"/v1/sse?seed={2**63}&max_tokens=1&stream=big-seed-q63", None),
        ("POST", "/v1/streams", {"seed": 2**64 - 1, "max_tokens": 1, "stream_id": "big-seed-b"}),
        ("POST", "/v1/streams", {"seed": 2**63, "max_tokens": 1, "stream_id": "big-seed-b63"}),
    ],
)
def test_every_stream_the_server_accepts_has_a_timeline(
    probe_server: ProbeServer, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """Was: GET /v1/sse took any seed, but a timeline with a seed beyond 64 bits could not be
    encoded (500 on GET /v1/streams/{id}/timeline and POST /v1/timelines)."""
    http = probe_server.http
    created = http.request(method, path, json=body)
    if created.status_code >= 400:
        assert created.status_code < 500 and "error" in created.json(), created.text
        return
    stream_id = (body or {}).get("stream_id") or path.rsplit("stream=", 1)[1]
    time.sleep(0.05)
    assert http.get(f"/v1/streams/{stream_id}/timeline").status_code == 200
    assert http.post("/v1/timelines", json={"ids": [stream_id]}).status_code == 200


def test_a_websocket_closed_right_after_a_refused_first_message_logs_no_traceback(
    probe_server: ProbeServer,
) -> None:
    """Was: the refusal sent to a client that had already closed raised WebSocketDisconnect
    out of the endpoint: "ERROR: Exception in ASGI application" and a traceback."""
    offset = probe_server.log_size()
    url = probe_server.server.base_url.replace("http://", "ws://") + "/v1/ws"
    with ws_connect(url) as ws:
        # the bad message and the close frame in one write: the server reads both before
        # it answers, so it answers a client that has left
        ws.protocol.send_text(b"not json")
        ws.protocol.send_close(1000)
        ws.socket.sendall(b"".join(ws.protocol.data_to_send()))
        time.sleep(0.2)
        drop_connection(ws)
    log = probe_server.log_since(offset)
    assert "Traceback" not in log and "ERROR" not in log, log[-2000:]


def test_a_websocket_that_never_sends_its_first_message_is_closed(
    probe_server: ProbeServer,
) -> None:
    """Was: the endpoint waited for the first message without a timeout, holding the
    connection and its task for good."""
    url = probe_server.server.base_url.replace("http://", "ws://") + "/v1/ws"
    start = time.monotonic()
    with ws_connect(url) as ws, contextlib.suppress(ConnectionClosed, TimeoutError):
        ws.recv(timeout=REQUEST_TIMEOUT_S + SLOW_CLOSE_MARGIN_S)
        ws.recv(timeout=REQUEST_TIMEOUT_S + SLOW_CLOSE_MARGIN_S)
    assert ws.close_code == 1008
    assert time.monotonic() - start <= REQUEST_TIMEOUT_S + SLOW_CLOSE_MARGIN_S


def dribbled_connection_stays(address: tuple[str, int], request: bytes) -> tuple[bytes, bool]:
    """Send a head and part of its body, then one more body byte every 0.25 s for two
    request timeouts and a half; (the first bytes of the answer, whether the server kept the
    connection open that long)."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        end = time.monotonic() + 2.5 * REQUEST_TIMEOUT_S
        while time.monotonic() < end:
            sock.settimeout(0.25)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                data = None
            except ConnectionResetError:  # closed with our bytes unread: a reset
                return answer, False
            if data == b"":
                return answer, False
            answer += data or b""
            try:
                sock.sendall(b"x")
            except (ConnectionResetError, BrokenPipeError):
                return answer, False
        return answer, True


DRIBBLED = [
    pytest.param(
        b"POST /v1/streams HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{",
        id="a body the endpoint reads (408)",
    ),
    pytest.param(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n",
        id="a body nobody reads (200)",
        marks=lacking(UNREAD_BODY_TIMEOUT),  # the server reads it on, to keep the connection
    ),
]


@pytest.mark.parametrize("request_bytes", DRIBBLED)
def test_a_request_body_that_never_ends_does_not_hold_the_connection(
    probe_server: ProbeServer, request_bytes: bytes
) -> None:
    """Was (the 408 case): read_body answered 408 after request_timeout_s, but kept the
    connection open for the body's remaining bytes; the 408 now says Connection: close."""
    answer, stays = dribbled_connection_stays(
        host_port(probe_server.server.base_url), request_bytes
    )
    assert answer.startswith(b"HTTP/1.1 "), answer
    what = f"still open after {2.5 * REQUEST_TIMEOUT_S:g} s: {answer[:60]!r}"
    guard_holds(UNREAD_BODY_TIMEOUT, not stays, what)


def test_long_prompts_are_not_kept_after_their_streams_are_dropped(
    probe_server: ProbeServer,
) -> None:
    """Was: the mock's plan cache (the last 4096 requests) was keyed by the whole request,
    prompt included, so the last 4096 prompts (up to max_prompt_chars each) stayed in
    memory after their streams were dropped."""
    http = probe_server.http
    prompt = "p" * 99_000
    for _ in range(20):  # warm: the same prompt
        assert http.post("/v1/streams", json={"max_tokens": 1, "prompt": prompt}).status_code == 201
    before = probe_server.server.rss_bytes()
    for k in range(120):  # 120 distinct prompts of 99 kB: about 12 MB if they were kept
        body = {"seed": 1, "max_tokens": 1, "prompt": f"{k}{prompt}"}
        assert http.post("/v1/streams", json=body).status_code == 201
    time.sleep(SETTLE_S)  # every one of those streams is done and forgotten
    growth = probe_server.server.rss_bytes() - before
    assert growth < 6 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB"


NON_JSON_4XX = [
    pytest.param(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id="unknown path (404)"),
    pytest.param(
        b"DELETE /v1/streams HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id="wrong method (405)"
    ),
]
# Answered by the server before the app sees the request: the app cannot shape these.
CONTROL_BYTE_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX: \x01\r\n\r\n"
BELOW_THE_APP = [
    pytest.param(CONTROL_BYTE_HEAD, id="malformed head (the parser's 400)"),
    pytest.param(
        b"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
        id="WebSocket handshake without a key (400)",
    ),
]


@pytest.mark.parametrize("request_bytes", NON_JSON_4XX)
def test_every_4xx_has_a_json_error_member(probe_server: ProbeServer, request_bytes: bytes) -> None:
    """(The router's 404 and 405 were {"detail": ..}; they are {"error": ..} now.)"""
    answer = raw_exchange(host_port(probe_server.server.base_url), request_bytes, "answer", 5)
    assert answer is not None and 400 <= answer.status < 500, answer
    body = json.loads(answer.body) if answer.body.startswith(b"{") else None
    assert isinstance(body, dict) and "error" in body, answer


@pytest.mark.parametrize("request_bytes", BELOW_THE_APP)
def test_requests_refused_below_the_app_get_a_plain_4xx(
    probe_server: ProbeServer, request_bytes: bytes
) -> None:
    """The server's HTTP parser and its WebSocket handshake refuse these before the app runs:
    a 4xx with the server's own body (the app never sees the request, so it cannot answer in
    its `{"error": ..}` shape; tests/stack_behaviour.py; aiohttp's handshake runs in the app
    and is refused with JSON), never a 5xx. A parser that takes a
    control byte in a header value (h11) passes that request on: the app answers it."""
    answer = raw_exchange(host_port(probe_server.server.base_url), request_bytes, "answer", 5)
    assert answer is not None
    if request_bytes == CONTROL_BYTE_HEAD and under_test().control_bytes_pass:
        assert answer.status == 200, answer
        return
    assert 400 <= answer.status < 500, answer
    assert known_non_json_4xx(answer.status, answer.body) is not None, answer


def test_a_websocket_to_a_path_that_has_none_is_refused_with_a_json_error(
    probe_server: ProbeServer,
) -> None:
    """(Was an empty 403 to the handshake.) Refused as the endpoint refuses a bad first
    message, or at the handshake with a JSON error: either way, never without one."""
    url = probe_server.server.base_url.replace("http://", "ws://") + "/healthz"
    try:
        with ws_connect(url) as ws:
            messages = read_until_closed(ws, time.monotonic() + HTTP_TIMEOUT_S)
            code = ws.close_code
    except InvalidStatus as exc:
        assert 400 <= exc.response.status_code < 500
        assert "error" in json.loads(exc.response.body or b"null")
        return
    assert code == 1008 and len(messages) == 1 and "error" in json.loads(messages[0])


# --- the guards (servers/access.py, servers/connection_guard.py, servers/request_parsing.py):
# the cases the fuzzing samples, each pinned once.


def probe_address(probe_server: ProbeServer) -> tuple[str, int]:
    return host_port(probe_server.server.base_url)


def test_an_oversize_request_head_gets_431_and_the_connection_closes(
    probe_server: ProbeServer,
) -> None:
    """A 100 KB header (max_head_bytes is 32 KiB): the protocol writes 431 with a JSON error
    and `Connection: close`, then closes the connection, whatever the client still sends. A
    server whose parser bounds the head itself (`head_by_parser`) answers with its own body
    (and status: `head_status`)."""
    offset = probe_server.log_size()
    request = b"GET /healthz HTTP/1.1\r\n%s\r\nX-Big: %s\r\n\r\n" % (
        LOOPBACK_HOST,
        b"v" * 100_000,
    )
    with socket.create_connection(probe_address(probe_server), timeout=5) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(request)
        reader = Reader(sock, time.monotonic() + 5)
        answer = read_answer(reader)
        assert answer is not None and answer.status == under_test().head_status, answer
        assert answer.ends_connection(), answer.headers
        if under_test().head_by_parser:
            assert known_non_json_4xx(answer.status, answer.body) == PARSER_4XX, answer
        else:
            assert "max_head_bytes" in json.loads(answer.body)["error"]
        while reader.fill():  # TimeoutError if the server kept the connection open
            pass
    log = probe_server.log_since(offset)
    assert "Traceback" not in log and "ERROR" not in log, log[-2000:]


def test_a_transfer_encoding_other_than_chunked_gets_501(probe_server: ProbeServer) -> None:
    """RFC 9112: a transfer coding the server does not know is 501 (with a JSON error, and
    the connection closed: the body's length cannot be known); h11 refuses it itself."""
    request = (
        b"POST /v1/streams HTTP/1.1\r\n%s\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" % LOOPBACK_HOST
    )
    answer = raw_exchange(probe_address(probe_server), request, "answer", 5)
    assert answer is not None and answer.status == 501, answer
    assert closes(answer.headers), answer.headers
    if under_test().refuses_coding(["gzip", "chunked"]) == 501:
        assert known_non_json_4xx(501, answer.body) == PARSER_4XX, answer
    else:
        assert "Transfer-Encoding" in json.loads(answer.body)["error"]


def test_head_healthz_is_200(probe_server: ProbeServer) -> None:
    response = probe_server.http.head("/healthz")
    assert response.status_code == 200 and response.content == b""


HANDSHAKE = b"\r\n".join(WS_UPGRADE)


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n", id="GET /healthz"),
        pytest.param(
            b"GET /v1/ws HTTP/1.1\r\nHost: evil.example\r\n%s\r\n\r\n" % HANDSHAKE,
            id="WebSocket upgrade",
        ),
    ],
)
def test_a_foreign_host_gets_421(probe_server: ProbeServer, request_bytes: bytes) -> None:
    """DNS rebinding: a page of evil.example whose name resolves to 127.0.0.1 sends
    `Host: evil.example`; the server answers to loopback names only."""
    answer = raw_exchange(probe_address(probe_server), request_bytes, "answer", 5)
    assert answer is not None and answer.status == 421, answer
    assert closes(answer.headers), answer.headers
    assert "evil.example" in json.loads(answer.body)["error"]


def test_a_foreign_origin_gets_403_even_on_a_get(probe_server: ProbeServer) -> None:
    """An EventSource of a cross-site page cannot start a generation."""
    headers = {"origin": "http://evil.example"}
    response = probe_server.http.get("/v1/sse", params={"seed": 1}, headers=headers)
    assert response.status_code == 403, response.text
    assert "evil.example" in response.json()["error"]


@pytest.mark.parametrize("content_type", [None, "text/plain"])
@pytest.mark.parametrize("path", ["/v1/sse", "/v1/streams", "/v1/chunked"])
def test_a_starting_post_not_declared_json_gets_415_even_when_empty(
    probe_server: ProbeServer, path: str, content_type: str | None
) -> None:
    """A form or a text/plain POST from a cross-site page needs no preflight: it must not
    start a generation, body or not."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = probe_server.http.post(path, content=b"", headers=headers)
    assert response.status_code == 415, response.text
    assert "Content-Type" in response.json()["error"]


@pytest.mark.parametrize("body", FALSY_JSON_BODIES)
@pytest.mark.parametrize(
    "path", ["/v1/streams", "/v1/sse", "/v1/chunked", "/v1/chat/completions", "/v1/timelines"]
)
def test_a_json_body_that_is_not_an_object_gets_400(
    probe_server: ProbeServer, path: str, body: bytes
) -> None:
    """(Was: a falsy body read as the default request, a stream started.)"""
    headers = {"content-type": JSON_MEDIA_TYPE}
    response = probe_server.http.post(path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "error" in response.json()


@pytest.mark.parametrize("body", FALSY_JSON_BODIES)
def test_a_chunked_resume_whose_body_is_not_an_object_gets_400(
    probe_server: ProbeServer, body: bytes
) -> None:
    """(Was, since the routes moved to the stack-neutral core: a resume's body went unread,
    the stream resumed; found by this fuzzing on asgi@uvicorn.)"""
    created = probe_server.http.post("/v1/streams", json={"max_tokens": 40})
    assert created.status_code == 201, created.text
    params = {"stream": created.json()["id"], "from": 0}
    headers = {"content-type": JSON_MEDIA_TYPE}
    response = probe_server.http.post("/v1/chunked", params=params, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "object" in response.json()["error"]


def test_a_negative_seed_gets_400_on_chat_completions(probe_server: ProbeServer) -> None:
    """(Was: its absolute value was taken.)"""
    body = {"messages": [{"role": "user", "content": "hi"}], "seed": -5}
    response = probe_server.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert "seed" in response.json()["error"]["message"]


def test_a_websocket_resume_with_a_field_it_does_not_take_is_refused(
    probe_server: ProbeServer,
) -> None:
    """A resume takes resume, from and framing only: anything else is an error message and
    close code 1008."""
    created = probe_server.http.post("/v1/streams", json={"max_tokens": 40})
    assert created.status_code == 201, created.text
    url = probe_server.server.base_url.replace("http://", "ws://") + "/v1/ws"
    with ws_connect(url) as ws:
        ws.send(json.dumps({"resume": created.json()["id"], "from": 0, "bogus": 1}))
        messages = read_until_closed(ws, time.monotonic() + HTTP_TIMEOUT_S)
    assert ws.close_code == 1008, (ws.close_code, messages)
    assert len(messages) == 1 and "bogus" in json.loads(messages[0])["error"], messages
