"""One benchmark run from start to finish: server up, driver, server down, results saved."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from rich.console import Console

from harness.console import RichProgress, summary_table
from harness.driver import run_benchmark
from harness.plots import draw_all
from harness.results import RunResult, environment, save_run
from harness.scenario import Scenario
from harness.server_process import running_server


def run_scenario(scenario: Scenario, run_dir: Path, console: Console, argv: list[str]) -> RunResult:
    started = dt.datetime.now(dt.UTC)
    console.print(
        f"[bold]tokenwire[/] scenario [cyan]{scenario.name}[/]: "
        f"{', '.join(scenario.transports)}; {scenario.requests} streams each at concurrency "
        f"{scenario.concurrency}; source preset {scenario.source.preset}; results in {run_dir}"
    )
    with running_server(scenario.source, run_dir / "server.log") as server:
        console.print(f"server pid {server.pid} on {server.base_url}")
        with RichProgress(console) as progress:
            phases = asyncio.run(run_benchmark(scenario, server, progress))
    run = RunResult(
        metadata=environment(started, dt.datetime.now(dt.UTC), argv),
        scenario=scenario.to_json(),
        phases={phase.transport: phase for phase in phases},
    )
    save_run(run, run_dir)
    draw_all(run, run_dir)
    console.print(summary_table(run.summaries, f"scenario {scenario.name} ({run_dir})"))
    return run
