"""Every problem tokenwire can name in a stream, in one table, like a linter's rules: what
`bench.py probe` reports about an endpoint, and what a live `bench.py run` records about its
upstream (`servers.sources.live` for the relay, `clients.direct` for `direct`). Pure: no I/O,
so servers, clients and the harness all import it.

A rule has a stable code (scripts match on it; never rename one), a severity, a one-line
summary of what is wrong and the fix. A `Finding` is a rule applied to one endpoint or one
stream: its message is the summary plus the evidence (numbers, the offending line).

Severities are the probe's: problems make `bench.py probe` exit with status 1; warnings do
not (exit 0), unless `--strict` turns them into problems. A `bench.py run` records each
finding with the severity it had on that stream instead: `problem` when the stream failed
because of it, `warning` when the stream completed anyway (`buffered`, `incomplete_end`).

The `buffered` rule is here too (`looks_buffered`, its thresholds and `tail_share`), so the
probe and `direct` judge a stream alike; `harness/probe/verdict.py`'s docstring gives the
rule and its reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    PROBLEM = "problem"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    summary: str
    fix: str


P, W = Severity.PROBLEM, Severity.WARNING

RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        # --- problems: exit status 1 -------------------------------------------------------
        Rule(
            "connection_error",
            P,
            "no complete response: the connection failed or broke",
            "check that the server is up and reachable at this URL, and that it does not "
            "close or reset the connection before the response ends",
        ),
        Rule(
            "http_status",
            P,
            "the response status is not 200",
            "send what the endpoint expects (method, --data, Content-Type, auth through "
            "--header-from-env) and make it answer a stream with 200",
        ),
        Rule(
            "timeout",
            P,
            "the response did not end within --timeout",
            "end every stream with a terminal event and close the response; raise --timeout "
            "for a very long generation",
        ),
        Rule(
            "wrong_content_type",
            P,
            "the Content-Type does not match the stream's format",
            "serve SSE as text/event-stream, NDJSON as application/x-ndjson and plain text "
            "as text/plain; charset=utf-8 (EventSource refuses other types, browsers sniff "
            "and proxies buffer an untyped body)",
        ),
        Rule(
            "buffered",
            P,
            "the body arrives in lumps, not event by event",
            "flush after every event (yield from a generator with a streaming response, no "
            "full-body middleware), send X-Accel-Buffering: no and Cache-Control: no-cache, "
            "and turn off buffering in every proxy in front (nginx: proxy_buffering off)",
        ),
        Rule(
            "compressed",
            P,
            "Content-Encoding compresses the stream without flushing per event",
            "do not compress text/event-stream (exclude it from gzip middleware; nginx: "
            "gzip off for it), or flush the compressor after every event (Z_SYNC_FLUSH); "
            "probe again with --header 'Accept-Encoding: identity' to see the stream "
            "without compression",
        ),
        Rule(
            "sse_framing",
            P,
            "the body is not valid SSE: EventSource and SSE parsers will not see these events",
            "write every event as `data: <payload>` lines followed by one blank line "
            "(`data: ...\\n\\n`), one event per message",
        ),
        Rule(
            "line_framing",
            P,
            "lines of the newline-delimited stream do not parse",
            "write one complete JSON value per line, each ended by \\n (Vercel data "
            "stream: `TYPE:JSON` per line)",
        ),
        Rule(
            "reconnect_loop",
            P,
            "the stream has no terminal event and a reconnect starts the generation again",
            "end the stream with an explicit terminal event (data: [DONE], "
            '{"done":true}, event: end) and close it; answer a reconnect for a finished '
            "stream with 204 No Content, and resume after Last-Event-ID instead of "
            "regenerating",
        ),
        Rule(
            "truncated",
            P,
            "the OpenAI-compatible stream ends with neither a finish_reason nor [DONE]",
            "send a chunk with choices[0].finish_reason, then `data: [DONE]`, before "
            "closing; a stream that stops without them was cut off",
        ),
        Rule(
            "stream_error",
            P,
            "the stream reports an error",
            "read the error message: the server or its model failed mid-stream",
        ),
        Rule(
            "not_streaming",
            P,
            "the answer is one JSON document, not a stream",
            'ask for a stream (OpenAI-compatible: "stream": true in --data) or return a '
            "streaming response (SSE, NDJSON or chunked text)",
        ),
        Rule(
            "responses_truncated",
            P,
            "the OpenAI Responses stream ends without response.completed (nor "
            "response.failed, response.incomplete or an error event)",
            "end every Responses stream with a `response.completed` event carrying the whole "
            "response (status, output, usage) before closing; a stream that stops without "
            "one was cut off",
        ),
        Rule(
            "responses_bad_event",
            P,
            "events of the OpenAI Responses stream are not JSON objects with a `type`",
            "send every event's data as one JSON object whose `type` names the event (and a "
            "`sequence_number`): the openai SDK parses each one, and fails on anything else",
        ),
        Rule(
            "ws_close",
            P,
            "the WebSocket did not end with a normal close",
            "end with a close frame, code 1000 (normal closure), after the last message "
            "instead of dropping the TCP connection or closing with an error code",
        ),
        # --- warnings: exit status 0 unless --strict ----------------------------------------
        Rule(
            "proxy_may_buffer",
            W,
            "a proxy in front may buffer this stream",
            "send Cache-Control: no-cache and X-Accel-Buffering: no with every streamed response",
        ),
        Rule(
            "multiline_data",
            W,
            "SSE events carry raw newlines: several data: lines the client must rejoin",
            "escape newlines inside the payload (JSON does) so each event is one data: "
            "line; hand-written SSE parsers often keep only the last line",
        ),
        Rule(
            "no_event_id",
            W,
            "no SSE event carries an id: a dropped connection cannot resume",
            "send `id: <n>` with each event and resume after Last-Event-ID on reconnect",
        ),
        Rule(
            "no_usage",
            W,
            "the OpenAI-compatible stream sends no usage chunk",
            'send a final chunk with "usage" when the request asks for it with '
            'stream_options: {"include_usage": true}',
        ),
        Rule(
            "no_terminal",
            W,
            "no terminal event: a client cannot tell a complete answer from a dropped one",
            "end the stream with an explicit terminal event (data: [DONE], "
            '{"done":true}, a finish event); for SSE also answer a reconnect with 204',
        ),
        Rule(
            "incomplete_end",
            W,
            "the OpenAI-compatible stream ends without one of finish_reason and [DONE]",
            "send a chunk with choices[0].finish_reason, then `data: [DONE]`",
        ),
        Rule(
            "responses_event_names",
            W,
            "SSE events of the OpenAI Responses stream do not name their type in `event:`",
            "write each event as `event: <type>` then `data: <event>`, the same type in both, "
            "as OpenAI does: the openai SDKs read the data's type, but EventSource listeners "
            "(addEventListener('response.output_text.delta')) and other SSE clients dispatch "
            "on the event field",
        ),
        Rule(
            "headers_late",
            W,
            "the response head waited for the first token: clients and proxies saw nothing, "
            "not even the status, until the body began",
            "send the status and headers as soon as the request is accepted, before the "
            "model answers (start the streaming response first; an SSE comment line such as "
            "`: ok` flushes the head at once)",
        ),
        Rule(
            "nagle",
            W,
            "the first token waited for the client's delayed ACK on a reused keep-alive "
            "connection: the server writes without TCP_NODELAY, and Nagle's algorithm held "
            "the first body bytes until the head was acknowledged",
            "set TCP_NODELAY on the server's sockets (asyncio and most servers do; a "
            "hand-written socket server or WSGI server may not), and write the head and the "
            "first chunk in one write, or send the head as soon as the request is accepted",
        ),
        Rule(
            "idle_timeout",
            P,
            "the connection was closed before the first token: something on the path closes "
            "a connection that carries no bytes for a while (a load balancer's idle timeout)",
            "send keep-alive bytes while the model thinks (an SSE comment such as `: ping` "
            "every few seconds, a blank NDJSON line, WebSocket pings), or raise the idle "
            "timeout of the load balancer or proxy",
        ),
        Rule(
            "no_heartbeat",
            W,
            "a long silence with no keep-alive bytes: a load balancer or proxy with an idle "
            "timeout shorter than this silence would close the connection",
            "send keep-alive bytes while the model thinks (an SSE comment such as `: ping` "
            "every 15 s or less, a blank NDJSON line, WebSocket pings)",
        ),
        Rule(
            "too_short",
            W,
            "too few events to judge whether the body streams",
            "ask for a longer answer (e.g. a larger max_tokens in --data)",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str  # the rule's summary and the evidence, one line
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "fix": self.fix}

    def as_problem(self) -> Finding:
        return Finding(self.code, Severity.PROBLEM, self.message, self.fix)


def finding(code: str, evidence: str = "", fix: str | None = None) -> Finding:
    """The rule `code` applied: its summary, then `evidence` after a colon; `fix` in place
    of the rule's when the evidence calls for a more specific one."""
    rule = RULES[code]
    message = f"{rule.summary}: {evidence}" if evidence else rule.summary
    return Finding(rule.code, rule.severity, message, rule.fix if fix is None else fix)


# How to flush each compressor after an event: the `compressed` rule's fix, by encoding.
FLUSH_BY_ENCODING = {
    "gzip": "gzip: flush with Z_SYNC_FLUSH after every event (Python: "
    "compressobj.flush(zlib.Z_SYNC_FLUSH); Node: res.flush() with `compression`)",
    "deflate": "deflate: flush with Z_SYNC_FLUSH after every event (Python: "
    "compressobj.flush(zlib.Z_SYNC_FLUSH))",
    "br": "br: flush with BROTLI_OPERATION_FLUSH after every event (Python brotli: "
    "Compressor.flush(); Node zlib: brotli.flush())",
    "zstd": "zstd: end a block with ZSTD_e_flush after every event (Python: "
    "ZstdCompressor.flush(FLUSH_BLOCK))",
}


def compressed_fix(encoding: str) -> str:
    """The `compressed` rule's fix for one Content-Encoding."""
    how = FLUSH_BY_ENCODING.get(encoding.strip().lower())
    if how is None:
        return RULES["compressed"].fix
    return (
        f"do not compress text/event-stream (exclude it from the compression middleware), "
        f"or {how}; probe again with --header 'Accept-Encoding: identity' to see the "
        "stream without compression"
    )


# --- the `buffered` rule (reasons: harness/probe/verdict.py) ---------------------------------

MIN_EVENTS = 5
TAIL_FRACTION = 0.10
TAIL_SHARE = 0.5
LUMP_EVENTS_PER_READ = 3.0
SPREAD_EVENTS_PER_READ = 8.0


def tail_share(deliveries: Sequence[tuple[int, int]], t0: int) -> float | None:
    """The share of bytes arriving in the last 10% of [t0, last delivery]; `deliveries` are
    (stamp, byte count). 1.0 when everything came at one instant."""
    total = sum(n for _, n in deliveries)
    if not total:
        return None
    last = deliveries[-1][0]
    cutoff = last - TAIL_FRACTION * (last - t0)
    return sum(n for stamp, n in deliveries if stamp >= cutoff) / total


def looks_buffered(
    events: float, share: float | None, per_read: float | None, text: bool = False
) -> bool:
    """The `buffered` rule on one stream's figures, or on medians over several: at least
    `MIN_EVENTS` events, and either most bytes in the last 10% of the time with a few events
    per read, or many events per read whatever the timing (not for plain text, whose
    "events" are words)."""
    if events < MIN_EVENTS or share is None or per_read is None:
        return False
    lump = share >= TAIL_SHARE and per_read >= LUMP_EVENTS_PER_READ
    spread = per_read >= SPREAD_EVENTS_PER_READ and not text
    return lump or spread


def buffered_evidence(
    events: float, reads: float, per_read: float, share: float, e2e_ms: float, unit: str = "events"
) -> str:
    return (
        f"{events:g} {unit} came in {reads:g} read(s) ({per_read:.1f} per read); "
        f"{share:.0%} of the bytes arrived in the last 10% of the {e2e_ms:.0f} ms stream"
    )
