"""Conversations (agent loops): a scenario's `[conversation]` made into jobs, one per turn.

Conversation k is `turns` streams in a row on one client. Turn t uses source seed
`k * TURN_SEEDS + t`, so the mock makes the turn's text and timing from (conversation,
turn) and every transport sees the same conversation; every answer ends with a call of
the tool `run_tool` (`GenerationRequest.tool`). Its request carries the conversation
as the client sends it (`GenerationRequest.context`): with `state = "client"` all of it,
(t + 1) x `context_bytes` (the user's message, then each turn's answer and tool result);
with `state = "server"` only the turn's new `context_bytes` and, from turn 1, the previous
turn's stream id as `previous_response_id` (each turn asks the server to `store` it).
Turn t > 0 is sent `tool_call_ms` after turn t - 1 ended: its timers (TTFT, E2E) start
when the tool's result is sent. Several `state` and `keepalive` values are variants:
conversation k runs variant k mod their number. A WebSocket transport (one with an upgrade)
keeps one connection for the conversation, so `keepalive` does not apply to it: it runs
the `state` variants only.
"""

from __future__ import annotations

from collections.abc import Sequence

from clients.interface import Turn
from harness.measure.run.jobs import Job
from harness.measure.scenario import Scenario
from transports import TRANSPORTS, TransportRegistry
from wire.messages import GenerationRequest

TURN_SEEDS = 10_000  # seeds a conversation spans: more than its turns can be (validation)
FILLER = "the tool returned these rows and the answer cited them; "  # ASCII: a byte a char
TOOL = "run_tool"  # every turn's answer ends with a call of it


def context_text(size: int, conversation: int, turn: int) -> str:
    """`size` bytes of ASCII text standing for a turn's new context (answer, tool result)."""
    head = f"[{conversation}.{turn}] "
    text = head + FILLER * (size // len(FILLER) + 1)
    return text[:size]


def variants(
    scenario: Scenario, transport: str, registry: TransportRegistry = TRANSPORTS
) -> list[tuple[str, bool]]:
    """(state, keepalive) of each variant the transport runs, in conversation order."""
    talk = scenario.conversation
    keeps = (True,) if registry.get(transport).upgrade_path is not None else talk.keepalive
    return [(state, keep) for state in talk.state for keep in keeps]


def conversation_jobs(
    scenario: Scenario,
    transport: str,
    run_tag: str,
    prompts: Sequence[str],
    registry: TransportRegistry = TRANSPORTS,
) -> list[Job]:
    """Every turn of the scenario's `requests` conversations on `transport`, in order."""
    talk = scenario.conversation
    runs = variants(scenario, transport, registry)
    jobs: list[Job] = []
    for k in range(scenario.requests):
        state, keepalive = runs[k % len(runs)]
        name = f"{run_tag}-{transport}-{k}"
        for t in range(talk.turns):
            if state == "client":
                context = "".join(context_text(talk.context_bytes, k, u) for u in range(t + 1))
            else:
                context = context_text(talk.context_bytes, k, t)
            request = GenerationRequest(
                seed=k * TURN_SEEDS + t,
                prompt=prompts[k % len(prompts)],
                max_tokens=scenario.source.max_tokens,
                stream_id=f"{name}-t{t}",
                context=context,
                previous_response_id=f"{name}-t{t - 1}" if state == "server" and t else None,
                store=state == "server",
                tool=TOOL,
            )
            turn = Turn(name, t, last=t == talk.turns - 1, keepalive=keepalive, state=state)
            jobs.append(
                Job(transport, request, turn=turn, pause_s=talk.tool_call_ms / 1000 * bool(t))
            )
    return jobs
