"""Helpers for the server fuzz suite (`tests/servers/test_fuzz.py`): the fuzz server's settings,
the request budget, the ledger that counts every request and checks every answer, JSON of every
shape, the request bodies the published OpenAPI schema leaves out, the values the guards in front
of every endpoint look at (Host, Origin, Transfer-Encoding, Content-Type), and small raw HTTP and
WebSocket clients.

Known server bugs are kept out of the fuzzing here, each next to the strict xfail test in
`test_fuzz.py` that reproduces it: the suite stays green while a bug is open and fails when it
is fixed (the xfail passes), which is the signal to widen the strategy again.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import socket
import struct
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from stack_behaviour import closes, under_test

from servers.sources.spec import SourceSpec
from wire.sse import SSEStreamDecoder

# --- the server under fuzz ----------------------------------------------------------------

# Short streams at a fast, steady rhythm (about 16 tokens in 5 ms; the `local` preset has no
# stalls), so that a stream read to its end is cheap, and one closed early is often still
# generating.
FUZZ_SPEC = SourceSpec(preset="local", ttft_ms=1, tokens_per_s=4000, tokens_per_response=16)
REQUEST_TIMEOUT_S = 1.0  # heads (and bodies the endpoints read) must arrive within this
MAX_LONG_POLL_WAIT_S = 2.0
RETENTION_S = 0.5  # finished streams are forgotten quickly, so memory must come back
FUZZ_SERVER_ARGS = (
    "--request-timeout-s",
    str(REQUEST_TIMEOUT_S),
    "--max-long-poll-wait-s",
    str(MAX_LONG_POLL_WAIT_S),
    "--retention-s",
    str(RETENTION_S),
    "--idle-timeout-s",
    "2.0",
    "--resume-grace-s",
    "0.5",
)
HTTP_TIMEOUT_S = 10.0  # no answer (or no next chunk) within this is a hang
STREAM_DEADLINE_S = 15.0  # a whole streaming answer within this, or it is a hang
SLOW_CLOSE_MARGIN_S = 1.5  # a connection the server must drop: within timeout + this
SETTLE_S = RETENTION_S + 1.5  # retention, plus the reaper's one-second period and a margin
RSS_TOLERANCE_BYTES = 20 * 1024 * 1024

# --- the budget ---------------------------------------------------------------------------

REQUESTS_ENV = "TOKENWIRE_FUZZ_REQUESTS"
DEFAULT_REQUESTS = 500  # the bounded sample of the default suite (well under 40 s)


def fuzz_requests() -> int:
    """The total number of fuzz requests to aim for: `TOKENWIRE_FUZZ_REQUESTS`, or the
    default suite's bounded sample."""
    raw = os.environ.get(REQUESTS_ENV, "")
    if not raw:
        return DEFAULT_REQUESTS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{REQUESTS_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


def examples_for(share: float, requests_per_example: float = 1.0) -> int:
    """Hypothesis examples for a test that gets `share` of the budget."""
    return max(1, math.ceil(fuzz_requests() * share / requests_per_example))


def fuzz_settings(max_examples: int) -> settings:
    """Random every run (a failure prints its seed and the shrunk example); no example
    database, so nothing is written into the working tree."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )


# --- known bugs the strategies stay clear of (each has a strict xfail test) -------------------

# test_a_request_body_that_never_ends_does_not_hold_the_connection[a body nobody reads (200)]:
# bodies are cut off, then the client waits for the answer or leaves; it never keeps dribbling
# bytes.

# 4xx answers that are not `{"error": ..}` JSON, made below the app (the HTTP server's parser,
# its WebSocket handshake; each server's own, as tests/stack_behaviour.py describes them):
# tolerated (and counted) where a fuzzer can provoke them; see
# test_every_4xx_has_a_json_error_member.
PARSER_4XX = "HTTP parser refusal (not JSON)"
WS_HANDSHAKE_4XX = "websocket handshake refusal (the server's own)"

# Prompts stay short for speed (generation_bodies adds a few long ones).
MAX_FUZZ_PROMPT_CHARS = 64
JSON_MEDIA_TYPE = "application/json"


def known_non_json_4xx(status: int, body: bytes) -> str | None:
    """The label of an answer made below the app by the server under test, else None (a 501
    its parser makes to a Transfer-Encoding counts here too)."""
    server = under_test()
    if server.parser_refusal(status, body):
        return PARSER_4XX
    if server.handshake_refusal(status, body):
        return WS_HANDSHAKE_4XX
    return None


# --- the guards in front of every endpoint ---------------------------------------------------
# servers/access.py and servers/request_parsing.py: a Host the server does not answer to is 421,
# an Origin that is not the server's own is 403, a Transfer-Encoding other than chunked alone is
# 501 (RFC 9112: the one 5xx that is right), a POST that can start a generation without
# `Content-Type: application/json` is 415, a JSON body that is not an object is 400. The values
# below carry what the server must make of them, so that the fuzz tests can check its answers.

LOOPBACK_HOST = b"Host: 127.0.0.1"  # what raw requests send unless a test draws another Host
MAX_HEAD_BYTES = 32 * 1024  # the server's default max_head_bytes: a longer head gets 431
UNKNOWN_CODING_501 = "501 to a Transfer-Encoding other than chunked"
GUARD_STATUSES = (421, 403, 415, 431, 501)
FALSY_JSON_BODIES = (b"[]", b"null", b"0", b"false", b'""')  # JSON, but not an object: 400


def host_samples(port: int) -> tuple[tuple[bytes, bool], ...]:
    """`Host` values, each with whether the server (no --allowed-host) answers to it: the
    loopback names and addresses with any port; foreign names; values that are not a host
    (empty, a user part, a bad port, a path); IP literals that are not loopback."""
    p = str(port).encode()
    return (
        (b"127.0.0.1", True),
        (b"127.0.0.1:" + p, True),
        (b"localhost", True),
        (b"localhost:1", True),
        (b"LOCALHOST:" + p, True),
        (b"[::1]", True),
        (b"[::1]:" + p, True),
        (b"127.9.9.9:0", True),
        (b"evil.example", False),
        (b"evil.example:" + p, False),
        (b"localhost.evil.example", False),
        (b"127.0.0.1.evil.example:" + p, False),
        (b"", False),  # no host named: as none (400 to HTTP/1.1)
        (b"user@127.0.0.1", False),
        (b"user:pw@localhost:" + p, False),
        (b"127.0.0.1:99999", False),
        (b"127.0.0.1:x", False),
        (b"localhost:-1", False),
        (b"[::1", False),
        (b"127.0.0.1/x", False),
        (b"127.0.0.1?x", False),
        (b"10.0.0.1", False),
        (b"192.168.1.1:" + p, False),
        (b"0.0.0.0", False),
        (b"169.254.0.1", False),
        (b"[::2]:" + p, False),
        (b"[2001:db8::1]", False),
    )


def origin_samples(host: bytes | None, port: int) -> tuple[tuple[bytes, bool], ...]:
    """`Origin` values, each with whether it is the server's own origin for a request with
    this `Host` (scheme http, the Host as written, in a browser's spelling or not; only for a
    Host of `host_samples` the server answers to); the others are foreign whatever the Host:
    other names, ports and schemes, `null`, malformed."""
    p = str(port).encode()
    own: tuple[bytes, ...] = ()
    if host is not None and dict(host_samples(port)).get(host):
        own = (b"http://" + host, b"HTTP://" + host, b"http://" + host + b"/")
    foreign = (
        b"http://evil.example",
        b"http://evil.example:" + p,
        b"https://127.0.0.1:" + p,
        b"http://127.0.0.1:1",
        b"http://127.0.0.2:" + p,
        b"null",
        b"",
        b"*",
        b"http://",
        b"http://127.0.0.1:" + p + b"/path",
        b"http://user@127.0.0.1:" + p,
        b"file://",
        b"not an origin",
    )
    return tuple((o, True) for o in own) + tuple((o, False) for o in foreign)


# `Transfer-Encoding` header lines (one request each): exactly chunked, in any case, passes;
# anything else is 501, or the server parser's own refusal when it refuses it first.
TRANSFER_ENCODINGS = (
    (b"chunked",),
    (b"Chunked",),
    (b"gzip",),
    (b"gzip, chunked",),
    (b"identity, chunked",),
    (b"chunked; identity",),
    (b"chunked, chunked",),
    (b"identity",),
    (b"gzip", b"chunked"),
)


def transfer_codings(values: Iterable[bytes]) -> list[bytes]:
    """The codings of `Transfer-Encoding` header values, in order, lower case."""
    return [c.strip().lower() for v in values for c in v.split(b",") if c.strip()]


def unknown_coding(values: Iterable[bytes]) -> bool:
    """A Transfer-Encoding is given, and it is not exactly `chunked`: 501 (or the parser's
    400)."""
    codings = transfer_codings(values)
    return bool(codings) and codings != [b"chunked"]


def json_declared(content_type: bytes | str | None) -> bool:
    """The Content-Type declares JSON (parameters and case aside)."""
    if content_type is None:
        return False
    text = content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type
    return text.partition(";")[0].strip().lower() == JSON_MEDIA_TYPE


def json_but_not_an_object(body: bytes) -> bool:
    """The body is JSON (as Python reads it), but not an object: `[]`, `null`, `0`, `false`,
    `""` and the like, which the endpoints refuse (400)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return not isinstance(value, dict)


def negative_seed(body: bytes) -> bool:
    """The body is a JSON object whose `seed` is a negative integer (400 on every endpoint)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    seed = value.get("seed") if isinstance(value, dict) else None
    return isinstance(seed, int) and not isinstance(seed, bool) and seed < 0


def head_fields(data: bytes) -> dict[bytes, list[bytes]]:
    """The header fields of the first request head in `data`, by lower-case name, values
    stripped and in order (the complete lines only, when the head does not end)."""
    fields: dict[bytes, list[bytes]] = defaultdict(list)
    lines = data.split(b"\n")
    for line in lines[1:-1]:
        line = line.removesuffix(b"\r")
        if not line:
            break
        name, colon, value = line.partition(b":")
        if colon:
            fields[name.strip().lower()].append(value.strip())
    return fields


# --- the ledger ---------------------------------------------------------------------------


class Hang(AssertionError):
    """A request that did not finish within its bound."""


@dataclass
class Ledger:
    """Every fuzz request, counted when sent, and every answer, checked: no 5xx, and every
    4xx a JSON object with an `error` member (the OpenAI endpoint's is an object too)."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    tolerated: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    not_implemented: int = 0  # 501 to a Transfer-Encoding other than chunked: the one 5xx allowed
    hangs: int = 0

    def send(self, endpoint: str, n: int = 1) -> None:
        self.sent[endpoint] += n

    def total(self) -> int:
        return sum(self.sent.values())

    def hang(self, endpoint: str, what: str) -> Hang:
        self.hangs += 1
        return Hang(f"{endpoint}: {what}")

    def check(
        self,
        endpoint: str,
        status: int,
        body: bytes,
        tolerate: Iterable[str] = (),
        has_body: bool = True,
    ) -> None:
        """Check one answer; `has_body` is False for an answer to HEAD (headers only). A 501
        passes only when `tolerate` holds UNKNOWN_CODING_501 (the caller saw a Transfer-Encoding
        other than chunked in the request), and is then counted apart, and checked as a 4xx."""
        self.statuses[endpoint][status] += 1
        if status == 501 and UNKNOWN_CODING_501 in tolerate:
            self.not_implemented += 1
        elif status >= 500:
            self.server_errors += 1
            raise AssertionError(f"{endpoint} answered {status}: {body[:500]!r}")
        if not (400 <= status < 500 or status == 501) or not has_body:
            return
        label = known_non_json_4xx(status, body)
        if label is not None and label in tolerate:
            self.tolerated[label] += 1
            return
        try:
            decoded = json.loads(body)
        except ValueError:
            raise AssertionError(
                f"{endpoint} answered {status} without JSON: {body[:300]!r}"
            ) from None
        assert isinstance(decoded, dict) and "error" in decoded, (
            f"{endpoint} answered {status} without an error member: {body[:300]!r}"
        )

    def table(self) -> str:
        lines = [f"{'endpoint':<34} {'requests':>8}  statuses"]
        for endpoint, n in sorted(self.sent.items()):
            statuses = ", ".join(f"{s}: {k}" for s, k in sorted(self.statuses[endpoint].items()))
            lines.append(f"{endpoint:<34} {n:>8}  {statuses}")
        lines.append(f"{'total':<34} {self.total():>8}")
        lines.append(f"5xx answers: {self.server_errors}; hangs: {self.hangs}")
        lines.append(
            "501 answers to a Transfer-Encoding other than chunked (the one 5xx tolerated): "
            f"{self.not_implemented}"
        )
        totals: Counter[int] = sum(self.statuses.values(), Counter())
        guards = ", ".join(f"{s}: {totals[s]}" for s in GUARD_STATUSES)
        lines.append(f"guard answers, all endpoints: {guards}")
        for label, n in sorted(self.tolerated.items()):
            lines.append(f"tolerated (known, see xfail tests): {label}: {n}")
        return "\n".join(lines)


# --- what a complete stream ends with -----------------------------------------------------


def is_terminal(payload: str) -> bool:
    """The framings' last message: `{"done":true,..}`, `[DONE]`, or an error object."""
    if payload == "[DONE]":
        return True
    try:
        decoded = json.loads(payload)
    except ValueError:
        return False
    return isinstance(decoded, dict) and (decoded.get("done") is True or "error" in decoded)


def sse_payloads(body: bytes) -> list[str]:
    decoder = SSEStreamDecoder()
    return [e.data for e in [*decoder.feed(body), *decoder.close()]]


def ndjson_payloads(body: bytes) -> list[str]:
    return [line for line in body.decode().split("\n") if line]


# --- JSON of every shape ------------------------------------------------------------------
# Strategies are built once (functools.cache): building a recursive one is slow, drawing is not.

EDGE_INTEGERS = (
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    2**53,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    10**30,
    -(10**30),
)


@functools.cache
def integers_of_every_size() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from(EDGE_INTEGERS),
        st.integers(min_value=-5, max_value=100),
        st.integers(),
        st.integers(min_value=0, max_value=3).map(lambda k: 10 ** (10**k) - 1),
    )


@functools.cache
def short_text() -> st.SearchStrategy[str]:
    return st.text(max_size=MAX_FUZZ_PROMPT_CHARS)


@functools.cache
def json_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        integers_of_every_size(),
        st.floats(allow_nan=True, allow_infinity=True),
        short_text(),
    )


@functools.cache
def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    return st.recursive(
        json_scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(short_text(), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def content_types() -> st.SearchStrategy[str | None]:
    """Mostly JSON (the endpoints take no other body: 415), sometimes anything."""
    return st.one_of(
        st.just(JSON_MEDIA_TYPE),
        st.just(JSON_MEDIA_TYPE),
        st.just(JSON_MEDIA_TYPE),
        st.sampled_from(
            [
                None,
                "application/json; charset=utf-8",
                "APPLICATION/JSON",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/jsonx",
                "",
            ]
        ),
    )


def json_text(value: Any) -> str:
    """JSON as Python writes it: big integers as they are, NaN and Infinity as bare words
    (which strict parsers, the server's included, refuse)."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False)


@functools.cache
def malformed_json() -> st.SearchStrategy[bytes]:
    """Bytes that are almost JSON, or not at all."""
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"{",
                b'{"seed": 1',
                b'{"seed": 1}}',
                b"[" * 2000 + b"]" * 2000,
                b'{"prompt": "\\ud800"}',
                b'{"prompt": "\xff\xfe"}',
                b"1e400",
                b'{"seed": 1e400}',
                b"\xef\xbb\xbf{}",
                b"null",
                b"NaN",
                b'{"seed": 1, "seed": -1}',
                b"{'seed': 1}",
                b"\x00",
            ]
        ),
        json_values().map(lambda v: json_text(v).encode()[:-1]),
    )


# --- the request bodies FastAPI's schema leaves out ----------------------------------------
# The endpoints read their bodies themselves (to bound them), so FastAPI publishes no request
# body; these schemas follow docs/wire-protocol.md, so that schemathesis generates bodies too.

GENERATION_PROPERTIES: dict[str, dict[str, Any]] = {
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 65536},
    "prompt": {"type": "string", "maxLength": MAX_FUZZ_PROMPT_CHARS},
    "stream_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}
GENERATION_REQUEST_SCHEMA = {
    "type": "object",
    "properties": GENERATION_PROPERTIES,
    "additionalProperties": False,
}
WEBHOOK_REQUEST_SCHEMA = {
    "type": "object",
    "properties": {
        **GENERATION_PROPERTIES,
        "callback_url": {"type": "string", "maxLength": 300},
        "batch_ms": {"type": "number", "minimum": 0, "maximum": 1000},
    },
    "additionalProperties": False,
}
CHAT_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                    "content": {
                        "anyOf": [
                            {"type": "string", "maxLength": MAX_FUZZ_PROMPT_CHARS},
                            {
                                "type": "array",
                                "maxItems": 3,
                                "items": {
                                    "type": "object",
                                    "required": ["type", "text"],
                                    "properties": {
                                        "type": {"type": "string", "enum": ["text"]},
                                        "text": {
                                            "type": "string",
                                            "maxLength": MAX_FUZZ_PROMPT_CHARS,
                                        },
                                    },
                                },
                            },
                        ]
                    },
                },
            },
        },
        "model": {"type": "string", "maxLength": 256},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},  # negative: 400
        "stream": {"type": "boolean"},
        "stream_options": {
            "type": "object",
            "properties": {"include_usage": {"type": "boolean"}},
        },
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 65536},
        "max_completion_tokens": {"type": "integer", "minimum": 1, "maximum": 65536},
    },
}
TIMELINES_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["ids"],
    "properties": {
        "ids": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
        "texts": {"type": "boolean"},
        "drop": {"type": "boolean"},
    },
}
REQUEST_BODIES = {
    ("post", "/v1/streams"): GENERATION_REQUEST_SCHEMA,
    ("post", "/v1/sse"): GENERATION_REQUEST_SCHEMA,
    ("post", "/v1/chunked"): GENERATION_REQUEST_SCHEMA,
    ("post", "/v1/chat/completions"): CHAT_REQUEST_SCHEMA,
    ("post", "/v1/webhooks"): WEBHOOK_REQUEST_SCHEMA,
    ("post", "/v1/timelines"): TIMELINES_REQUEST_SCHEMA,
}
STREAM_ID_HEADER = {
    "name": "x-tokenwire-stream-id",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}


def with_request_bodies(published: dict[str, Any]) -> dict[str, Any]:
    """The published schema plus the request bodies (and the chat endpoint's stream id
    header) that docs/wire-protocol.md describes."""
    schema = copy.deepcopy(published)
    for (method, path), body in REQUEST_BODIES.items():
        operation = schema["paths"][path][method]
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    chat = schema["paths"]["/v1/chat/completions"]["post"]
    chat.setdefault("parameters", []).append(STREAM_ID_HEADER)
    return schema


# --- raw HTTP over a plain socket ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawAnswer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    version: bytes = b"HTTP/1.1"

    def ends_connection(self) -> bool:
        """`Connection: close`, or an HTTP/1.0 answer without keep-alive (aiohttp's parser
        refusals)."""
        kept = self.headers.get(b"connection", b"").lower() == b"keep-alive"
        return closes(self.headers) or (self.version == b"HTTP/1.0" and not kept)


class Reader:
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buffer = b""
        self.eof = False

    def fill(self) -> bool:
        """Read more; False at the end of the connection."""
        if self.eof:
            return False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            if not self.fill():
                return None
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def exactly(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            if not self.fill():
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def read_answer(reader: Reader, head_request: bool = False) -> RawAnswer | None:
    """One HTTP/1.1 answer (interim 1xx answers skipped; no body after a HEAD request); None
    when the server closed before a whole one."""
    while True:
        head = reader.until(b"\r\n\r\n")
        if head is None:
            return None
        status_line, *header_lines = head.split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise AssertionError(f"not an HTTP status line: {status_line[:100]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        for line in header_lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200 and status != 101:
            continue
        break
    if status in (101, 204, 304) or head_request:
        return RawAnswer(status, headers, b"", parts[0])
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line = reader.until(b"\r\n")
            if size_line is None:
                return None
            size = int(size_line.split(b";")[0], 16)
            chunk = reader.exactly(size + 2)
            if chunk is None:
                return None
            if size == 0:
                return RawAnswer(status, headers, body, parts[0])
            body += chunk[:-2]
    if b"content-length" in headers:
        content = reader.exactly(int(headers[b"content-length"]))
        return None if content is None else RawAnswer(status, headers, content, parts[0])
    while reader.fill():
        pass
    return RawAnswer(status, headers, reader.buffer, parts[0])


ENDINGS = ("answer", "half_close", "close", "reset")


def raw_exchange(
    address: tuple[str, int], data: bytes, ending: str, deadline_s: float
) -> RawAnswer | None:
    """Send `data`, then: `answer` reads one answer; `half_close` shuts the sending side and
    reads until the server closes; `close` and `reset` leave at once (a FIN, an RST).
    Raises TimeoutError when the server neither answers nor closes by the deadline."""
    with socket.create_connection(address, timeout=deadline_s) as sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(data)
        if ending == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return None
        if ending == "close":
            return None
        if ending == "half_close":
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        reader = Reader(sock, time.monotonic() + deadline_s)
        answer = read_answer(reader, head_request=data.startswith(b"HEAD "))
        if ending == "half_close" and answer is not None and answer.status != 101:
            while reader.fill():  # the server must close a half-closed connection
                pass
        return answer


def host_port(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)
