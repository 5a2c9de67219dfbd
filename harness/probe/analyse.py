"""One request analysed (pure): from what it saw (`Exchange`) to its measures and findings.

No sockets here: `analyse_run` takes the stamped reads of one request, so every rule is
tested on hand-made reads; the verdict over a probe's runs is `verdict.py`'s.

Timing is measured from the moment the request's last byte was written:

- TTFT: to the first body byte, and to the first event.
- E2E: to the last body byte.
- reads: network reads that carried body bytes; events per read and bytes per read count
  only reads that delivered decoded bytes (a compressor that holds data delivers none).
- inter-arrival: gaps between consecutive events (0 for events that came in one read).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise

from errors import ProtocolError
from harness.probe.decode import (
    JSON_TYPES,
    LINES,
    MESSAGES,
    RESPONSES,
    SSE,
    SSE_TYPE,
    TEXT,
    AuditingSSEDecoder,
    Event,
    EventDecoder,
    Reading,
    detect,
    looks_sse,
    read_payloads,
    single_json_document,
)
from harness.probe.exchange import Ending, Exchange
from harness.probe.http1 import Head
from wire.content import ContentDecoder
from wire.problems import Finding, compressed_fix, finding, tail_share

SAMPLE_BYTES = 4096
SAMPLE_CHARS = 80  # of a body shown as evidence
HEADERS_LATE_MS = 500.0  # a head later than this, arriving with the first body bytes
WITH_BODY_MS = 50.0  # the first body bytes this soon after the head came with it
NORMAL_CLOSE = {1000, 1001, 1005}
SILENCE_MS = 5000.0  # no bytes for this long (no keep-alive bytes either): `no_heartbeat`
IDLE_CLOSE_MS = 1000.0  # a close this long after the last byte, before any event: idle


@dataclass
class RunAnalysis:
    """One request, analysed."""

    transport: str
    kind: str
    container: str
    head: Head | None
    ending: Ending
    error: str | None
    findings: list[Finding] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    reading: Reading = field(default_factory=Reading)
    reused: bool = False  # sent on a keep-alive connection an earlier request used
    silence_ms: float | None = None  # the longest wait with no bytes at all (HTTP)
    ttfh_ms: float | None = None  # to the response head (status and headers)
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    ttft_text_ms: float | None = None  # to the first event that carried text
    e2e_ms: float | None = None
    reads: int = 0  # network reads that carried body bytes (WebSocket: that completed messages)
    delivering_reads: int = 0  # reads that delivered decoded bytes
    bytes: int = 0  # decoded body bytes
    wire_bytes: int = 0  # body bytes as sent (compressed, if it was)
    tail_share: float | None = None
    gaps_ms: list[float] = field(default_factory=list)
    compressing: bool = False
    single_document: bool = False
    ids_sent: bool = False
    last_id: str = ""

    @property
    def status(self) -> int | None:
        return self.head.status if self.head else None

    @property
    def streamed(self) -> bool:
        """A stream answered (200, or an accepted WebSocket) whose body was read."""
        ok = 101 if self.transport == "websocket" else 200
        return self.status == ok and self.ending is not Ending.ERROR

    @property
    def events_per_read(self) -> float | None:
        return len(self.events) / self.delivering_reads if self.delivering_reads else None

    @property
    def bytes_per_read(self) -> float | None:
        return self.bytes / self.delivering_reads if self.delivering_reads else None

    @property
    def text(self) -> str:
        return self.reading.text


def _ms(stamp: int, t0: int) -> float:
    return (stamp - t0) / 1e6


def analyse_run(exchange: Exchange, kind: str = "auto") -> RunAnalysis:
    """Everything one request shows, with its structural findings. Timing verdicts
    (`buffered`, `compressed`, `too_short`) need every repeat: see `judge`."""
    head = exchange.head
    run = RunAnalysis(exchange.transport, kind, TEXT, head, exchange.ending, exchange.error)
    run.reused = exchange.reused
    if head is None:
        run.findings.append(finding("connection_error", exchange.error or "no response"))
        return run
    if exchange.transport == "websocket":
        _websocket(run, exchange)
    else:
        _http(run, exchange, kind)
    return run


# --- HTTP ---------------------------------------------------------------------------------


def _http(run: RunAnalysis, exchange: Exchange, kind: str) -> None:
    head = run.head
    assert head is not None
    decoder = ContentDecoder(head.get("content-encoding"))
    run.compressing = decoder.compressing
    decoded: list[tuple[int, bytes]] = []
    undecodable = decoder.unsupported and f"cannot decode Content-Encoding {decoder.unsupported}"
    try:
        for stamp, data in exchange.reads:
            decoded.append((stamp, decoder.feed(data)))
        if decoded:
            decoded[-1] = (decoded[-1][0], decoded[-1][1] + decoder.close())
    except ProtocolError as exc:
        undecodable = str(exc)
    if head.status != 200:
        body = b"".join(d for _, d in decoded) or b"".join(d for _, d in exchange.reads)
        run.findings.append(finding("http_status", _status_evidence(head, body)))
        return
    if undecodable:
        encoding = head.get("content-encoding") or ""
        run.findings.append(finding("compressed", undecodable, compressed_fix(encoding)))
    run.wire_bytes = sum(len(d) for _, d in exchange.reads)
    deliveries = [(stamp, data) for stamp, data in decoded if data]
    sample = b"".join(d for _, d in deliveries)[:SAMPLE_BYTES].decode("utf-8", "replace")
    run.kind, run.container = detect(kind, head, sample)
    events: list[Event] = []
    decoder_events = EventDecoder(run.container)
    try:
        for n, (stamp, data) in enumerate(deliveries):
            events += decoder_events.feed(stamp, n, data)
        last_stamp = deliveries[-1][0] if deliveries else exchange.end_ns
        events += decoder_events.close(last_stamp, max(len(deliveries) - 1, 0))
    except ProtocolError as exc:
        run.findings.append(
            finding("sse_framing" if run.container == SSE else "line_framing", str(exc))
        )
    run.events = events
    run.reading = read_payloads(run.kind, events)
    if run.container == TEXT:
        run.reading.text_parts = decoder_events.text_parts
    t0 = exchange.t_sent_ns
    run.reads = len(exchange.reads)
    run.delivering_reads = len(deliveries)
    run.bytes = sum(len(d) for _, d in deliveries)
    if exchange.head_ns is not None:
        run.ttfh_ms = _ms(exchange.head_ns, t0)
    if exchange.reads:
        run.ttfb_ms = _ms(exchange.reads[0][0], t0)
        run.e2e_ms = _ms(exchange.reads[-1][0], t0)
    _headers_late(run)
    _silence(run, exchange)
    run.tail_share = tail_share([(s, len(d)) for s, d in deliveries], t0) if deliveries else None
    _timing(run, t0)
    text = b"".join(d for _, d in deliveries).decode("utf-8", "replace")
    _ending(run, exchange)
    _content_type(run, head, looks_sse(sample))
    _framing(run, decoder_events, text)
    _payload_findings(run)
    _proxy_headers(run, head)


def _timing(run: RunAnalysis, t0: int) -> None:
    if run.events:
        run.ttft_ms = _ms(run.events[0].stamp_ns, t0)
        first_text = run.reading.first_text_event
        if first_text is not None:
            run.ttft_text_ms = _ms(run.events[first_text].stamp_ns, t0)
        stamps = [e.stamp_ns for e in run.events]
        run.gaps_ms = [(b - a) / 1e6 for a, b in pairwise(stamps)]
    run.ids_sent = any(e.id for e in run.events)
    run.last_id = run.events[-1].id if run.events else ""


def _headers_late(run: RunAnalysis) -> None:
    """The head held back until the body began: `fetch()`, EventSource's `onopen` and a
    proxy's header timeout all wait for the head, so a slow first token looks like a dead
    server to them."""
    ttfh, ttfb = run.ttfh_ms, run.ttfb_ms
    if ttfh is None or ttfb is None or ttfh < HEADERS_LATE_MS or ttfb - ttfh > WITH_BODY_MS:
        return
    evidence = (
        f"the head came {ttfh:.0f} ms after the request, {ttfb - ttfh:.0f} ms before the body"
    )
    run.findings.append(finding("headers_late", evidence))


def _silence(run: RunAnalysis, exchange: Exchange) -> None:
    """The longest wait with no bytes (request sent, head, body reads: keep-alive bytes
    count), and `no_heartbeat` when a stream that delivered events waited that long."""
    stamps = [exchange.t_sent_ns, *(s for s in [exchange.head_ns] if s is not None)]
    stamps += [stamp for stamp, _ in exchange.reads]
    gaps = [(b - a) / 1e6 for a, b in pairwise(sorted(stamps))]
    run.silence_ms = max(gaps, default=0.0)
    if run.events and run.silence_ms >= SILENCE_MS:
        evidence = (
            f"{run.silence_ms / 1000:.1f} s without a byte (more than {SILENCE_MS / 1000:g} s)"
        )
        run.findings.append(finding("no_heartbeat", evidence))


def _status_evidence(head: Head, body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    evidence = f"{head.status} {head.reason}".strip()
    if 300 <= head.status < 400 and head.get("location"):
        evidence += f" -> {head.get('location')}"
    return f"{evidence}: {text[:160]}" if text else evidence


def _ending(run: RunAnalysis, exchange: Exchange) -> None:
    if exchange.ending is Ending.TIMEOUT:
        ended = run.reading.terminal or run.reading.error
        evidence = f"{len(run.events)} events read before it ran out"
        if ended:
            evidence += f"; the stream said it was over ({ended}) but stayed open"
        run.findings.append(finding("timeout", evidence))
    elif exchange.ending is Ending.EOF and not run.events and _closed_idle(exchange):
        quiet = _ms(exchange.end_ns, _last_byte_ns(exchange))
        evidence = (
            f"closed {_ms(exchange.end_ns, exchange.t_sent_ns) / 1000:.1f} s after the "
            f"request, after {quiet / 1000:.1f} s with no bytes, before any event"
        )
        run.findings.append(finding("idle_timeout", evidence))
    elif exchange.ending is Ending.EOF:
        run.findings.append(
            finding(
                "connection_error",
                f"{exchange.error or 'the connection broke'} (after {len(run.events)} events)",
            )
        )


def _last_byte_ns(exchange: Exchange) -> int:
    stamps = [exchange.t_sent_ns, exchange.head_ns or 0, *(s for s, _ in exchange.reads)]
    return max(stamps)


def _closed_idle(exchange: Exchange) -> bool:
    """The connection closed a while after its last byte: an idle timeout on the path."""
    return _ms(exchange.end_ns, _last_byte_ns(exchange)) >= IDLE_CLOSE_MS


def _content_type(run: RunAnalysis, head: Head, sniffed_sse: bool) -> None:
    media = head.media_type
    if not media:
        run.findings.append(
            finding("wrong_content_type", "no Content-Type (browsers sniff, and hold the body)")
        )
        return
    if run.container == SSE:
        wrong = media != SSE_TYPE
        expected = SSE_TYPE
    elif run.kind == "vercel-data":
        wrong, expected = media != "text/plain", "text/plain"
    elif run.container == LINES:
        wrong, expected = media not in JSON_TYPES and media != "text/plain", "application/x-ndjson"
    else:
        wrong = not media.startswith("text/") or media == SSE_TYPE
        expected = "text/plain"
    if wrong:
        what = "an SSE body" if sniffed_sse and run.container == SSE else f"a {run.kind} stream"
        run.findings.append(
            finding("wrong_content_type", f"{what} served as {media} (expected {expected})")
        )


def _framing(run: RunAnalysis, decoder: EventDecoder, body: str) -> None:
    if run.container == SSE and isinstance(decoder.sse, AuditingSSEDecoder):
        audit = decoder.sse.audit
        bad = []
        if audit.unknown_lines:
            bad.append(
                f"{audit.unknown_lines} line(s) are not SSE fields (data:, event:, id:, "
                f"retry:), e.g. {audit.first_unknown!r}"
            )
        if body.strip() and not audit.data_lines:
            bad.append(f"no data: line at all; the body begins {body.strip()[:SAMPLE_CHARS]!r}")
        elif audit.data_lines and not run.events:
            bad.append("no event is ended by a blank line")
        elif audit.unterminated:
            bad.append("the last event is not ended by a blank line (EventSource drops it)")
        if audit.spread_events:
            bad.append(
                f"{audit.spread_events} event(s) gathered data: lines over up to "
                f"{audit.most_reads_per_event} reads: the blank line between events is "
                "missing, so clients see nothing until it comes"
            )
        if bad:
            run.findings.append(finding("sse_framing", "; ".join(bad)))
        if audit.multiline_events:
            run.findings.append(
                finding("multiline_data", f"{audit.multiline_events} event(s) span several lines")
            )
        # OpenAI's own streams carry no id: (so no compatible client resumes by it)
        if run.events and not audit.id_lines and run.kind not in ("openai", RESPONSES):
            run.findings.append(finding("no_event_id", f"{len(run.events)} events, no id: line"))
        return
    if run.container == LINES:
        document = single_json_document(body)
        if document is not None and (len(run.events) <= 1 or run.reading.bad_lines):
            run.single_document = True
            what = "one JSON document"
            if isinstance(document, dict) and document.get("object") == "chat.completion":
                what = "one chat.completion object (not chunks)"
            if isinstance(document, dict) and document.get("object") == "response":
                what = "one Responses API response object (not events)"
            size = len(body.encode())
            run.findings.append(finding("not_streaming", f"{what}, {size} bytes"))
            run.reading.bad_lines = 0
            return
        if run.reading.bad_lines:
            run.findings.append(
                finding(
                    "line_framing",
                    f"{run.reading.bad_lines} line(s) do not parse, e.g. {run.reading.first_bad!r}",
                )
            )


def _payload_findings(run: RunAnalysis) -> None:
    reading = run.reading
    if reading.error:
        run.findings.append(finding("stream_error", reading.error))
    if reading.responses:
        _responses_findings(run)
    if run.kind == "openai" and run.events and not run.single_document:
        if not reading.error and not reading.finish_reason and not reading.done_marker:
            run.findings.append(
                finding(
                    "truncated", f"{len(run.events)} events, the last {run.events[-1].data[:80]!r}"
                )
            )
        elif not reading.error and not (reading.finish_reason and reading.done_marker):
            missing = "data: [DONE]" if reading.finish_reason else "a finish_reason"
            run.findings.append(finding("incomplete_end", f"no {missing}"))
        if not reading.usage and not reading.error:
            run.findings.append(finding("no_usage", "no chunk carries a usage object"))


def _responses_findings(run: RunAnalysis) -> None:
    """An OpenAI Responses stream (over SSE, or WebSocket messages): its events parse, it
    ends, it reports usage, and over SSE each event names its type."""
    reading = run.reading
    if reading.bad_lines:
        evidence = f"{reading.bad_lines} event(s), e.g. {reading.first_bad!r}"
        run.findings.append(finding("responses_bad_event", evidence))
    if run.events and not reading.terminal and not reading.error:
        last = run.events[-1].data[:80]
        run.findings.append(
            finding("responses_truncated", f"{len(run.events)} events, the last {last!r}")
        )
    if reading.terminal and not reading.error and not reading.usage:
        run.findings.append(
            finding(
                "no_usage",
                f"{reading.terminal} carries no usage object",
                "send usage (input_tokens, output_tokens, total_tokens) in the final "
                "event's response, as OpenAI does",
            )
        )
    if reading.misnamed_events:
        evidence = f"{reading.misnamed_events} of {len(run.events)}, e.g. {reading.first_misnamed}"
        run.findings.append(finding("responses_event_names", evidence))


def _proxy_headers(run: RunAnalysis, head: Head) -> None:
    missing = []
    cache = (head.get("cache-control") or "").lower()
    if "no-cache" not in cache and "no-store" not in cache:
        missing.append("Cache-Control: no-cache")
    if (head.get("x-accel-buffering") or "").strip().lower() != "no":
        missing.append("X-Accel-Buffering: no")
    if missing and not run.single_document:
        run.findings.append(finding("proxy_may_buffer", "no " + " and no ".join(missing)))


# --- WebSocket ----------------------------------------------------------------------------


def _websocket(run: RunAnalysis, exchange: Exchange) -> None:
    head = run.head
    assert head is not None
    run.kind, run.container = "websocket", MESSAGES
    if head.status != 101:
        body = b"".join(d for _, d in exchange.reads)
        run.findings.append(finding("http_status", _status_evidence(head, body)))
        return
    if exchange.ending is Ending.ERROR:
        run.findings.append(finding("connection_error", exchange.error or "handshake failed"))
        return
    messages = exchange.messages
    run.events = [Event(m.stamp_ns, m.read_no, m.text) for m in messages]
    run.reading = read_payloads("websocket", run.events)
    per_read: Counter[int] = Counter()
    stamps: dict[int, int] = {}
    for m in messages:
        per_read[m.read_no] += len(m.text.encode())
        stamps.setdefault(m.read_no, m.stamp_ns)
    run.reads = run.delivering_reads = len(per_read)
    run.bytes = run.wire_bytes = sum(per_read.values())
    t0 = exchange.t_sent_ns
    if messages:
        run.ttfb_ms = _ms(messages[0].stamp_ns, t0)
        run.e2e_ms = _ms(messages[-1].stamp_ns, t0)
        run.tail_share = tail_share([(stamps[r], per_read[r]) for r in sorted(per_read)], t0)
    _timing(run, t0)
    if exchange.ending is Ending.TIMEOUT:
        run.findings.append(
            finding("timeout", f"{len(run.events)} messages read before it ran out")
        )
    elif exchange.close_code is None:
        why = exchange.error or "the connection ended without a close frame"
        run.findings.append(finding("ws_close", f"{why} (1006, after {len(messages)} messages)"))
    elif exchange.close_code not in NORMAL_CLOSE:
        reason = f" {exchange.close_reason!r}" if exchange.close_reason else ""
        run.findings.append(
            finding(
                "ws_close",
                f"close code {exchange.close_code}{reason} after {len(messages)} messages",
            )
        )
    if run.reading.error:
        run.findings.append(finding("stream_error", run.reading.error))
    if run.reading.responses and exchange.ending is not Ending.TIMEOUT:
        _responses_findings(run)
