"""Conversation figures and the decomposition, from records whose answers are known: each
turn's overhead is the time to first token minus the planned first-token delay, and each
term of the decomposition is the difference its one switched cause made."""

from __future__ import annotations

import pytest

from harness.analyse.conversations import (
    conversations_of,
    decomposition,
    figures_of,
    point_conversations,
)
from harness.measure.records import PhaseRecord, RequestRecord

MS = 1_000_000
PLANNED_MS = 200  # the source's own first-token delay, every turn
TOOL_MS = 300
TURNS = 4


def conversation(
    transport: str, k: int, state: str, keepalive: bool, overhead_ms: list[float]
) -> list[RequestRecord]:
    """A conversation whose turn t took `overhead_ms[t]` beyond the planned first token;
    every turn streams 10 ms after its first token, then the tool runs."""
    name = f"{transport}-{k}"
    records = []
    start = 0
    for t in range(TURNS):
        first = start + round((PLANNED_MS + overhead_ms[t]) * MS)
        records.append(
            RequestRecord(
                transport=transport,
                index=k * 10_000 + t,
                seed=k * 10_000 + t,
                stream_id=f"{name}-t{t}",
                scheduled_ns=start,
                end_ns=first + 10 * MS,
                token_index=[0, 1],
                recv_ns=[first, first + 10 * MS],
                planned_delays_ns=[PLANNED_MS * MS, 10 * MS],
                bytes_sent=1000 * (t + 1 if state == "client" else 1),
                connections=0 if keepalive and t else 1,
                conversation=name,
                turn=t,
                state=state,
                keepalive=keepalive,
            )
        )
        start = first + (10 + TOOL_MS) * MS
    return records


def phase(transport: str, records: list[RequestRecord]) -> PhaseRecord:
    return PhaseRecord(transport, 0, 1, None, None, requests=records)


def test_turn_overhead_is_ttft_minus_the_planned_first_token() -> None:
    records = conversation("sse", 0, "client", True, [5, 7, 9, 11])
    ((variant, talks),) = conversations_of(records).items()
    figures = figures_of(variant, talks)
    assert figures.overhead_ms == pytest.approx([5, 7, 9, 11])
    assert figures.ttft_ms == pytest.approx([205, 207, 209, 211])
    assert figures.overhead_sum_ms == pytest.approx(7 + 9 + 11)  # the turns after the first
    # the conversation: four turns of 200 ms + overhead + 10 ms, three tools of 300 ms
    assert figures.conversation_ms == pytest.approx(4 * 210 + 5 + 7 + 9 + 11 + 3 * TOOL_MS)
    assert figures.cumulative_ms[0] == pytest.approx(215)
    assert figures.upload_bytes == [1000, 2000, 3000, 4000]
    assert figures.connections == 1 and figures.complete == figures.conversations == 1


def test_the_decomposition_recovers_each_switched_cause() -> None:
    upload, request, handshake = [0, 4, 8, 12], 1.5, 200.0
    ws = [*conversation("websocket", 0, "server", True, [300, 1, 1, 1])]
    sse = [
        *conversation("sse", 0, "client", True, [1 + request + u for u in upload]),
        *conversation("sse", 1, "server", True, [1 + request] * TURNS),
        *conversation("sse", 2, "client", False, [1 + request + handshake + u for u in upload]),
    ]
    figures = point_conversations({"sse": phase("sse", sse), "websocket": phase("websocket", ws)})
    terms = {t.cause: t.ms for t in decomposition(figures)["sse"]}
    later = TURNS - 1
    assert terms["re-upload (state)"] == pytest.approx(sum(upload))
    assert terms["per-request work"] == pytest.approx(request * later)
    assert terms["total, later turns"] == pytest.approx(sum(upload) + request * later)
    assert terms["handshakes (keep-alive off, client state)"] == pytest.approx(handshake * later)
    assert terms["first turn (set-up)"] == pytest.approx(1 + request - 300)
