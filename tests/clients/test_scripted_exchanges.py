"""Every transport's exchange logic, run by the scripted driver (`clients.scripted_io`): no
server, no sockets, no clock. The server's side is written with the wire codecs, so the
bytes are the real framings, and every stamp in a result is one the script handed in.

Covered: a normal stream to its end on every registered transport (the requests sent, the
tokens and their stamps); a drop and a resume on every transport (the resume request,
nothing lost or repeated) and a leave; protocol violations and the error kind each
becomes; polling's empty polls and short polling's grid; the scripted driver's own rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from support import TRANSPORT_NAMES

from clients.exchange import (
    DROP,
    HANDLERS,
    Arrival,
    Callback,
    HTTPCall,
    ListenForCallbacks,
    OpenWebSocket,
    OpenWebTransport,
    Reply,
)
from clients.interface import ClientSettings, StreamResult
from clients.scripted_io import (
    ANSWERED,
    CALLBACK_URL,
    SCRIPTED,
    ScriptedRun,
    ScriptMismatch,
    Step,
    run_script,
)
from errors import ConnectFailed, ErrorKind
from transports import TRANSPORTS
from wire import ndjson
from wire import sse as sse_wire
from wire.framing import JSON, OPENAI
from wire.messages import GenerationRequest, dumps
from wire.poll import encode_batch
from wire.raw import AS_SENT
from wire.webhook import DeliveryHead, encode_delivery, sign

SID = "s1"
MODEL = "m"
TEXTS = ["Hel", "lo", ",", " world"]
N = len(TEXTS)
REQUEST = GenerationRequest(seed=7, max_tokens=N, stream_id=SID)
SECRET = "a-test-secret-of-enough-length"
WALL_S = 1_700_000_000.0
SETTINGS = ClientSettings("http://scripted.invalid", webhook_secret=SECRET)


def at(ms: float) -> int:
    """The stamp (perf_counter_ns) `ms` milliseconds into a script."""
    return 1_000_000_000 + round(ms * 1_000_000)


def run(transport: str, script: Sequence[Step], **settings: Any) -> ScriptedRun:
    """The registered transport's exchange logic for `REQUEST`, answered from `script`."""
    logic = TRANSPORTS.get(transport).exchange
    return run_script(logic, script, replace(SETTINGS, **settings), REQUEST, transport)


def assert_whole(result: StreamResult, recv_ns: list[int], end_ns: int) -> None:
    """Every token once and in order, stamped as the script said; the stream ended."""
    assert result.error is None
    assert result.indices == list(range(N)) and result.texts == TEXTS
    assert result.recv_ns == recv_ns
    assert result.end_ns == end_ns and result.end_tokens == N


def assert_left(result: StreamResult, left_ns: int, received: int) -> None:
    """Left for good at `left_ns` after `received` tokens: no end, no error, no drop."""
    assert result.left_ns == left_ns and result.drops_ns == []
    assert result.indices == list(range(received)) and result.end_ns is None
    assert result.error is None


# --- the server's side, in the real framings ------------------------------------------------


def json_token(i: int) -> str:
    return JSON.encode_token(SID, MODEL, i, TEXTS[i])


JSON_END = JSON.encode_end(SID, MODEL, N, None)


def head(path: str, content_type: str, now_ns: int, status: int = 200) -> Reply:
    """A streamed response's head (its body comes in reads)."""
    return Reply(status, {"content-type": content_type}, b"", path, now_ns)


@dataclass(frozen=True)
class PushWire:
    """How a push transport's server writes one connection: the steps that answer its
    opening (an HTTP head; none for a WebSocket), a read per token, the terminal message,
    and the steps after it (an HTTP body's end; a WebSocket is read no further)."""

    opening: Callable[[int], list[Step]]
    token: Callable[[int], bytes | str]
    end: bytes | str
    closing: list[Step]

    def connection(self, sent: range, start_ms: float, ended: bool = True) -> list[Step]:
        """Opened at `start_ms`, then the tokens `sent` a millisecond apart, then (`ended`)
        the terminal message a millisecond after the last."""
        steps = self.opening(at(start_ms))
        steps += [Arrival(self.token(i), at(start_ms + 1 + k)) for k, i in enumerate(sent)]
        if ended:
            steps += [Arrival(self.end, at(start_ms + 1 + len(sent))), *self.closing]
        return steps


def sse_event(i: int) -> bytes:
    return sse_wire.encode_event(json_token(i), str(i))


def ndjson_line(i: int) -> bytes:
    return ndjson.encode_line(json_token(i))


SSE_END = b"".join(sse_wire.encode_event(p) for p in JSON_END)
NDJSON_END = b"".join(ndjson.encode_line(p) for p in JSON_END)
# the streamed HTTP bodies: each token's bytes, and the terminal message's
BODIES: dict[str, tuple[Callable[[int], bytes], bytes]] = {
    "sse": (sse_event, SSE_END),
    "chunked": (ndjson_line, NDJSON_END),
}
PUSH = {
    "sse": PushWire(
        lambda now: [head("/v1/sse", f"{sse_wire.MEDIA_TYPE}; charset=utf-8", now)],
        sse_event,
        SSE_END,
        [None],
    ),
    "chunked": PushWire(
        lambda now: [head("/v1/chunked", ndjson.MEDIA_TYPE, now)], ndjson_line, NDJSON_END, [None]
    ),
    "websocket": PushWire(lambda now: [], json_token, JSON_END[0], []),
    "webtransport": PushWire(lambda now: [], json_token, JSON_END[0], []),
}


def created(path: str, status: int, now_ns: int) -> Reply:
    """The answer that creates a polled stream or a webhook subscription."""
    return Reply(status, {}, dumps({"id": SID}).encode(), path, now_ns)


def polled(
    offset: int, count: int, now_ns: int, done: bool = False, error: str | None = None
) -> Reply:
    """One poll's answer: `count` tokens from `offset`."""
    body = encode_batch(offset, TEXTS[offset : offset + count], done, error)
    return Reply(200, {}, dumps(body).encode(), f"/v1/streams/{SID}", now_ns)


def delivery(
    seq: int, start: int, payloads: list[str], now_ns: int, secret: str = SECRET
) -> Callback:
    """One signed webhook delivery, taken at `now_ns`."""
    body = encode_delivery(DeliveryHead(SID, seq, start), payloads)
    headers = {"x-tokenwire-signature": sign(secret, int(WALL_S), body)}
    return Callback("POST", "/callbacks/scripted", headers, body, now_ns, WALL_S)


def tokens(first: int, count: int) -> list[str]:
    return [json_token(i) for i in range(first, first + count)]


# --- a normal stream, on every registered transport -----------------------------------------

POLLS = [
    created("/v1/streams", 201, at(0)),
    polled(0, 2, at(5)),
    polled(2, 0, at(107)),  # an empty poll
    polled(2, 2, at(210), done=True),
]
POLLED_STAMPS = [at(5), at(5), at(210), at(210)], at(210)
PUSHED_STAMPS = [at(1), at(2), at(3), at(4)], at(5)
NORMAL: dict[str, tuple[Sequence[Step], tuple[list[int], int]]] = {
    **{name: (wire.connection(range(N), 0), PUSHED_STAMPS) for name, wire in PUSH.items()},
    "short_poll": (POLLS, POLLED_STAMPS),
    "long_poll": (POLLS, POLLED_STAMPS),
    "webhook": (
        [
            created("/v1/webhooks", 202, at(0)),
            delivery(0, 0, tokens(0, 1), at(1)),
            delivery(1, 1, tokens(1, 3), at(2)),
            delivery(2, N, JSON_END, at(3)),
        ],
        ([at(1), at(2), at(2), at(2)], at(3)),
    ),
}


def test_every_registered_transport_has_a_scripted_stream() -> None:
    assert sorted(NORMAL) == sorted(TRANSPORT_NAMES)


@pytest.mark.parametrize("transport", TRANSPORT_NAMES)
def test_a_stream_runs_to_its_end_stamped_by_the_script(transport: str) -> None:
    script, (recv_ns, end_ns) = NORMAL[transport]
    done = run(transport, script)
    assert_whole(done.result, recv_ns, end_ns)
    assert done.result.drops_ns == [] and done.result.left_ns is None
    assert DROP not in done.effects


def test_sse_and_chunked_post_the_request_with_the_framing() -> None:
    assert run("sse", NORMAL["sse"][0]).calls() == [
        HTTPCall(
            "POST",
            "/v1/sse",
            params={"framing": "json"},
            json=REQUEST.to_json(),
            headers={"accept": sse_wire.MEDIA_TYPE, "cache-control": "no-store"},
        )
    ]
    assert run("chunked", NORMAL["chunked"][0]).calls() == [
        HTTPCall(
            "POST",
            "/v1/chunked",
            params={"framing": "json"},
            json=REQUEST.to_json(),
            headers={"accept": ndjson.MEDIA_TYPE},
        )
    ]


def test_a_websocket_sends_the_request_with_its_framing_as_the_first_message() -> None:
    done = run("websocket", NORMAL["websocket"][0])
    assert done.effects[0] == OpenWebSocket("/v1/ws")
    assert done.sent() == [dumps({**REQUEST.to_json(), "framing": "json"})]


def test_webtransport_sends_the_websockets_messages_on_a_session_of_its_own() -> None:
    done = run("webtransport", NORMAL["webtransport"][0])
    assert done.effects[0] == OpenWebTransport("/v1/wt")
    assert OpenWebSocket("/v1/ws") not in done.effects
    assert done.sent() == [dumps({**REQUEST.to_json(), "framing": "json"})]


@pytest.mark.parametrize("transport", ["sse", "chunked"])
def test_a_token_is_stamped_by_the_read_that_completes_it(transport: str) -> None:
    token, end = BODIES[transport]
    e0, e1, e2, e3 = (token(i) for i in range(N))
    reads = [e0[:5], e0[5:] + e1, e2 + e3[:3], e3[3:] + end]  # cut mid-message
    script = [*PUSH[transport].opening(at(0))]
    script += [*(Arrival(r, at(k + 1)) for k, r in enumerate(reads)), None]
    done = run(transport, script)
    assert_whole(done.result, [at(2), at(2), at(3), at(4)], at(4))
    assert done.result.chunk_sizes == [2, 1, 1]


def test_polling_creates_the_stream_then_polls_by_offset_and_counts_empty_polls() -> None:
    done = run("long_poll", POLLS, knobs=(("long_poll_wait_s", 20.0),))
    create, *polls = done.calls()
    assert create == HTTPCall("POST", "/v1/streams", json=REQUEST.to_json(), expected_status=201)
    assert polls == [
        HTTPCall("GET", f"/v1/streams/{SID}", params={"offset": offset, "wait": "20"})
        for offset in (0, 2, 2)
    ]
    assert done.result.stream_id == SID and done.result.empty_polls == 1
    assert done.sleeps() == []  # long polls go out back to back


def test_short_polls_keep_to_a_grid_from_the_creation_stamp() -> None:
    """The grid starts at the creation reply's stamp; each wait is measured from the last
    poll's reply stamp, and a grid point a slow poll overran is skipped."""
    script = [
        created("/v1/streams", 201, at(0)),
        polled(0, 1, at(3)),
        polled(1, 0, at(112)),
        polled(1, 0, at(330)),  # overran the 300 ms point: the next poll goes at 400 ms
        polled(1, 3, at(401), done=True),
    ]
    done = run("short_poll", script, knobs=(("poll_interval_ms", 100.0),))
    assert done.sleeps() == pytest.approx([0.097, 0.088, 0.070])
    assert [c.params for c in done.calls()[1:]] == [{"offset": o} for o in (0, 1, 1, 1)]
    assert done.result.empty_polls == 2
    assert_whole(done.result, [at(3), at(401), at(401), at(401)], at(401))


def test_a_webhook_subscribes_its_callback_url_and_answers_each_delivery() -> None:
    done = run("webhook", NORMAL["webhook"][0], knobs=(("batch_ms", 20.0),))
    assert isinstance(done.effects[0], ListenForCallbacks)
    (subscribe,) = done.calls()
    assert subscribe == HTTPCall(
        "POST",
        "/v1/webhooks",
        params={"framing": "json"},
        json={**REQUEST.to_json(), "callback_url": CALLBACK_URL, "batch_ms": 20.0},
        expected_status=202,
    )
    assert done.answers() == [200, 200, 200]


def test_a_framing_without_indices_numbers_tokens_by_order() -> None:
    messages = [
        *OPENAI.encode_start(SID, MODEL),
        *(OPENAI.encode_token(SID, MODEL, i, t) for i, t in enumerate(TEXTS)),
        *OPENAI.encode_end(SID, MODEL, N, None),
    ]
    script = [Arrival(m, at(k)) for k, m in enumerate(messages)]
    done = run("websocket", script, framing="openai")
    assert done.result.indices == list(range(N)) and done.result.texts == TEXTS
    assert done.result.end_ns == at(len(messages) - 1) and done.result.end_tokens is None


def test_chunked_raw_text_ends_with_the_body() -> None:
    script: list[Step] = [head("/v1/chunked", "text/plain; charset=utf-8", at(0))]
    script += [Arrival(b"Hello,", at(1)), Arrival(b" world", at(2)), None]
    done = run("chunked", script, framing="raw")
    assert done.result.texts == ["Hello,", " world"] and done.result.pieces == AS_SENT
    assert done.result.end_ns == at(2) and done.result.error is None


# --- drop and resume; leave ------------------------------------------------------------------

RESUMES: dict[str, HTTPCall | str] = {  # each push transport's request that resumes
    "sse": HTTPCall(
        "POST",
        "/v1/sse",
        params={"framing": "json", "stream": SID},
        json=REQUEST.to_json(),
        headers={
            "accept": sse_wire.MEDIA_TYPE,
            "cache-control": "no-store",
            "last-event-id": "1",
        },
    ),
    "chunked": HTTPCall(
        "POST",
        "/v1/chunked",
        params={"framing": "json", "stream": SID, "from": 2},
        headers={"accept": ndjson.MEDIA_TYPE},
    ),
    "websocket": dumps({"resume": SID, "from": 2}),  # the first message on a new WebSocket
    "webtransport": dumps({"resume": SID, "from": 2}),  # and on a new WebTransport stream
}


@pytest.mark.parametrize("transport", list(PUSH))
def test_a_dropped_push_stream_resumes_where_it_was_cut(transport: str) -> None:
    wire = PUSH[transport]
    script = [
        *wire.connection(range(2), 0, ended=False),
        at(2.5),
        *wire.connection(range(2, N), 10),
    ]  # the int: the drop's stamp
    done = run(transport, script, drop_at_token=2)
    resumed: list[HTTPCall | str] = [*done.calls()[1:], *done.sent()[1:]]
    assert resumed == [RESUMES[transport]]  # one request more: the one that resumes
    assert done.effects.count(DROP) == 1
    assert done.result.drops_ns == [at(2.5)] and done.result.left_ns is None
    assert_whole(done.result, [at(1), at(2), at(11), at(12)], at(13))


@pytest.mark.parametrize("transport", list(PUSH))
def test_a_push_stream_left_for_good_ends_at_the_drop(transport: str) -> None:
    done = run(
        transport, [*PUSH[transport].connection(range(2), 0, False), at(2.5)], leave_at_token=2
    )
    assert done.effects[-1] == DROP
    assert_left(done.result, at(2.5), 2)


@pytest.mark.parametrize("transport", ["short_poll", "long_poll"])
def test_a_dropped_poll_stream_is_stamped_by_its_last_poll_and_polls_on(transport: str) -> None:
    script: list[Step] = [created("/v1/streams", 201, at(0)), polled(0, 2, at(5))]
    script += [polled(2, 2, at(110), done=True)]
    done = run(transport, script, drop_at_token=2)
    assert DROP not in done.effects  # no connection to drop: the next poll is the reconnect
    assert [c.params["offset"] for c in done.calls()[1:]] == [0, 2]
    assert done.result.drops_ns == [at(5)]
    assert_whole(done.result, [at(5), at(5), at(110), at(110)], at(110))


@pytest.mark.parametrize("transport", ["short_poll", "long_poll"])
def test_a_poll_stream_left_for_good_polls_no_more(transport: str) -> None:
    script = [created("/v1/streams", 201, at(0)), polled(0, 2, at(5))]
    done = run(transport, script, leave_at_token=2)
    assert len(done.calls()) == 2
    assert_left(done.result, at(5), 2)


def test_a_webhook_drop_refuses_the_next_signed_delivery_and_takes_its_retry() -> None:
    forged = delivery(1, 2, tokens(2, 2), at(2), secret="another-secret-of-enough-length")
    script: list[Step] = [
        created("/v1/webhooks", 202, at(0)),
        delivery(0, 0, tokens(0, 2), at(1)),
        forged,  # refused 401 whatever the plan: not the planned drop
        delivery(1, 2, tokens(2, 2), at(3)),  # refused 503: the planned drop
        delivery(1, 2, tokens(2, 2), at(4)),  # the server's retry
        delivery(2, N, JSON_END, at(5)),
    ]
    done = run("webhook", script, drop_at_token=2)
    assert done.answers() == [200, 401, 503, 200, 200]
    assert done.result.drops_ns == [at(3)]
    assert_whole(done.result, [at(1), at(1), at(4), at(4)], at(5))


def test_a_webhook_left_for_good_stops_listening() -> None:
    script: list[Step] = [created("/v1/webhooks", 202, at(0)), delivery(0, 0, tokens(0, 2), at(1))]
    done = run("webhook", script, leave_at_token=2)
    assert done.answers() == [200]
    assert_left(done.result, at(1), 2)


# --- protocol violations and failures --------------------------------------------------------

SSE, CHUNKED, WS = PUSH["sse"], PUSH["chunked"], PUSH["websocket"]
FAILURES: list[tuple[str, list[Step], ErrorKind, str]] = [
    ("sse", [head("/v1/sse", "application/json", at(0))], ErrorKind.PROTOCOL, "Content-Type"),
    ("chunked", [head("/v1/chunked", "text/plain", at(0))], ErrorKind.PROTOCOL, "Content-Type"),
    (
        "sse",
        [*SSE.connection(range(2), 0, ended=False), None],
        ErrorKind.INCOMPLETE,
        "without a terminal message",
    ),
    (
        "chunked",
        [*CHUNKED.connection(range(2), 0, ended=False), None],
        ErrorKind.INCOMPLETE,
        "without a terminal message",
    ),
    (
        "websocket",
        [*WS.connection(range(2), 0, ended=False), None],
        ErrorKind.INCOMPLETE,
        "without a terminal message",
    ),
    ("websocket", [Arrival(b"{}", at(1))], ErrorKind.PROTOCOL, "binary"),
    ("chunked", [*CHUNKED.opening(at(0)), Arrival(b"{oops\n", at(1))], ErrorKind.PROTOCOL, ""),
    (
        "chunked",
        [*CHUNKED.opening(at(0)), Arrival(ndjson.encode_line(JSON_END[0]) * 2, at(1))],
        ErrorKind.PROTOCOL,
        "after the terminal message",
    ),
    (
        "sse",
        [Reply(503, {}, b'{"error":"busy"}', "/v1/sse", at(0))],
        ErrorKind.HTTP_STATUS,
        "HTTP 503 from /v1/sse",
    ),
    (
        "long_poll",
        [created("/v1/streams", 201, at(0)), polled(1, 1, at(1))],
        ErrorKind.PROTOCOL,
        "asked for offset 0, got index 1",
    ),
    (
        "short_poll",
        [created("/v1/streams", 201, at(0)), polled(0, 0, at(1), done=True, error="boom")],
        ErrorKind.UPSTREAM,
        "boom",
    ),
    (
        "long_poll",
        [created("/v1/streams", 200, at(0))],
        ErrorKind.HTTP_STATUS,
        "HTTP 200 from /v1/streams",
    ),
    ("webhook", [created("/v1/webhooks", 202, at(0)), None], ErrorKind.TIMEOUT, "no callback"),
    ("sse", [ConnectFailed("refused")], ErrorKind.CONNECT, "refused"),
]


@pytest.mark.parametrize(
    ("transport", "script", "kind", "says"),
    FAILURES,
    ids=[f"{f[0]}-{f[2].value}-{k}" for k, f in enumerate(FAILURES)],
)
def test_a_broken_stream_fails_with_its_error_kind(
    transport: str, script: Sequence[Step], kind: ErrorKind, says: str
) -> None:
    error = run(transport, script).result.error
    assert error is not None and error.kind is kind and says in error.message


# --- the scripted driver ---------------------------------------------------------------------


def test_the_scripted_driver_answers_every_effect() -> None:
    answered = {*SCRIPTED, *ANSWERED, ListenForCallbacks}
    assert answered == set(HANDLERS)


def test_a_script_that_does_not_fit_is_named() -> None:
    with pytest.raises(ScriptMismatch, match=r"effect 1, .*expected Reply, got Arrival"):
        run("sse", [Arrival(b"", at(0))])
    with pytest.raises(ScriptMismatch, match="no step left"):
        run("sse", SSE.connection(range(2), 0, ended=False))
    with pytest.raises(ScriptMismatch, match="1 step"):
        run("websocket", [*NORMAL["websocket"][0], None])
