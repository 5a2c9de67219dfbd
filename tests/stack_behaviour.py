"""What each HTTP server does on its own, below the app: the one table the server suites
(abuse, fuzz) read where the stacks differ.

The stack-neutral core (servers/) answers the same on every stack, its refusals JSON
`{"error": ..}`. Before it, each server's own HTTP parser refuses some requests itself, with
its own status and body; and the connection-level guards of `servers/connection_guard.py`
(request-head size, write timeout, WebSocket control-frame rate and queue bound) are uvicorn
protocol classes, so another server has what its own settings give (its launcher in
`servers/stacks/` maps our settings onto them), or nothing. Each entry says, for one server,
how its parser refuses and which guards it lacks; a stack's server is the part of its name
after `@` (the whole name for a server of its own, such as aiohttp). A server without an
entry fails the suites at collection, naming this module: adding a stack's server is one
`Server(...)` entry here.

A guard a server lacks (`Server.lacks`, each with what happens instead, checked against the
server's settings and source) makes its test a strict xfail on that server (`lacking`): the
test's other assertions still hold there and fail as usual, only the guard's own
(`guard_holds`, which raises `GuardAbsent`) is expected to fail; a server that gains the
guard makes the test XPASS, which fails the run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from support import stack_under_test

# the guards of servers/connection_guard.py a server may lack (keys of `Server.lacks`)
REQUEST_TIMEOUT = "request timeout"
HEAD_BOUND = "request-head memory bound"
CLOSE_STALL = "closing a connection without stalling the others"
UNREAD_BODY_TIMEOUT = "a time bound on a body the endpoint does not read"
WRITE_TIMEOUT = "write timeout"
WS_CONTROL_RATE = "WebSocket control-frame rate"
WS_QUEUE_BOUND = "WebSocket queue bound"


def chunked_twice(codings: list[str]) -> int | None:
    """llhttp (uvicorn's parser) refuses `chunked` applied more than once with a plain 400;
    uvicorn's guarded protocol turns its other refusals of a coding into our 501."""
    return 400 if codings.count("chunked") > 1 else None


def last_not_chunked(codings: list[str]) -> int | None:
    """hyper (granian's parser) refuses a Transfer-Encoding whose last coding is not chunked
    (400, empty body); it passes the others to the app (our 501)."""
    return 400 if codings and codings[-1] != "chunked" else None


def last_not_chunked_or_twice(codings: list[str]) -> int | None:
    """aiohttp's parser refuses a Transfer-Encoding whose last coding is not chunked, or
    with chunked more than once (400, text); it passes the others to the app (our 501)."""
    return last_not_chunked(codings) or chunked_twice(codings)


def gunicorn_codings(codings: list[str]) -> int | None:
    """gunicorn's parser refuses a coding it does not know (501, HTML; it knows chunked,
    gzip, deflate, compress and identity), and then as aiohttp's does (400, HTML)."""
    known = {"chunked", "gzip", "deflate", "compress", "identity"}
    return 501 if set(codings) - known else last_not_chunked_or_twice(codings)


def any_but_chunked(codings: list[str]) -> int | None:
    """h11 (hypercorn's parser) refuses any Transfer-Encoding but `chunked` alone (501, empty
    body): the app never sees one."""
    return 501 if codings and codings != ["chunked"] else None


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    # the body of the parser's own refusals (a malformed request line or header, a bad
    # Content-Length, an oversize head where `head_by_parser` says so), as a regex
    parser_body: bytes
    # the statuses its parser answers with that body
    parser_statuses: frozenset[int]
    # the body with which its WebSocket handshake refuses an upgrade it cannot accept (no
    # key, a version but 13), as a regex
    handshake_body: bytes
    # the status its parser answers a Transfer-Encoding with, before the app (which answers
    # any coding but chunked alone with 501 JSON); None: the app sees it
    refuses_coding: Callable[[list[str]], int | None]
    # an oversize head (past max_head_bytes) is refused by the parser itself (`head_status`
    # and its parser_body) rather than by our guard (431 with a JSON error naming
    # max_head_bytes)
    head_by_parser: bool
    # its parser takes a control byte in a header value (`X: \x01`): the app answers
    control_bytes_pass: bool = False
    # the status it answers an oversize head with (431 from our guard or a parser bounded
    # there; aiohttp's parser says 400, "line too long")
    head_status: int = 431
    # the guards it does not have: guard -> what happens instead
    lacks: dict[str, str] = field(default_factory=dict)

    def parser_refusal(self, status: int, body: bytes) -> bool:
        """An answer of the parser, before the app (its body is not JSON)."""
        return status in self.parser_statuses and re.fullmatch(self.parser_body, body) is not None

    def handshake_refusal(self, status: int, body: bytes) -> bool:
        """A refusal of the WebSocket handshake, before the app."""
        return 400 <= status < 500 and re.fullmatch(self.handshake_body, body, re.S) is not None


SERVERS = {
    s.name: s
    for s in (
        Server(
            "uvicorn",
            parser_body=rb"Invalid HTTP request received\.",
            parser_statuses=frozenset({400}),
            handshake_body=rb"Failed to open a WebSocket connection.*",
            refuses_coding=chunked_twice,
            head_by_parser=False,
        ),
        Server(
            "granian",  # hyper and tungstenite (Rust); HTTP1Settings set by its launcher
            parser_body=rb"",
            parser_statuses=frozenset({400, 431}),
            handshake_body=rb'No "Sec-WebSocket-[^"]*" header',
            refuses_coding=last_not_chunked,
            head_by_parser=True,  # max_buffer_size
            lacks={
                WRITE_TIMEOUT: (
                    "granian has no write timeout (HTTP1Settings: header_read_timeout, "
                    "keep_alive, max_buffer_size, pipeline_flush): a push response to a client "
                    "that never reads stays open as long as the client keeps it, its memory "
                    "bounded by backpressure, and the generation runs to its end"
                ),
                WS_CONTROL_RATE: (
                    "granian has no WebSocket control-frame limit (no WebSocket settings but "
                    "on/off): tungstenite answers every ping and reads on, so a ping flood runs "
                    "to its end, no 1008; memory stays bounded (one pong pending at most)"
                ),
                WS_QUEUE_BOUND: (
                    "granian has no WebSocket queue bound: tungstenite keeps one pong pending "
                    "for a client that does not read and reads on, so memory stays bounded but "
                    "the connection takes every ping and stays open"
                ),
            },
        ),
        Server(
            "hypercorn",  # h11 and wsproto; Config set by its launcher
            parser_body=rb"",
            parser_statuses=frozenset({400, 431, 501}),
            handshake_body=rb"",
            refuses_coding=any_but_chunked,
            head_by_parser=True,  # h11_max_incomplete_size
            control_bytes_pass=True,  # h11 takes any byte but NUL and whitespace
            lacks={
                WRITE_TIMEOUT: (
                    "hypercorn has no write timeout (its TCP server awaits the socket's drain "
                    "without one): a push response to a client that never reads stays open as "
                    "long as the client keeps it, its memory bounded by backpressure, and the "
                    "generation runs to its end"
                ),
                WS_CONTROL_RATE: (
                    "hypercorn has no WebSocket control-frame limit (websocket settings: "
                    "max_message_size, ping_interval): wsproto answers every ping, no 1008; a "
                    "client that does not read its pongs is held back by backpressure (hypercorn "
                    "stops reading)"
                ),
                WS_QUEUE_BOUND: (
                    "hypercorn has no WebSocket queue bound: it answers pings until the "
                    "socket's buffers are full (about 6 MiB of pings), then stops reading, so "
                    "memory stays bounded but the connection is not closed, and /healthz waits "
                    "up to most of a second meanwhile"
                ),
            },
        ),
        Server(
            "gunicorn",  # gthread worker; limits set by servers/stacks/flask_gunicorn.py
            parser_body=rb"(?s)<html>.*</html>\s*",
            parser_statuses=frozenset({400, 414, 431, 501}),
            handshake_body=rb"(?s).*",
            refuses_coding=gunicorn_codings,
            head_by_parser=True,
            lacks={
                REQUEST_TIMEOUT: (
                    "gunicorn's gthread worker has no request-head timeout (its timeout is "
                    "the worker's heartbeat; keepalive runs between requests only): a "
                    "connection that sends nothing stays open, and a head that never ends "
                    "holds one of the worker's threads as long as the client keeps it"
                ),
                UNREAD_BODY_TIMEOUT: (
                    "gunicorn reads a body the app left unread to its end before the next "
                    "request on the connection, without a time bound: a client that trickles "
                    "it holds the connection (and a thread) as long as it keeps trickling"
                ),
                CLOSE_STALL: (
                    "gunicorn's gthread worker closes each connection it ends (a refused "
                    "request head, an answer with Connection: close) on its main thread, "
                    "gracefully (gunicorn.util.close_graceful: half-close, then read up to 64 "
                    "KiB for up to 2 s until the client closes); meanwhile the worker "
                    "dispatches no other request. The adapter shuts the connections it drops "
                    "itself first (servers/stacks/flask_app.py, let_go); gunicorn's own "
                    "refusals it cannot reach"
                ),
                WS_CONTROL_RATE: (
                    "flask-sock (simple-websocket) has no control-frame limit: it answers "
                    "every ping from its reader thread, no 1008"
                ),
                WS_QUEUE_BOUND: (
                    "flask-sock (simple-websocket) has no queue bound: its reader thread "
                    "answers pings with blocking sends, so a client that does not read holds "
                    "that thread (memory bounded by the socket's buffers), not closed"
                ),
            },
        ),
        Server(
            "aiohttp",  # its own server; limits set by servers/stacks/aiohttp_server.py
            # its parser's refusals: the exception's message as text/plain, on an HTTP/1.0
            # status line ("Invalid header value char", "Missing 'Host' header", ...)
            parser_body=rb"(?s)[^{].*",
            parser_statuses=frozenset({400}),
            # a handshake aiohttp refuses raises in `prepare`: our middleware's JSON
            handshake_body=rb'\{"error":"Handshake error: [^"]*"\}',
            refuses_coding=last_not_chunked_or_twice,
            head_by_parser=True,
            head_status=400,  # LineTooLong: a header line over max_field_size
            lacks={
                REQUEST_TIMEOUT: (
                    "aiohttp has no request-head timeout (keepalive_timeout runs between "
                    "requests only): a connection that sends nothing, or a head that never "
                    "ends, stays open as long as the client keeps it (one coroutine, no thread)"
                ),
                HEAD_BOUND: (
                    "aiohttp refuses a header line over max_field_size (32 KiB) with its "
                    "parser's 400, but keeps reading what the client sends until its answer "
                    "is out and the connection closed: about 16 MiB of RSS per 32 MB head "
                    "(measured; 8 at once, 144 MiB), freed when the connection ends"
                ),
                WRITE_TIMEOUT: (
                    "aiohttp has no write timeout: a push response to a client that never "
                    "reads waits on the transport's drain as long as the client keeps the "
                    "connection, memory bounded by backpressure"
                ),
                WS_CONTROL_RATE: (
                    "aiohttp has no WebSocket control-frame limit: with autoping it answers "
                    "every ping, no 1008"
                ),
                WS_QUEUE_BOUND: (
                    "aiohttp has no WebSocket queue bound: it answers pings while the "
                    "transport takes them, then waits on drain; not closed"
                ),
            },
        ),
    )
}


def server_of(stack: str) -> str:
    """The HTTP server of a stack: `framework@server`, or a server of its own (aiohttp)."""
    return stack.partition("@")[2] or stack


@functools.cache
def under_test() -> Server:
    """The server of the stack under test (TOKENWIRE_TEST_STACK)."""
    name = server_of(stack_under_test())
    if name not in SERVERS:
        raise LookupError(
            f"tests/stack_behaviour.py has no entry for server {name!r} (stack "
            f"{stack_under_test()}): add how its parser refuses and which guards it lacks"
        )
    return SERVERS[name]


class GuardAbsent(AssertionError):
    """A guard of servers/connection_guard.py did not act (see `Server.lacks`)."""


def guard_holds(guard: str, holds: bool, what: str) -> None:
    """Assert one guard's effect; its failure is the only one `lacking` expects."""
    if not holds:
        raise GuardAbsent(f"{guard}: {what}")


def lacking(guard: str) -> pytest.MarkDecorator:
    """A strict xfail, by GuardAbsent only, where the server under test lacks `guard`."""
    reason = under_test().lacks.get(guard)
    return pytest.mark.xfail(
        reason is not None, reason=reason or "", strict=True, raises=GuardAbsent
    )


def closes(headers: dict[bytes, bytes]) -> bool:
    """The answer's `Connection` says close (granian merges its own tokens in the value)."""
    tokens = headers.get(b"connection", b"").lower().split(b",")
    return b"close" in (t.strip() for t in tokens)
