"""Conversations (agent loops) in the console and the report: a row per transport and
variant, and the decomposition table (`harness.analyse.conversations`)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from harness.analyse.conversations import ConversationFigures, Term, decomposition
from harness.present.html import esc

HEADERS = (
    "transport (variant)",
    "complete",
    "tool calls ok",
    "conversation s p50",
    "turn overhead ms p50",
    "overhead turn 1 / last",
    "upload B turn 1 / last",
    "connections / conversation",
    "TLS handshakes / conversation",
)


def _ms(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def rows(figures: Sequence[ConversationFigures]) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for f in figures:
        found.append(
            (
                f.variant.label,
                f"{f.complete}/{f.conversations}",
                f"{f.tool_calls_ok}/{f.turns * f.conversations}",
                _ms(None if f.conversation_ms is None else f.conversation_ms / 1000, 2),
                _ms(f.overhead_p50_ms),
                f"{_ms(f.overhead_ms[0])} / {_ms(f.overhead_ms[-1])}",
                f"{_ms(f.upload_bytes[0], 0)} / {_ms(f.upload_bytes[-1], 0)}",
                _ms(f.connections, 2),
                _ms(f.tls_handshakes, 2),
            )
        )
    return found


def term_rows(terms: dict[str, list[Term]]) -> list[tuple[str, ...]]:
    return [
        (transport, t.cause, t.with_cause, t.without_cause, _ms(t.ms))
        for transport, found in terms.items()
        for t in found
    ]


TERM_HEADERS = ("transport", "cause", "with it", "without it", "ms per conversation")


def console_tables(figures: Sequence[ConversationFigures], where: str = "") -> list[Table]:
    """The conversations table and, when the run has the variants, the decomposition."""
    if not figures:
        return []
    table = Table(title=f"conversations{where}")
    for header in HEADERS:
        table.add_column(header, justify="left" if header == HEADERS[0] else "right")
    for row in rows(figures):
        table.add_row(*row)
    tables = [table]
    terms = term_rows(decomposition(figures))
    if terms:
        split = Table(title=f"decomposition against the WebSocket with server state{where}")
        for header in TERM_HEADERS:
            split.add_column(header, justify="right" if header == TERM_HEADERS[-1] else "left")
        for row in terms:
            split.add_row(*row)
        tables.append(split)
    return tables


def _html_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    lines = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"


def html_section(points: Sequence[tuple[str, Sequence[ConversationFigures]]]) -> str:
    """The report's section: for each point (its heading, its figures) both tables."""
    if not any(figures for _, figures in points):
        return ""
    body = [
        "<h2>Conversations</h2>",
        "<p>Each request was a conversation: turns that end in a tool call, the tool's "
        "result sent back, the next turn streamed. Turn overhead is the turn's time to first "
        "token from the moment its request (the tool's result) was sent, minus the source's "
        "own first-token delay. The decomposition sets each request-per-turn transport "
        "(client state, keep-alive) against the WebSocket with server state, and measures "
        "each cause by switching it off within this run: re-uploading the conversation "
        "(client against server state), per-request work (the transport with server state "
        "against the WebSocket), and what closing connections adds (keep-alive off). Terms "
        "are medians over conversations of the overheads summed over the turns after the "
        "first.</p>",
    ]
    for heading, figures in points:
        if not figures:
            continue
        if heading:
            body.append(f"<h3>{esc(heading)}</h3>")
        body.append(_html_table(HEADERS, rows(figures)))
        terms = term_rows(decomposition(figures))
        if terms:
            body.append(_html_table(TERM_HEADERS, terms))
    return "".join(body)
