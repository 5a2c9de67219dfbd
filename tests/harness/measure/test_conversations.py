"""Conversations (agent loops): the turns' jobs, their units, and whole runs on loopback in
which the counts must match: nothing lost, one WebSocket connection per conversation, one
connection per turn without keep-alive, and upload bytes that grow by exactly the context."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from support import bench

from errors import ScenarioError
from harness.analyse.conversations import point_conversations
from harness.analyse.results import load_run
from harness.measure.client_processes import shares_of_jobs
from harness.measure.run.conversations import TURN_SEEDS, conversation_jobs
from harness.measure.run.jobs import Job, job_units
from harness.measure.scenario import Scenario, scenario_from_dict, validated
from harness.measure.scenario.model import Conversation
from wire.messages import GenerationRequest

TALK = Conversation(turns=3, tool_call_ms=50, context_bytes=100, state=("client", "server"))


def test_each_turn_is_a_job_with_its_seed_context_and_previous_response() -> None:
    scenario = Scenario(requests=2, conversation=TALK)
    jobs = conversation_jobs(scenario, "sse", "run", [""])
    assert len(jobs) == 6
    client, server = jobs[:3], jobs[3:]
    assert [j.request.seed for j in jobs] == [0, 1, 2, TURN_SEEDS, TURN_SEEDS + 1, TURN_SEEDS + 2]
    # the client re-sends the conversation; the server keeps it and gets only what is new
    assert [len(j.request.context) for j in client] == [100, 200, 300]
    assert [len(j.request.context) for j in server] == [100, 100, 100]
    assert client[2].request.context.startswith(client[0].request.context)
    assert [j.request.previous_response_id for j in server] == [
        None,
        "run-sse-1-t0",
        "run-sse-1-t1",
    ]
    assert all(j.request.store for j in server) and not any(j.request.store for j in client)
    assert [j.pause_s for j in client] == [0.0, 0.05, 0.05]
    assert [j.turn.last for j in client if j.turn] == [False, False, True]


def test_a_websocket_runs_the_state_variants_only() -> None:
    talk = replace(TALK, keepalive=(True, False))
    scenario = Scenario(requests=4, conversation=talk)
    sse = {
        (j.turn.state, j.turn.keepalive)
        for j in conversation_jobs(scenario, "sse", "r", [""])
        if j.turn
    }
    ws = {
        (j.turn.state, j.turn.keepalive)
        for j in conversation_jobs(scenario, "websocket", "r", [""])
        if j.turn
    }
    assert sse == {("client", True), ("client", False), ("server", True), ("server", False)}
    assert ws == {("client", True), ("server", True)}


def test_a_conversation_is_one_unit_and_stays_in_one_process() -> None:
    jobs = conversation_jobs(Scenario(requests=3, conversation=TALK), "sse", "r", [""])
    assert job_units(jobs) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert shares_of_jobs(jobs, 2) == [[0, 1, 2, 6, 7, 8], [3, 4, 5]]
    single = [Job("sse", GenerationRequest(seed=k)) for k in range(5)]
    assert job_units(single) == [[k] for k in range(5)]
    assert shares_of_jobs(single, 2) == [[0, 2, 4], [1, 3]]


def test_the_conversation_table_reads_and_refuses_what_cannot_run() -> None:
    talk = scenario_from_dict(
        {"conversation": {"turns": 4, "state": ["client", "server"], "keepalive": False}}
    ).conversation
    assert talk == Conversation(turns=4, state=("client", "server"), keepalive=(False,))
    with pytest.raises(ScenarioError, match="state must be client or server"):
        validated(scenario_from_dict({"conversation": {"turns": 2, "state": "both"}}))
    with pytest.raises(ScenarioError, match="closed loop"):
        validated(scenario_from_dict({"rate": 5, "conversation": {"turns": 2}}))
    with pytest.raises(ScenarioError, match="max_conversation_chars"):
        validated(scenario_from_dict({"conversation": {"turns": 300, "context_bytes": 4096}}))
    with pytest.raises(ScenarioError, match="allows only"):
        scenario_from_dict({"conversation": {"turn": 2}})


@pytest.mark.timeout(240)
def test_conversations_run_on_every_transport_with_the_counts_that_must_match(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    done = bench(
        "run",
        *("--transports", "all", "--requests", "4", "--concurrency", "4", "--warmup", "1"),
        *("--preset", "steady", "--ttft-ms", "20", "--tokens-per-s", "400"),
        *("--max-tokens", "8", "--turns", "4", "--tool-call-ms", "20"),
        *("--context-bytes", "1000", "--state", "client,server", "--keepalive", "on,off"),
        *("--json", "--quiet", "--out", str(out)),
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summaries = json.loads(done.stdout)["transports"]
    for name, summary in summaries.items():
        assert summary["streams"] == 16 and summary["errors"] == 0, name
        assert summary["tokens_lost"] == 0 and summary["tokens_duplicated"] == 0, name
        assert summary["tokens_received"] == summary["tokens_emitted"] == 16 * 8, name
    point = load_run(out).points[0]
    records = {name: phase.requests for name, phase in point.phases.items()}
    by_turn = {r.stream_id: r for rs in records.values() for r in rs}
    for r in records["websocket"]:
        # one connection for the whole conversation: its first turn opens it, upgrades once
        assert (r.connections, r.requests) == ((1, 1) if r.turn == 0 else (0, 0)), r.stream_id
        if r.turn == 2:  # against turn 1: neither has the upgrade, nor the close frame
            previous = by_turn[r.stream_id.rsplit("-t", 1)[0] + "-t1"]
            grown = r.bytes_sent - previous.bytes_sent
            # the client re-sends the conversation: exactly 1000 bytes more; the server keeps
            # it: only what is new, the same size every turn
            assert grown == (1000 if r.state == "client" else 0), r.stream_id
    for r in records["sse"]:
        if r.keepalive is False:  # Connection: close, so every turn pays a connection
            assert r.connections == 1, r.stream_id
        elif r.turn and r.turn > 0:  # the previous turn's connection serves this one
            assert r.connections == 0, r.stream_id
    figures = {f.variant.label: f for f in point_conversations(point.phases)}
    assert figures["websocket (server state)"].connections == 1
    assert figures["sse (client state, new conn)"].connections == 4
    assert all(f.complete == f.conversations for f in figures.values())
    # every turn's answer ended with exactly the tool call the source made
    assert all(f.tool_calls_ok == f.turns * f.conversations for f in figures.values())
    assert all(r.tool_call_ok for rs in records.values() for r in rs)
    assert (out / "conversation_time.png").exists()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2>Conversations</h2>" in report and "re-upload (state)" in report
