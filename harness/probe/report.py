"""The probe's output: a short text report, or one JSON object (`--json`). Both pass through
`redact`, so no value read from the environment (an API key) is ever printed."""

from __future__ import annotations

from typing import Any

import orjson

from harness.probe.analyse import RunAnalysis
from harness.probe.request import display_url, redact
from harness.probe.session import ProbeResult
from harness.probe.verdict import SHOWN_HEADERS
from wire.problems import Finding

TEXT_SHOWN = 160  # characters of decoded text in the text report
TEXT_JSON = 2000  # ... and in the JSON object
LABEL = 19


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(value: object) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _round(value: object, digits: int = 3) -> object:
    return round(value, digits) if isinstance(value, float) else value


def _count(value: object) -> object:
    """A median count: an integer when it is one (the median of an even number of runs
    may fall between two)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _run_json(run: RunAnalysis) -> dict[str, Any]:
    return {
        "status": run.status,
        "ending": str(run.ending),
        "reused": run.reused,
        "silence_ms": _round(run.silence_ms),
        "ttft_ms": _round(run.ttft_ms),
        "ttfh_ms": _round(run.ttfh_ms),
        "ttfb_ms": _round(run.ttfb_ms),
        "ttft_text_ms": _round(run.ttft_text_ms),
        "e2e_ms": _round(run.e2e_ms),
        "reads": run.reads,
        "events": len(run.events),
        "bytes": run.bytes,
        "wire_bytes": run.wire_bytes,
        "events_per_read": _round(run.events_per_read),
        "tail_share": _round(run.tail_share),
    }


def to_json(result: ProbeResult) -> dict[str, Any]:
    request, judgement, summary = result.request, result.judgement, result.judgement.summary
    text = str(summary["text"])
    gaps = summary["inter_arrival_ms"]
    assert isinstance(gaps, dict)
    return {
        "url": display_url(request.target.url),
        "method": "GET" if request.target.websocket else request.method,
        "kind": summary["kind"] or request.kind,
        "verdict": judgement.verdict,
        "problems": [f.to_json() for f in judgement.problems],
        "warnings": [f.to_json() for f in judgement.warnings],
        "status": summary["status"],
        "headers": summary["headers"],
        "runs": summary["runs"],
        "ttft_ms": _round(summary["ttft_ms"]),
        "ttfh_ms": _round(summary["ttfh_ms"]),
        "ttfb_ms": _round(summary["ttfb_ms"]),
        "silence_ms": _round(summary["silence_ms"]),
        "reused_connections": summary["reused"],
        "ttft_text_ms": _round(summary["ttft_text_ms"]),
        "e2e_ms": _round(summary["e2e_ms"]),
        "reads": _count(summary["reads"]),
        "events": _count(summary["events"]),
        "bytes": _count(summary["bytes"]),
        "bytes_per_read": _round(summary["bytes_per_read"], 1),
        "events_per_read": _round(summary["events_per_read"]),
        "inter_arrival_ms": {k: _round(v) for k, v in gaps.items()},
        "tail_share": _round(summary["tail_share"]),
        "terminal": summary["terminal"],
        "text": shorten(text, TEXT_JSON),
        "text_chars": len(text),
        "tool_calls": summary["tool_calls"],
        "reconnect": result.reconnect.to_json() if result.reconnect else None,
        "per_run": [_run_json(r) for r in result.runs],
    }


def render_json(result: ProbeResult) -> str:
    raw = orjson.dumps(to_json(result), option=orjson.OPT_INDENT_2).decode()
    return redact(raw, result.request.secrets)


def _ttft(s: dict[str, Any]) -> str:
    text = f"{_ms(s['ttfh_ms'])} to the headers, {_ms(s['ttfb_ms'])} to the first byte, "
    text += f"{_ms(s['ttft_ms'])} to the first event"
    if s["ttft_text_ms"] is not None and s["ttft_text_ms"] != s["ttft_ms"]:
        text += f", {_ms(s['ttft_text_ms'])} to the first text"
    return text


def _line(label: str, value: str) -> str:
    return f"  {label:<{LABEL}}{value}"


def _finding_lines(finding: Finding) -> list[str]:
    width = max(len(finding.code), 16)
    pad = " " * (2 + 9 + width + 2)
    return [
        f"  {finding.severity:<9}{finding.code:<{width}}  {finding.message}",
        f"{pad}fix: {finding.fix}",
    ]


def render_text(result: ProbeResult) -> str:
    request, judgement, s = result.request, result.judgement, result.judgement.summary
    method = "GET (WebSocket)" if request.target.websocket else request.method
    runs = s["runs"]
    lines = [
        f"probe {method} {display_url(request.target.url)}  ->  {s['kind'] or request.kind}, "
        f"{runs} run{'s' if runs != 1 else ''}"
    ]
    if isinstance(runs, int) and runs > 1 and not request.target.websocket:
        reused = s["reused"]
        assert isinstance(reused, int)
        lines.append(_line("connections", f"{runs - reused} new, {reused} reused (keep-alive)"))
    for name, variables in request.env_headers:
        lines.append(_line("sent", f"{name}: <from {variables}>"))
    first = result.runs[0] if result.runs else None
    if first and first.head:
        lines.append(_line("status", f"{first.head.status} {first.head.reason}".rstrip()))
        headers = s["headers"]
        assert isinstance(headers, dict)
        for name in SHOWN_HEADERS:
            lines.append(_line(name, headers.get(name) or "-"))
    if s["events"] is not None and any(r.streamed for r in result.runs):
        gaps = s["inter_arrival_ms"]
        assert isinstance(gaps, dict)
        median = " (medians)" if isinstance(runs, int) and runs > 1 else ""
        lines += [
            _line("TTFT" + median, _ttft(s)),
            _line("E2E", _ms(s["e2e_ms"])),
            _line("longest silence", _ms(s["silence_ms"])),
            _line(
                "reads",
                f"{s['reads']:g}"
                + (
                    f" ({s['events_per_read']:.1f} events and {s['bytes_per_read']:.0f} "
                    "bytes per read)"
                    if s["events_per_read"] is not None and s["bytes_per_read"] is not None
                    else ""
                ),
            ),
            _line("events", f"{s['events']:g}, terminal: {s['terminal'] or 'none'}"),
            _line(
                "inter-arrival",
                f"p50 {_ms(gaps['p50'])}  p90 {_ms(gaps['p90'])}  max {_ms(gaps['max'])}",
            ),
        ]
        if s["tail_share"] is not None:
            lines.append(_line("last 10% of E2E", f"{s['tail_share']:.0%} of the bytes"))
        text = str(s["text"])
        lines.append(_line("text", f'"{shorten(text, TEXT_SHOWN)}" ({len(text)} chars)'))
        calls = s["tool_calls"]
        if isinstance(calls, list) and calls:
            lines.append(_line("tool calls", ", ".join(map(str, calls))))
    if result.reconnect is not None:
        r = result.reconnect
        sent = f" with Last-Event-ID {r.last_event_id}" if r.last_event_id else ""
        lines.append(_line("reconnect", f"{r.outcome}{sent}: {r.detail}"))
    lines.append(f"verdict: {judgement.verdict}")
    for f in [*judgement.problems, *judgement.warnings]:
        lines += _finding_lines(f)
    return redact("\n".join(lines), request.secrets)
