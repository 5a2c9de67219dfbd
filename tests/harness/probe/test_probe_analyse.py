"""The probe's pure parts on hand-made reads: no sockets. Decoding is fed whole, byte by
byte and at every split; the timing rules get synthetic stamps."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence

import brotli
import orjson
import pytest
from support import splits

from errors import UsageError
from harness.probe.analyse import RunAnalysis, analyse_run, tail_share
from harness.probe.exchange import Ending, Exchange, WSMessage
from harness.probe.http1 import Head, parse_response
from harness.probe.problems import RULES, Severity
from harness.probe.reconnect import classify_reconnect, needs_reconnect_check
from harness.probe.request import (
    build_request,
    display_url,
    http_headers,
    parse_env_header,
    parse_header,
    redact,
)
from harness.probe.verdict import judge, percentile

T0 = 1_000_000_000
MS = 1_000_000
SSE_HEAD = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)
NDJSON_HEAD = (("content-type", "application/x-ndjson"), *SSE_HEAD[1:])
TEXT_HEAD = (("content-type", "text/plain; charset=utf-8"), *SSE_HEAD[1:])


def exchange(
    pieces: Sequence[bytes],
    stamps_ms: Sequence[float] | None = None,
    headers: tuple[tuple[str, str], ...] = SSE_HEAD,
    status: int = 200,
    ending: Ending = Ending.COMPLETE,
) -> Exchange:
    """An HTTP exchange whose body came in `pieces`, read at `stamps_ms` after the request
    (default: 10 ms apart from 100 ms)."""
    stamps = stamps_ms or [100 + 10 * i for i in range(len(pieces))]
    reads = [(T0 + int(ms * MS), p) for ms, p in zip(stamps, pieces, strict=True)]
    end = reads[-1][0] if reads else T0
    return Exchange("http", T0, Head(status, "OK", headers), T0, reads, end_ns=end, ending=ending)


def essence(run: RunAnalysis) -> tuple[object, ...]:
    """What must not depend on how the bytes were split."""
    return (
        run.kind,
        [(e.data, e.id, e.name) for e in run.events],
        run.text,
        run.reading.terminal,
        run.reading.error,
        run.reading.usage,
        sorted(f.code for f in run.findings),
    )


def codes(run_or_findings: RunAnalysis | Sequence) -> list[str]:
    findings = (
        run_or_findings.findings if isinstance(run_or_findings, RunAnalysis) else run_or_findings
    )
    return [f.code for f in findings]


# --- decoding at every split --------------------------------------------------------------

SSE_BODY = (
    "\ufeff: a comment\r\n"
    'data: {"i":0,"t":"Each"}\r\nid: 0\r\n\r\n'
    'data: {"i":1,"t":" event é"}\nid: 1\n\n'
    'event: message\rdata: {"i":2,"t":" ends 東京"}\rid: 2\r\r'
    'data: {"done":true,"n":3}\n\n'
).encode()


def sse_json(*objects: object) -> bytes:
    return b"".join(b"data: " + orjson.dumps(o) + b"\n\n" for o in objects)


def chunk(delta: dict, finish: str | None = None) -> dict:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "choices": [choice]}


USAGE = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
OPENAI_SSE_BODY = (
    sse_json(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        chunk({"content": " there"}),
        chunk({}, "stop"),
        {"object": "chat.completion.chunk", "choices": [], "usage": USAGE},
    )
    + b"data: [DONE]\n\n"
)
NDJSON_BODY = b'{"i":0,"t":"one"}\n{"i":1,"t":" two\\n"}\r\n\n{"i":2,"t":" three"}\n{"done":true}\n'
VERCEL_DATA_BODY = (
    b'f:{"messageId":"m1"}\n0:"Hello"\n0:", world"\ne:{"finishReason":"stop"}\n'
    b'd:{"finishReason":"stop","usage":{"promptTokens":1,"completionTokens":2}}\n'
)
VERCEL_UI_BODY = (
    sse_json(
        {"type": "start", "messageId": "m1"},
        {"type": "text-start", "id": "t1"},
        {"type": "text-delta", "id": "t1", "delta": "Hello"},
        {"type": "text-delta", "id": "t1", "delta": " UI"},
        {"type": "text-end", "id": "t1"},
        {"type": "finish"},
    )
    + b"data: [DONE]\n\n"
)
TEXT_BODY = "Plain text, streamed word by word: 東京 café ✓\n".encode()

BODIES = [
    ("sse", SSE_HEAD, SSE_BODY, "Each event é ends 東京", '{"done": true}'),
    ("openai", SSE_HEAD, OPENAI_SSE_BODY, "Hi there", "finish_reason stop"),
    ("ndjson", NDJSON_HEAD, NDJSON_BODY, "one two\n three", '{"done": true}'),
    ("vercel-data", TEXT_HEAD, VERCEL_DATA_BODY, "Hello, world", "finish part d:"),
    ("vercel-ui", SSE_HEAD, VERCEL_UI_BODY, "Hello UI", 'type "finish"'),
    ("text", TEXT_HEAD, TEXT_BODY, TEXT_BODY.decode(), None),
]


@pytest.mark.parametrize(
    ("kind", "headers", "body", "text", "terminal"), BODIES, ids=[b[0] for b in BODIES]
)
def test_decoding_does_not_depend_on_how_reads_split_the_body(
    kind: str, headers: tuple, body: bytes, text: str, terminal: str | None
) -> None:
    whole = analyse_run(exchange([body], headers=headers))
    assert whole.kind == kind  # auto-detected
    assert whole.text == text
    assert whole.reading.terminal == terminal
    for pieces in splits(body):
        assert essence(analyse_run(exchange(pieces, headers=headers))) == essence(whole)


def test_gzip_decodes_at_every_split() -> None:
    compressed = gzip.compress(SSE_BODY)
    headers = (*SSE_HEAD, ("content-encoding", "gzip"))
    whole = analyse_run(exchange([SSE_BODY]))
    for pieces in splits(compressed):
        run = analyse_run(exchange(pieces, headers=headers))
        assert run.compressing and run.wire_bytes == len(compressed)
        assert essence(run) == essence(whole)


@pytest.mark.parametrize("wbits", [15, -15], ids=["zlib", "raw"])
def test_deflate_with_or_without_zlib_header(wbits: int) -> None:
    compressor = zlib.compressobj(wbits=wbits)
    body = compressor.compress(SSE_BODY) + compressor.flush()
    for pieces in ([body], [body[:1], body[1:]]):
        run = analyse_run(exchange(pieces, headers=(*SSE_HEAD, ("content-encoding", "deflate"))))
        assert run.text == "Each event é ends 東京"


def test_unknown_encoding_is_a_compressed_problem() -> None:
    run = analyse_run(
        exchange([b"\x28\xb5\x2f\xfd"], headers=(*SSE_HEAD, ("content-encoding", "zstd")))
    )
    assert "compressed" in codes(run)


RAW_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"b\r\ndata: one\n\n\r\nb\r\ndata: two\n\n\r\n0\r\n\r\n"
)


def test_http_parsing_at_every_split() -> None:
    for pieces in splits(RAW_RESPONSE):
        head, bodies, complete = parse_response(pieces)
        assert head is not None and head.status == 200 and head.media_type == "text/event-stream"
        assert b"".join(bodies) == b"data: one\n\ndata: two\n\n"
        assert complete


def test_http_content_length_and_close_delimited_bodies() -> None:
    fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    assert parse_response([fixed]) == (
        Head(200, "OK", (("content-length", "5"),)),
        [b"hello"],
        True,
    )
    closed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhel"
    _, bodies, complete = parse_response([closed, b"lo", b""])
    assert b"".join(bodies) == b"hello" and complete


# --- the buffered rule --------------------------------------------------------------------


def sse_events(n: int) -> list[bytes]:
    return [f"id: {i}\ndata: token {i}\n\n".encode() for i in range(n)] + [b"data: [DONE]\n\n"]


def judged(*exchanges: Exchange) -> list[str]:
    runs = [analyse_run(e) for e in exchanges]
    judgement = judge(runs, None)
    return codes(judgement.problems) + codes(judgement.warnings)


def test_rule_thresholds_are_documented() -> None:
    from harness.probe import verdict

    doc = verdict.__doc__ or ""
    assert f"tail_share >= {verdict.TAIL_SHARE}" in doc
    assert f"events_per_read >= {verdict.LUMP_EVENTS_PER_READ:g}" in doc
    assert f"events_per_read >= {verdict.SPREAD_EVENTS_PER_READ:g}" in doc
    assert f"at least {verdict.MIN_EVENTS} events" in doc


def test_event_per_read_over_the_generation_streams() -> None:
    events = sse_events(20)
    assert judged(exchange(events, [300 + 10 * i for i in range(21)])) == []


def test_long_wait_then_fast_tokens_still_streams() -> None:
    """All bytes in the last 10%, but one event per read: a slow first token, not a buffer."""
    events = sse_events(20)
    stamps = [100] + [4000 + i for i in range(20)]
    run = analyse_run(exchange(events, stamps))
    assert run.tail_share is not None and run.tail_share > 0.9
    assert judged(exchange(events, stamps)) == []


def test_one_lump_at_the_end_is_buffered() -> None:
    body = b"".join(sse_events(20))
    assert judged(exchange([body], [800])) == ["buffered"]


def test_first_event_early_then_the_rest_in_one_lump_is_buffered() -> None:
    events = sse_events(20)
    pieces = [events[0], b"".join(events[1:])]
    assert judged(exchange(pieces, [5, 500])) == ["buffered"]


def test_lumps_all_along_are_buffered() -> None:
    events = sse_events(39)
    pieces = [b"".join(events[i : i + 10]) for i in range(0, 40, 10)]
    run = analyse_run(exchange(pieces, [100, 200, 300, 400]))
    assert run.tail_share is not None and run.tail_share < 0.5
    assert judged(exchange(pieces, [100, 200, 300, 400])) == ["buffered"]


def test_text_flushed_a_sentence_at_a_time_is_not_buffered() -> None:
    sentences = [b"one two three four five six seven eight nine ten. "] * 4
    assert judged(exchange(sentences, [100, 200, 300, 400], headers=TEXT_HEAD)) == []


def test_text_in_one_lump_is_buffered() -> None:
    body = b"one two three four five six seven eight nine ten"
    assert judged(exchange([body], [300], headers=TEXT_HEAD)) == ["buffered"]


def test_compressed_lump_is_reported_as_compressed() -> None:
    compressor = zlib.compressobj(wbits=31)
    pieces = [compressor.compress(e) for e in sse_events(20)]
    pieces[-1] += compressor.flush()
    headers = (*SSE_HEAD, ("content-encoding", "gzip"))
    stamps = [100 + 10 * i for i in range(len(pieces))]
    found = judged(exchange(pieces, stamps, headers=headers))
    assert found == ["compressed"]


def test_too_few_events_to_judge() -> None:
    assert judged(exchange([b"".join(sse_events(2))], [300])) == ["too_short"]


def test_verdict_uses_the_median_of_the_runs() -> None:
    events = sse_events(20)
    lump = exchange([b"".join(events)], [500])
    streamed = exchange(events, [300 + 10 * i for i in range(21)])
    assert judged(lump, streamed, streamed) == []
    assert judged(lump, lump, streamed) == ["buffered"]


def test_tail_share_and_percentile() -> None:
    assert tail_share([(T0 + 100 * MS, 10)], T0) == 1.0
    assert tail_share([(T0 + 10 * MS, 50), (T0 + 100 * MS, 50)], T0) == 0.5
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5 and percentile([], 50) is None


def test_timing_is_measured_from_the_request() -> None:
    events = sse_events(4)
    run = analyse_run(exchange(events, [50, 60, 70, 80, 95]))
    assert run.ttfb_ms == 50 and run.ttft_ms == 50 and run.e2e_ms == 95
    assert run.gaps_ms == [10, 10, 10, 15]
    assert run.reads == 5 and run.events_per_read == 1.0


# --- framing and payload rules ------------------------------------------------------------


def test_lines_without_data_prefix_are_sse_framing() -> None:
    run = analyse_run(exchange([b'{"t":"a"}\n\n{"t":"b"}\n\n']))
    assert codes(run) == ["sse_framing"]
    assert "not SSE fields" in run.findings[0].message


def test_events_never_ended_by_a_blank_line_are_sse_framing() -> None:
    run = analyse_run(exchange([b"data: a\n", b"data: b\n", b"data: c\n"]))
    assert "sse_framing" in codes(run)
    assert "no event is ended by a blank line" in run.findings[0].message


def test_an_unterminated_last_event_is_sse_framing() -> None:
    run = analyse_run(exchange([b"id: 1\ndata: a\n\n", b"data: [DONE]\n"]))
    assert "the last event is not ended" in run.findings[0].message
    assert run.reading.terminal is None  # EventSource never sees it


def test_data_lines_gathered_over_many_reads_are_sse_framing() -> None:
    pieces = [b"id: 0\n", b"data: a\n", b"data: b\n", b"data: c\n", b"\n", b"data: [DONE]\n\n"]
    run = analyse_run(exchange(pieces))
    assert codes(run) == ["sse_framing", "multiline_data"]


def test_multiline_data_and_missing_ids_are_warnings() -> None:
    run = analyse_run(exchange([b"data: line one\ndata: line two\n\ndata: [DONE]\n\n"]))
    assert codes(run) == ["multiline_data", "no_event_id"]
    assert run.text == "line one\nline two"


def test_proxy_headers_missing_is_a_warning() -> None:
    run = analyse_run(exchange(sse_events(3), headers=(("content-type", "text/event-stream"),)))
    assert codes(run) == ["proxy_may_buffer"]
    assert "Cache-Control: no-cache and no X-Accel-Buffering: no" in run.findings[0].message


def test_sse_served_as_text_plain_is_wrong_content_type() -> None:
    run = analyse_run(exchange(sse_events(3), headers=TEXT_HEAD))
    assert run.kind == "sse" and codes(run) == ["wrong_content_type"]
    assert "an SSE body served as text/plain" in run.findings[0].message


def test_no_content_type_is_wrong_content_type() -> None:
    run = analyse_run(exchange([b"hello world"], headers=SSE_HEAD[1:]))
    assert codes(run) == ["wrong_content_type"]


def test_explicit_kind_checks_its_content_type() -> None:
    run = analyse_run(exchange([NDJSON_BODY], headers=SSE_HEAD), kind="ndjson")
    assert codes(run) == ["wrong_content_type"]


def test_openai_rules() -> None:
    chunks = OPENAI_SSE_BODY.split(b"\n\n")
    content = b"\n\n".join(chunks[:3]) + b"\n\n"
    finish = chunks[3] + b"\n\n"
    usage = chunks[4] + b"\n\n"
    done = b"data: [DONE]\n\n"
    # OpenAI itself sends no id: lines, so an OpenAI-compatible stream is not faulted for it
    assert codes(analyse_run(exchange([OPENAI_SSE_BODY]))) == []
    truncated = analyse_run(exchange([content]))
    assert truncated.kind == "openai"
    assert codes(truncated) == ["truncated", "no_usage"]
    assert codes(analyse_run(exchange([content, finish, usage]))) == ["incomplete_end"]
    assert codes(analyse_run(exchange([content, done]))) == ["incomplete_end", "no_usage"]
    error = b'data: {"error":{"message":"model overloaded","type":"server_error"}}\n\n'
    failed = analyse_run(exchange([content, error]))
    assert codes(failed) == ["stream_error"]
    assert "model overloaded" in failed.findings[0].message


def test_openai_over_ndjson() -> None:
    lines = b"".join(
        line[len(b"data: ") :] + b"\n" for line in OPENAI_SSE_BODY.split(b"\n\n") if line
    )
    run = analyse_run(exchange([lines], headers=NDJSON_HEAD))
    assert run.kind == "openai" and run.container == "lines"
    assert run.text == "Hi there" and codes(run) == []


def test_a_single_json_answer_is_not_streaming() -> None:
    body = b'{\n  "object": "chat.completion",\n  "choices": [{"message": {"content": "Hi"}}]\n}'
    run = analyse_run(exchange([body], headers=(("content-type", "application/json"),)))
    assert codes(run) == ["not_streaming"]
    assert "chat.completion" in run.findings[0].message
    assert judge([run], None).verdict == "problems"


def test_ndjson_lines_that_do_not_parse() -> None:
    run = analyse_run(exchange([b'{"a":1}\nnot json\n{"done":true}\n'], headers=NDJSON_HEAD))
    assert codes(run) == ["line_framing"]


def test_vercel_ui_detected_by_header_and_error_part() -> None:
    headers = (*SSE_HEAD, ("x-vercel-ai-ui-message-stream", "v1"))
    body = sse_json(
        {"type": "text-delta", "id": "1", "delta": "x"}, {"type": "error", "errorText": "boom"}
    )
    run = analyse_run(exchange([body], headers=headers))
    assert run.kind == "vercel-ui" and "stream_error" in codes(run)


def test_http_status_and_connection_errors() -> None:
    json_head = (("content-type", "application/json"),)
    refused = analyse_run(exchange([b'{"error":"nope"}'], status=401, headers=json_head))
    assert codes(refused) == ["http_status"]
    assert '401 OK: {"error":"nope"}' in refused.findings[0].message
    assert not refused.streamed
    nothing = analyse_run(Exchange("http", T0, ending=Ending.ERROR, error="Connection refused"))
    assert codes(nothing) == ["connection_error"]
    assert "Connection refused" in nothing.findings[0].message
    cut = analyse_run(exchange(sse_events(3)[:2], ending=Ending.EOF))
    assert "connection_error" in codes(cut)
    slow = analyse_run(exchange(sse_events(3)[:2], ending=Ending.TIMEOUT))
    assert "timeout" in codes(slow)


def test_websocket_runs() -> None:
    messages = [WSMessage(T0 + (100 + i) * MS, i, f'{{"i":{i},"t":" w{i}"}}') for i in range(5)]
    messages.append(WSMessage(T0 + 106 * MS, 5, '{"done":true}'))
    head = Head(101, "Switching Protocols", (("upgrade", "websocket"),))
    good = Exchange("websocket", T0, head, T0, messages=messages, close_code=1000, end_ns=T0)
    run = analyse_run(good)
    assert (run.kind, run.text, codes(run), run.reads) == ("websocket", " w0 w1 w2 w3 w4", [], 6)
    dropped = Exchange("websocket", T0, head, T0, messages=messages, ending=Ending.EOF, end_ns=T0)
    assert codes(analyse_run(dropped)) == ["ws_close"]
    failing = Exchange("websocket", T0, head, T0, messages=messages, close_code=1011, end_ns=T0)
    assert "close code 1011" in analyse_run(failing).findings[0].message


# --- reconnect ----------------------------------------------------------------------------


def first_run() -> RunAnalysis:
    body = b"".join(f"id: {i}\ndata: token {i}\n\n".encode() for i in range(6))
    run = analyse_run(exchange([body]))
    assert needs_reconnect_check(run) and run.last_id == "5"
    return run


@pytest.mark.parametrize(
    ("pieces", "status", "headers", "outcome", "finding"),
    [
        ([b"id: 0\ndata: token 0\n\n"], 200, SSE_HEAD, "fresh", "reconnect_loop"),
        ([b"id: 6\ndata: token 6\n\n"], 200, SSE_HEAD, "resumed", "no_terminal"),
        ([], 204, (), "no_content", None),
        ([b"{}"], 404, (("content-type", "application/json"),), "refused", "no_terminal"),
        ([], 200, SSE_HEAD, "empty", "no_terminal"),
    ],
)
def test_reconnect_outcomes(
    pieces: list[bytes], status: int, headers: tuple, outcome: str, finding: str | None
) -> None:
    first = first_run()
    again = exchange(pieces, headers=headers, status=status)
    reconnect = classify_reconnect(first, again, "5")
    assert reconnect.outcome == outcome
    judgement = judge([first], reconnect)
    found = codes(judgement.problems) + codes(judgement.warnings)
    if finding is None:
        assert not {"no_terminal", "reconnect_loop"} & set(found)
    else:
        assert finding in found


def test_a_stream_with_a_terminal_event_needs_no_reconnect() -> None:
    assert not needs_reconnect_check(analyse_run(exchange(sse_events(3))))


# --- the table and the request ------------------------------------------------------------


def test_every_rule_has_a_stable_code_summary_and_fix() -> None:
    named = {
        "buffered", "compressed", "sse_framing", "reconnect_loop", "wrong_content_type",
        "http_status", "connection_error", "truncated",
    }  # fmt: skip
    problems = {c for c, r in RULES.items() if r.severity is Severity.PROBLEM}
    assert named <= problems
    warnings = set(RULES) - problems
    assert {"proxy_may_buffer", "multiline_data", "no_event_id", "no_usage"} <= warnings
    for code, rule in RULES.items():
        assert code == rule.code and code.isidentifier() and code.islower()
        assert rule.summary and rule.fix and "\n" not in rule.summary


def test_credentials_come_from_the_environment_only() -> None:
    with pytest.raises(UsageError, match="credential"):
        parse_header("Authorization: Bearer sk-1")
    with pytest.raises(UsageError, match="credential"):
        parse_header("x-goog-api-key: 1")
    assert parse_header("x-tokenwire-stream-id: abc") == ("x-tokenwire-stream-id", "abc")
    name, value, variables = parse_env_header("Authorization=Bearer ${KEY}", {"KEY": "sk-secret"})
    assert (name, value, variables) == ("Authorization", "Bearer sk-secret", ("KEY",))
    request = build_request(
        "https://api.example.com/v1/chat?api_key=zzz",
        method=None,
        data='{"stream": true}',
        headers=["Accept: text/event-stream"],
        env_headers=["Authorization=Bearer $KEY"],
        environ={"KEY": "sk-secret"},
    )
    assert request.method == "POST" and request.secrets == ("sk-secret",)
    sent = dict(http_headers(request))
    assert sent["Authorization"] == "Bearer sk-secret"
    assert sent["Accept"] == "text/event-stream" and sent["Content-Type"] == "application/json"
    assert sent["Host"] == "api.example.com" and sent["Content-Length"] == "16"
    assert redact("key sk-secret!", request.secrets) == "key <redacted>!"
    assert display_url(request.target.url) == "https://api.example.com/v1/chat?api_key=***"


def test_an_empty_body_is_not_streaming() -> None:
    assert judged(exchange([])) == ["not_streaming"]


def test_a_stream_that_ends_but_stays_open_times_out() -> None:
    run = analyse_run(exchange(sse_events(3), ending=Ending.TIMEOUT))
    assert "timeout" in codes(run)
    assert "said it was over (data: [DONE]) but stayed open" in run.findings[0].message


def test_invalid_utf8_is_a_framing_problem_of_its_container() -> None:
    assert "sse_framing" in codes(analyse_run(exchange([b"data: \xff\xfe\n\n"])))
    lines = analyse_run(exchange([b'{"a": "\xff"}\n'], headers=NDJSON_HEAD))
    assert "line_framing" in codes(lines)


# --- the failure lab's probe codes ---------------------------------------------------------


def test_the_compressed_fix_names_the_encoding_in_use() -> None:
    """A br body that arrives in one lump gets brotli's flush, not gzip's."""
    body = brotli.compress(b"".join(sse_events(20)))
    headers = (*SSE_HEAD, ("content-encoding", "br"))
    judgement = judge([analyse_run(exchange([body], [300], headers=headers))], None)
    (found,) = judgement.problems
    assert found.code == "compressed" and "BROTLI_OPERATION_FLUSH" in found.fix
    assert "Z_SYNC_FLUSH" not in found.fix
    gzipped = (*SSE_HEAD, ("content-encoding", "gzip"))
    lump = gzip.compress(b"".join(sse_events(20)))
    (gz,) = judge([analyse_run(exchange([lump], [300], headers=gzipped))], None).problems
    assert "Z_SYNC_FLUSH" in gz.fix


def test_raw_json_without_data_prefix_shows_the_body_and_no_too_short() -> None:
    """The lanarky bug: JSON objects written back to back as text/event-stream, no data:
    and no newline. sse_framing quotes the body's start, and the verdict does not add
    too_short (the events are few because none parsed)."""
    body = b'{"token": "Hello"}{"token": " world"}{"token": "!"}'
    run = analyse_run(exchange([body]))
    framing = next(f for f in run.findings if f.code == "sse_framing")
    assert 'the body begins \'{"token": "Hello"}' in framing.message
    assert "too_short" not in judged(exchange([body]))


def test_time_to_headers_and_a_head_held_until_the_first_token() -> None:
    """The head 3 s after the request, the body 5 ms after it: headers_late, ttfh 3000 ms;
    the same body after a head at once: ttfh 0, no finding."""
    events = sse_events(20)
    stamps = [3005 + 10 * i for i in range(len(events))]
    late = exchange(events, stamps)
    late.head_ns = T0 + 3000 * MS
    run = analyse_run(late)
    assert run.ttfh_ms == pytest.approx(3000) and run.ttfb_ms == pytest.approx(3005)
    assert "headers_late" in codes(run)
    at_once = exchange(events, stamps)  # the head at the request's own stamp
    control = analyse_run(at_once)
    assert control.ttfh_ms == 0 and "headers_late" not in codes(control)
    assert judge([run], None).summary["ttfh_ms"] == pytest.approx(3000)
