"""One benchmark run from start to finish: server up, driver, server down, results saved.

A sweep runs every value of its axis in turn, in one run folder; the server is restarted
only when the swept axis is one the server process holds (`SERVER_AXES`: the source preset,
the push responses' streaming headers, the server stack). A repeated run (`repeat`) runs
its rounds one after another, each on a server (and path) started for it: rounds are
independent replications (`harness.analyse.replications`), and a server's placement and
memory are among what differs between runs (the driver gives each of its phases a
client process of its own for the same reason). Every phase records the stack it
ran on (`StackSetup`, resolved: a threaded stack's workers and threads). With
`server_processes` > 1 there are N servers, one `ServerGroup` (logs `server-<i>.log`), on
loopback only: a path fronts one server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from harness.analyse.conversations import point_conversations
from harness.analyse.results import Point, RunResult, environment, save_run
from harness.measure import event_loop, processes
from harness.measure.driver import run_benchmark
from harness.measure.paths import LOOPBACK, Endpoint, parse_path
from harness.measure.paths.certificate import clients_certificate
from harness.measure.records import PhaseRecord, SweepValue
from harness.measure.run.rounds import merged_rounds
from harness.measure.scenario import SERVER_AXES, Scenario
from harness.measure.scenario.http_versions import BEST
from harness.measure.server_process import ServerGroup, running_servers
from harness.measure.stability import Snapshot, Stability, machine_facts
from harness.present.console import (
    RichProgress,
    browser_text,
    faults_table,
    problems_text,
    summary_table,
)
from harness.present.conversation_section import console_tables
from harness.present.report import has_faults, write_report
from servers.cpus import format_cpus, pin, usable_cpus
from stacks import DEFAULT as DEFAULT_STACK


def sweep_points(scenario: Scenario) -> list[tuple[SweepValue | None, Scenario]]:
    if scenario.sweep is None:
        return [(None, scenario)]
    return [(v, replace(scenario.at(v), sweep=None)) for v in scenario.sweep.values]


def _quic_files(scenario: Scenario, run_dir: Path) -> tuple[Path, Path] | None:
    """The certificate and key the server answers QUIC with (HTTP/3, WebTransport) and the
    clients trust (made once a run); None when nothing at this point speaks QUIC."""
    if scenario.http_version() != "3" and not scenario.quic_transports():
        return None
    return clients_certificate(run_dir / "quic")


def _quic_args(scenario: Scenario, run_dir: Path) -> tuple[str, ...]:
    """The server's flags for what speaks QUIC at this point."""
    files = _quic_files(scenario, run_dir)
    if files is None:
        return ()
    cert, key = str(files[0]), str(files[1])
    if scenario.http_version() == "3":
        return ("--http3-cert", cert, "--http3-key", key)
    return ("--webtransport-cert", cert, "--webtransport-key", key)


@contextlib.contextmanager
def _server(scenario: Scenario, run_dir: Path, console: Console) -> Iterator[ServerGroup]:
    with running_servers(
        scenario.source,
        run_dir,
        processes.resolve(scenario.server_processes),
        extra_args=scenario.server_args() + _quic_args(scenario, run_dir),
    ) as group:
        for server in group.servers:
            pid = getattr(server, "pid", None)
            cpus = ""
            if pid is not None and scenario.server_cpus:  # as the kernel has it, read back
                cpus = f", on CPUs {format_cpus(os.sched_getaffinity(pid))}"
            console.print(f"server pid {pid or '?'} on {server.base_url}{cpus}", highlight=False)
        yield group


@contextlib.contextmanager
def _clients_pinned(cpus: str) -> Iterator[None]:
    """This process (the driver's clients, and the client and path processes it starts)
    on `cpus` for the run, as it was afterwards; nothing to do for ""."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    pin(usable_cpus(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure(scenario: Scenario, run_dir: Path, console: Console) -> list[Point]:
    points: list[Point] = []
    # a repeated run's rounds each get a server of their own (harness.analyse.replications)
    # (and, for `http = best`, each point: only a point that speaks HTTP/3 serves QUIC)
    fresh = scenario.repeat > 1 or (
        scenario.sweep is not None and (scenario.sweep.axis in SERVER_AXES or scenario.http == BEST)
    )
    per_point = len(scenario.transports) * scenario.requests * scenario.repeat
    total = len(sweep_points(scenario)) * per_point
    with (
        _clients_pinned(scenario.client_cpus),
        contextlib.ExitStack() as stack,
        RichProgress(console, total) as progress,
    ):
        shared = None if fresh else stack.enter_context(_server(scenario, run_dir, console))
        for value, point_scenario in sweep_points(scenario):
            rounds = [
                _round(point_scenario, run_dir, console, progress, value, shared, r)
                for r in range(point_scenario.repeat)
            ]
            phases = merged_rounds(rounds)
            points.append(Point(value, {phase.transport: phase for phase in phases}))
    return points


def _round(
    scenario: Scenario,
    run_dir: Path,
    console: Console,
    progress: RichProgress,
    value: SweepValue | None,
    shared: ServerGroup | None,
    round: int,
) -> list[PhaseRecord]:
    """One sweep point's round: every transport's phase, on the `shared` server or on one
    started for it, behind the scenario's path."""
    with contextlib.ExitStack() as stack:
        server = (
            shared
            if shared is not None
            else stack.enter_context(_server(scenario, run_dir, console))
        )
        path = parse_path(scenario.path)
        endpoint = None  # several servers: on loopback (validated), each its own
        files = _quic_files(scenario, run_dir)
        if len(server) == 1:
            served = Endpoint(server.base_url, ca_file=None if files is None else files[0])
            endpoint = stack.enter_context(path.open(served, run_dir / "paths"))
            if path.layers and path.text != LOOPBACK:
                console.print(f"path {path.text}: clients use {endpoint.base_url}")
        phases = event_loop.run(
            run_benchmark(
                scenario,
                server,
                progress,
                value,
                endpoint=endpoint,
                round=round,
                ca_file=None if files is None else files[0],
            )
        )
        # what the path's layers saw of the run: theirs to record, once it is over
        parameters = path.parameters()
    ran_on = scenario.stack_setup()
    return [replace(phase, path_parameters=parameters, stack=ran_on) for phase in phases]


def _processes_text(scenario: Scenario) -> str:
    server = processes.resolve(scenario.server_processes)
    client = processes.resolve(scenario.client_processes)
    if server == client == 1:
        return ""
    return f"{server} server processes, {client} client processes; "


def _stack_text(scenario: Scenario) -> str:
    """The stack, when it is not the default (or is swept), for the run's first line."""
    if scenario.sweep is not None and scenario.sweep.axis == "stack":
        return ""  # the sweep names them
    if scenario.stack == DEFAULT_STACK:
        return ""
    setup = scenario.stack_setup()
    if setup.thread_limit is None:
        return f"stack {setup.name}; "
    return f"stack {setup.name} ({setup.workers} worker x {setup.threads} threads); "


def run_scenario(scenario: Scenario, run_dir: Path, console: Console, argv: list[str]) -> RunResult:
    started = dt.datetime.now(dt.UTC)
    sweep = (
        ""
        if scenario.sweep is None
        else f"; sweeping {scenario.sweep.axis} over {list(scenario.sweep.values)}"
    )
    turns = scenario.conversation.turns
    load = (
        f"{scenario.requests} conversations of {turns} turns each"
        if turns
        else f"{scenario.requests} streams each"
    )
    console.print(
        f"[bold]tokenwire[/] scenario [cyan]{scenario.name}[/]: "
        f"{', '.join(scenario.transports)}; {load} at concurrency "
        f"{scenario.concurrency}; source preset {scenario.source.preset}{sweep}; "
        f"{_processes_text(scenario)}{_stack_text(scenario)}results in {run_dir}",
        highlight=False,
    )
    before, clock = Snapshot.take(), time.monotonic()
    points = measure(scenario, run_dir, console)
    stability = Stability.between(before, Snapshot.take(), time.monotonic() - clock)
    metadata = environment(started, dt.datetime.now(dt.UTC), argv)
    metadata["hardware"] = machine_facts()  # "machine" is the architecture (environment)
    metadata["stability"] = stability.to_json()
    metadata["processes"] = {  # as run (0, auto, resolved: harness.measure.processes)
        "server": processes.resolve(scenario.server_processes),
        "client": processes.resolve(scenario.client_processes),
        "auto": f"max(1, cpu_count // 2) = {processes.auto_processes()}",
    }
    run = RunResult(
        metadata=metadata,
        scenario=scenario.to_json(),
        points=points,
        sweep_axis=None if scenario.sweep is None else scenario.sweep.axis,
    )
    save_run(run, run_dir)
    report = write_report(run, run_dir)
    for point in run.points:
        where = "" if point.value is None else f", {run.sweep_axis} = {point.value}"
        console.print(
            summary_table(point.summaries, f"scenario {scenario.name}{where} ({run_dir})")
        )
        if has_faults(point.summaries):
            console.print(faults_table(point.summaries, f"faults{where}"))
        for table in console_tables(point_conversations(point.phases), where):
            console.print(table)
        shown = browser_text(point, where)
        if shown is not None:
            console.print(shown, highlight=False, markup=False, soft_wrap=True)
        problems = problems_text(point, where)
        if problems is not None:  # a live upstream's, as `bench.py probe` names them
            console.print(problems, highlight=False, markup=False, soft_wrap=True)
    warning = stability.warning()
    if warning is not None:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    console.print(f"report: {report}", highlight=False)
    return run
