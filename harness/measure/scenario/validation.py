"""Checking a scenario: `validated` makes it runnable (what `all` transports and `auto`
process counts resolve to) and refuses, with a `ScenarioError` that names the field and the
fix, anything that cannot run."""

from __future__ import annotations

import math
from dataclasses import replace

from errors import ScenarioError, ServerSettingsError, SourceError, UsageError
from harness.measure.arrivals import ARRIVALS
from harness.measure.browser.capability import (
    CLIENTS,
    PAGE_FRAMINGS,
    STREAMS_PER_PAGE,
    refuse_for_browser,
)
from harness.measure.paths import LOOPBACK, parse_path
from harness.measure.processes import PROCESS_FIELDS, check_count
from harness.measure.scenario.http_versions import check_http, check_quic
from harness.measure.scenario.model import (
    CONVERSATION_STATES,
    KNOB_NAMES,
    LOAD_SHAPES,
    ORDERS,
    Faults,
    Load,
    Scenario,
)
from servers.cpus import usable_cpus
from servers.faults import load_faults, refuse_other_stack
from stacks import DEFAULT_WORKERS, STACKS
from transports import TRANSPORTS
from wire.framing import FRAMINGS

MAX_REPEAT = 100  # rounds of a run, at most


def validated(scenario: Scenario) -> Scenario:
    """The scenario made runnable (`Scenario.runnable`, `Scenario.with_processes`: what
    `all` and `auto` resolve to), then checked: ScenarioError names what is wrong."""
    scenario = scenario.runnable().with_processes()
    for name in ("requests", "concurrency"):
        if getattr(scenario, name) < 1:
            raise ScenarioError(f"{name} must be a positive integer, got {getattr(scenario, name)}")
    if scenario.warmup < 0:
        raise ScenarioError(f"warmup must be 0 or more, got {scenario.warmup}")
    if scenario.seed < 0:
        raise ScenarioError(f"seed must be 0 or more, got {scenario.seed}")
    if not scenario.stream_timeout_s > 0:
        raise ScenarioError(
            f"stream_timeout_s must be a positive number, got {scenario.stream_timeout_s}"
        )
    for name, value in scenario.knobs:
        if name not in KNOB_NAMES:
            raise ScenarioError(
                f"unknown setting {name!r}; the transports' settings: {', '.join(KNOB_NAMES)}"
            )
        problem = TRANSPORTS.knob(name).check(value)
        if problem is not None:
            raise ScenarioError(problem)
    check_rate(scenario)
    if not 0 <= scenario.ramp_s <= 3600:
        raise ScenarioError(f"ramp_s must be from 0 to 3600 seconds, got {scenario.ramp_s}")
    if not 1 <= scenario.repeat <= MAX_REPEAT:
        raise ScenarioError(f"repeat must be from 1 to {MAX_REPEAT}, got {scenario.repeat}")
    if scenario.repeat > 1 and scenario.interleaved:
        raise ScenarioError(
            "repeat runs the transports' phases in rounds, one after another; an interleaved "
            "run (order interleaved, or a live source) already alternates them request by "
            'request: use order = "sequential" to repeat, or drop repeat'
        )
    if not scenario.transports:
        raise ScenarioError("transports must name at least one transport")
    if scenario.framing not in FRAMINGS:
        raise ScenarioError(f"unknown framing {scenario.framing!r}; allowed: {', '.join(FRAMINGS)}")
    check_framing(scenario)
    check_stack(scenario)
    check_server_faults(scenario)
    check_conversation(scenario)
    if scenario.streams_per_page < 1:
        raise ScenarioError("streams_per_page must be 1 or more")
    if scenario.streams_per_page != STREAMS_PER_PAGE and scenario.client != "browser":
        raise ScenarioError(
            'streams_per_page sets the browser client\'s pages: use it with client = "browser"'
        )
    parse_path(scenario.path)
    if scenario.order not in ORDERS:
        raise ScenarioError(f"unknown order {scenario.order!r}; allowed: {', '.join(ORDERS)}")
    try:
        scenario.source.validate()
    except SourceError as exc:
        raise ScenarioError(str(exc)) from None
    if scenario.inject.token_delay_ms < 0 or scenario.inject.pad_bytes < 0:
        raise ScenarioError("inject.token_delay_ms and inject.pad_bytes must be 0 or more")
    check_faults(scenario.faults)
    check_resume(scenario)
    if scenario.client not in CLIENTS:
        raise ScenarioError(f"unknown client {scenario.client!r}; allowed: {', '.join(CLIENTS)}")
    if scenario.client == "browser":
        faults = scenario.faults.drop_at_token or scenario.faults.leave_at_token
        refuse_for_browser(scenario.transports, bool(faults), concurrency=scenario.concurrency)
    check_processes(scenario)
    check_http(
        scenario.http,
        scenario.path,
        scenario.stack,
        scenario.client,
        scenario.server_processes,
        scenario.transports,
        scenario.raw_client,
    )
    check_quic(scenario.http, scenario.path, scenario.stack, scenario.transports)
    check_cpus(scenario)
    check_raw_client(scenario)
    check_load(scenario.load)
    if scenario.sweep is not None:
        for point in scenario.sweep.values:
            validated(replace(scenario.at(point), sweep=None))
    return scenario


def check_rate(scenario: Scenario) -> None:
    """An open-loop rate is a finite number of requests per second, 0 for closed loop;
    its arrivals are a kind `harness.measure.arrivals` knows."""
    if not (0 <= scenario.rate < math.inf):
        raise ScenarioError(
            f"rate must be 0 (closed loop) or a positive number of requests per second "
            f"per transport, got {scenario.rate}"
        )
    if scenario.arrivals not in ARRIVALS:
        raise ScenarioError(
            f"unknown arrivals {scenario.arrivals!r}; allowed: {', '.join(ARRIVALS)} "
            "(they apply with a rate above 0)"
        )


def check_framing(scenario: Scenario) -> None:
    """Every transport must be able to carry the framing (its carriage among the
    framing's); `raw` has no token index to resume from, and the browser client reads
    json and openai."""
    framing = FRAMINGS[scenario.framing]
    cannot = [t for t in scenario.transports if not framing.can_travel(TRANSPORTS.get(t).carriage)]
    if cannot:
        carriers = ", ".join(TRANSPORTS.carrying(framing))
        raise ScenarioError(
            f"framing {scenario.framing} cannot travel over {', '.join(cannot)}; it travels "
            f"over {carriers} (pick them with --transports, or another framing)"
        )
    faults = scenario.faults.drop_at_token or scenario.faults.leave_at_token
    if faults and not framing.boundaries:
        raise ScenarioError(
            f"framing {scenario.framing} has no token boundaries, so a dropped stream has no "
            "index to resume from: drop [faults] or use another framing"
        )
    if scenario.client == "browser" and scenario.framing not in PAGE_FRAMINGS:
        raise ScenarioError(
            f"the browser client reads the framings {', '.join(PAGE_FRAMINGS)}, not "
            f'{scenario.framing}; use client = "python"'
        )


def check_server_faults(scenario: Scenario) -> None:
    """Known fault names (at every point of a sweep over them), on the stack they are
    modelled on; a heartbeat of 0 or more seconds."""
    sweep = scenario.sweep
    texts = [scenario.server_faults]
    if sweep is not None and sweep.axis == "server_faults":
        texts += [str(v) for v in sweep.values]
    try:
        named = tuple(name for text in texts for name in load_faults([text]))
        for stack in scenario.stacks():
            refuse_other_stack(named, stack)
    except ServerSettingsError as exc:
        raise ScenarioError(str(exc)) from None
    beats = [scenario.heartbeat_s]
    if sweep is not None and sweep.axis == "heartbeat_s":
        beats += [float(v) for v in sweep.values]
    if any(b < 0 for b in beats):
        raise ScenarioError("heartbeat_s must be 0 (no heartbeat) or more seconds")


def check_stack(scenario: Scenario) -> None:
    """Every stack in play (the stack, or each of a sweep over stacks) is one the registry
    knows (`stacks.py`), installed, and able to carry every transport; `workers` and
    `threads` only for a threaded stack, one worker, threads 1 or more (0: the default)."""
    names = scenario.stacks()
    for name in names:
        if name not in STACKS:
            raise ScenarioError(f"unknown stack {name!r}; known: {', '.join(STACKS.names())}")
    for stack in (STACKS.get(name) for name in names):
        try:
            stack.check_installed()
        except UsageError as exc:
            raise ScenarioError(str(exc)) from None
        reasons = [
            (t, reason)
            for t in scenario.transports
            if (reason := stack.cannot_carry(TRANSPORTS.get(t))) is not None
        ]
        if reasons:
            others = ", ".join(t for t, _ in reasons)
            raise ScenarioError(f"{reasons[0][1]}; or leave out {others} with --transports")
    threaded = [n for n in names if STACKS.get(n).threaded]
    given = [
        f
        for f, unset in (("workers", DEFAULT_WORKERS), ("threads", 0))
        if getattr(scenario, f) != unset
    ]
    if given and not threaded:
        kinds = ", ".join(s.name for s in STACKS if s.threaded)
        raise ScenarioError(
            f"{' and '.join(given)} apply to threaded stacks ({kinds}), not to "
            f"{', '.join(names)}: drop {' and '.join(given)} or pick a threaded stack"
        )
    if scenario.workers != DEFAULT_WORKERS:
        raise ScenarioError(
            f"workers must be {DEFAULT_WORKERS}, got {scenario.workers}: polls, resumes and "
            "timelines must reach the worker that holds the stream, and gunicorn does not "
            "route by stream; for more server processes use server_processes (a server per "
            "port, each client shard sticking to one)"
        )
    if scenario.threads < 0:
        raise ScenarioError(
            f"threads must be 1 or more (0: the default, 4 per core), got {scenario.threads}"
        )


def check_resume(scenario: Scenario) -> None:
    """A planned drop needs transports that can resume (`Capabilities.resume`)."""
    if not scenario.faults.drop_at_token:
        return
    cannot = [t for t in scenario.transports if not TRANSPORTS.get(t).capabilities.resume]
    if cannot:
        raise ScenarioError(
            f"faults.drop_at_token drops and resumes streams, and {', '.join(cannot)} "
            "cannot resume: drop them from the transports, or use faults.leave_at_token"
        )


def check_cpus(scenario: Scenario) -> None:
    """CPU lists this machine can pin to (`servers.cpus`), or "" for no pinning."""
    for name in ("server_cpus", "client_cpus"):
        text = getattr(scenario, name)
        if text:
            try:
                usable_cpus(text)
            except UsageError as exc:
                raise ScenarioError(f"{name}: {exc}") from None


def check_processes(scenario: Scenario) -> None:
    """Process counts from 1 to the maximum (0, auto, is resolved before); more than one
    server only on loopback, more than one process of either only with Python clients."""
    for name in PROCESS_FIELDS:
        check_count(name, getattr(scenario, name))
    if scenario.server_processes > 1 and scenario.path.strip() != LOOPBACK:
        raise ScenarioError(
            f"server_processes = {scenario.server_processes} needs path = loopback: a path's "
            f"layers ({scenario.path}) front one server; use server_processes = 1 (or auto) "
            "with a path"
        )
    if scenario.client == "browser":
        many = [n for n in PROCESS_FIELDS if getattr(scenario, n) > 1]
        if many:
            raise ScenarioError(
                f"the browser client runs in one process against one server (one "
                f"Chromium, same-origin pages): use {' and '.join(f'{n} = 1' for n in many)} "
                'with client = "browser" (auto is 1 there)'
            )


def check_raw_client(scenario: Scenario) -> None:
    """The raw client reads JSON-framed push streams, one transport at a time."""
    if not scenario.raw_client:
        return
    readable = TRANSPORTS.raw_readable()
    others = [t for t in scenario.transports if t not in readable]
    if others:
        raise ScenarioError(
            f"raw_client reads {', '.join(readable)}, not {', '.join(others)}: "
            "pick those transports or set raw_client = false"
        )
    if scenario.framing != "json" or scenario.client != "python" or scenario.interleaved:
        raise ScenarioError(
            'raw_client needs framing = "json", client = "python" and transports run '
            'one after another (order = "sequential", or "auto" with the mock)'
        )


def check_faults(faults: Faults) -> None:
    if faults.drop_at_token < 0 or faults.leave_at_token < 0:
        raise ScenarioError("faults.drop_at_token and faults.leave_at_token must be 0 or more")
    if faults.leave_at_token and faults.drop_at_token >= faults.leave_at_token:
        raise ScenarioError("faults.drop_at_token must come before faults.leave_at_token")
    if faults.resume_grace_s < 0:
        raise ScenarioError("faults.resume_grace_s must be 0 or more")


def check_load(load: Load) -> None:
    if load.shape not in LOAD_SHAPES:
        raise ScenarioError(f"unknown load.shape {load.shape!r}; allowed: {', '.join(LOAD_SHAPES)}")
    for name in ("users", "step_users", "spike_users"):
        if getattr(load, name) < 1:
            raise ScenarioError(f"load.{name} must be a positive integer")
    for name in ("spawn_rate", "run_time_s", "step_time_s", "spike_time_s"):
        if not getattr(load, name) > 0:
            raise ScenarioError(f"load.{name} must be a positive number")
    for name in ("spike_at_s", "think_time_s", "stop_timeout_s"):
        if getattr(load, name) < 0:
            raise ScenarioError(f"load.{name} must be 0 or more")
    if load.shape == "spike" and load.spike_at_s + load.spike_time_s > load.run_time_s:
        raise ScenarioError("load: the spike must end within run_time_s")


MAX_TURNS = 1000  # turns of a conversation, at most
MAX_CONVERSATION_BYTES = 1 << 20  # the server's default max_conversation_chars


def check_conversation(scenario: Scenario) -> None:
    """`[conversation]`: sizes in range, known states, and what conversations cannot run."""
    talk = scenario.conversation
    if not 0 <= talk.turns <= MAX_TURNS:
        raise ScenarioError(f"conversation turns must be from 0 to {MAX_TURNS}, got {talk.turns}")
    if not 0 <= talk.tool_call_ms <= 600_000:
        raise ScenarioError(
            f"conversation tool_call_ms must be from 0 to 600000, got {talk.tool_call_ms}"
        )
    if talk.context_bytes < 0:
        raise ScenarioError(
            f"conversation context_bytes must be 0 or more, got {talk.context_bytes}"
        )
    if talk.turns * talk.context_bytes > MAX_CONVERSATION_BYTES:
        raise ScenarioError(
            f"a conversation of {talk.turns} turns x {talk.context_bytes} bytes exceeds the "
            f"server's max_conversation_chars ({MAX_CONVERSATION_BYTES}): fewer turns or bytes"
        )
    unknown = [s for s in talk.state if s not in CONVERSATION_STATES]
    if unknown or not talk.state or len(set(talk.state)) != len(talk.state):
        raise ScenarioError(
            f"conversation state must be {' or '.join(CONVERSATION_STATES)}, or a list of "
            f"both; got {list(talk.state)}"
        )
    if not talk.keepalive or len(set(talk.keepalive)) != len(talk.keepalive):
        raise ScenarioError(
            f"conversation keepalive must be true, false or [true, false]; got {talk.keepalive}"
        )
    if not talk.turns:
        return
    if not FRAMINGS[scenario.framing].carries_tool_calls:
        tooled = ", ".join(name for name, f in FRAMINGS.items() if f.carries_tool_calls)
        raise ScenarioError(
            f"a conversation's turns end in tool calls, which framing {scenario.framing} does "
            f"not carry: use {tooled}"
        )
    if scenario.client != "python":
        raise ScenarioError("conversations run on the python client only: drop client or turns")
    if scenario.rate > 0:
        raise ScenarioError(
            "conversations run as a closed loop (each turn follows the previous one): drop rate"
        )
    if scenario.faults.drop_at_token or scenario.faults.leave_at_token:
        raise ScenarioError("conversations and the fault benchmark do not combine: drop one")
    if scenario.source.live:
        raise ScenarioError(
            "conversations need the mock or a trace (every transport must see the same turns)"
        )
