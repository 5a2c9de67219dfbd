"""`bench.py load`: the tokenwire server, locust run headless against it, one results folder.

The server starts on a free loopback port (`harness.measure.server_process`). Locust runs as
subprocesses of `scenarios/locustfile.py`: standalone, or one `--master` and N local
`--worker` processes (all on 127.0.0.1). In sequential order (the default for the mock)
each transport gets a locust run of its own, one after another, so each phase has its own
window and CPU figures; interleaved order runs every transport's users at once in one run.
Each locust run leaves its CSV files (`locust-<label>_stats.csv`, `_stats_history.csv`,
`_failures.csv`, `_exceptions.csv`), its HTML report and its log in the run folder, and its
per-token records in a part folder; the parts are merged into one `results.json` (the schema
of `bench.py run`), the HTML report is written, and the part folders are removed.

Bounded: locust's own `--run-time` (and the scenario's stop timeout) end each run; a hard
deadline on top stops every process this module started, by PID, if a run overstays.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from errors import LoadError, ResultsError
from harness.analyse.results import RunResult, environment, load_run, save_run
from harness.load.names import user_class_name
from harness.measure.records import PhaseRecord
from harness.measure.scenario import Scenario
from harness.measure.server_process import (
    PROJECT_ROOT,
    ServerProcess,
    running_server,
    stop_process,
)
from transports import TRANSPORTS

LOCUSTFILE = PROJECT_ROOT / "scenarios" / "locustfile.py"
# Beyond run time and stop timeout: locust's start-up, workers connecting, the workers'
# last reports, the timeline fetch and the results file.
OVERHEAD_ALLOWANCE_S = 90.0
WORKER_CONNECT_WAIT_S = 30
GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class LocustRun:
    """One locust invocation: its label (a transport, or `all`), and what it left behind."""

    label: str
    transports: tuple[str, ...]
    exit_code: int
    part_dir: Path
    csv_prefix: Path
    html: Path
    seconds: float


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def locust_base(scenario_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--tokenwire-scenario",
        str(scenario_file),
    ]


def master_command(
    scenario: Scenario,
    scenario_file: Path,
    transports: Sequence[str],
    server: ServerProcess,
    part_dir: Path,
    csv_prefix: Path,
    html: Path,
    workers: int,
    master_port: int,
) -> list[str]:
    """The standalone (workers == 0) or master locust command line."""
    load = scenario.load  # users and spawn rate per transport, as the locustfile's shape reads them
    command = [
        *locust_base(scenario_file),
        "--headless",
        "--host",
        server.base_url,
        "--users",
        str(load.users),
        "--spawn-rate",
        f"{load.spawn_rate:g}",
        "--run-time",
        f"{max(1, round(load.run_time_s))}s",
        "--stop-timeout",
        f"{load.stop_timeout_s:g}",
        "--csv",
        str(csv_prefix),
        "--html",
        str(html),
        "--only-summary",
        "--exit-code-on-error",
        "1",
        "--tokenwire-out",
        str(part_dir),
        "--tokenwire-server-pid",
        str(server.pid),
    ]
    if workers:
        command += [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(workers),
            "--expect-workers-max-wait",
            str(WORKER_CONNECT_WAIT_S),
        ]
    return [*command, *(user_class_name(TRANSPORTS.get(t)) for t in transports)]


def worker_command(scenario_file: Path, master_port: int) -> list[str]:
    return [
        *locust_base(scenario_file),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
    ]


def _spawn(command: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)


def run_locust(
    scenario: Scenario,
    scenario_file: Path,
    transports: Sequence[str],
    label: str,
    server: ServerProcess,
    run_dir: Path,
    workers: int,
    console: Console,
) -> LocustRun:
    """One headless locust run (a master and `workers` local workers, or standalone),
    bounded by a hard deadline; every process it starts is stopped by PID before it returns."""
    part_dir = run_dir / "parts" / label
    csv_prefix = run_dir / f"locust-{label}"
    html = run_dir / f"locust-{label}.html"
    port = free_port() if workers else 0
    deadline_s = scenario.load.run_time_s + scenario.load.stop_timeout_s + OVERHEAD_ALLOWANCE_S
    command = master_command(
        scenario, scenario_file, transports, server, part_dir, csv_prefix, html, workers, port
    )
    started = time.monotonic()
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        logs.append(open(run_dir / f"locust-{label}.log", "wb"))  # noqa: SIM115
        master = _spawn(command, logs[0])
        processes.append(master)
        for k in range(workers):
            logs.append(open(run_dir / f"locust-{label}-worker{k}.log", "wb"))  # noqa: SIM115
            processes.append(_spawn(worker_command(scenario_file, port), logs[-1]))
        role = f"master pid {master.pid} + {workers} workers" if workers else f"pid {master.pid}"
        console.print(
            f"locust {label}: {scenario.load.users} users per transport, "
            f"{scenario.load.shape} for {scenario.load.run_time_s:g} s ({role})",
            highlight=False,
        )
        try:
            exit_code = master.wait(deadline_s)
        except subprocess.TimeoutExpired:
            raise LoadError(
                f"locust ({label}) did not finish within {deadline_s:g} s; stopped it "
                f"(see {run_dir / f'locust-{label}.log'})"
            ) from None
        for worker in processes[1:]:
            try:
                worker.wait(GRACE_S)  # workers quit when the master tells them to
            except subprocess.TimeoutExpired:
                stop_process(worker, GRACE_S)
    finally:
        for process in reversed(processes):
            stop_process(process, GRACE_S)
        for log in logs:
            log.close()
    if not (part_dir / "results.json").exists():
        raise LoadError(
            f"locust ({label}) exited with status {exit_code} and wrote no results "
            f"(see {run_dir / f'locust-{label}.log'})"
        )
    return LocustRun(
        label, tuple(transports), exit_code, part_dir, csv_prefix, html, time.monotonic() - started
    )


@dataclass(frozen=True, slots=True)
class LocustRow:
    name: str
    requests: int
    failures: int
    median_ms: float
    p95_ms: float


def locust_rows(csv_prefix: Path) -> list[LocustRow]:
    """Locust's own per-name rows (`<transport> ttft`, `<transport> stream`)."""
    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [
            LocustRow(
                name=row["Name"],
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                median_ms=float(row["Median Response Time"] or 0),
                p95_ms=float(row["95%"] or 0) if row.get("95%") not in (None, "N/A") else 0.0,
            )
            for row in csv.DictReader(handle)
            if row["Name"] != "Aggregated"
        ]


def merge(
    runs: Sequence[LocustRun],
    scenario: Scenario,
    workers: int,
    started: dt.datetime,
    argv: list[str],
) -> RunResult:
    """One results folder's worth: every part's phases, the effective scenario, and what each
    locust run reported, under `metadata.load`."""
    phases: dict[str, PhaseRecord] = {}
    runs_meta: dict[str, Any] = {}
    for run in runs:
        part = load_run(run.part_dir)
        phases.update(part.phases)
        runs_meta[run.label] = {
            "transports": list(run.transports),
            "exit_code": run.exit_code,
            "seconds": round(run.seconds, 3),
            "csv_prefix": run.csv_prefix.name,
            "html": run.html.name,
            "locust": part.metadata.get("load", {}),
            "rows": [asdict(row) for row in locust_rows(run.csv_prefix)],
        }
    metadata = environment(started, dt.datetime.now(dt.UTC), argv)
    metadata["load"] = {
        "shape": scenario.load.shape,
        "users_per_transport": scenario.load.users,
        "workers": workers,
        "order": "interleaved" if scenario.interleaved else "sequential",
        "runs": runs_meta,
    }
    stack = scenario.stack_setup()  # the stack the server ran (the driver's runs record it too)
    ordered = {t: replace(phases[t], stack=stack) for t in scenario.transports if t in phases}
    return RunResult.single(metadata, scenario.to_json(), ordered)


def run_load(
    scenario: Scenario,
    scenario_file: Path,
    run_dir: Path,
    workers: int,
    console: Console,
    argv: list[str],
) -> tuple[RunResult, list[LocustRun]]:
    """Start the server, run locust (per transport, or once for all), merge, save."""
    started = dt.datetime.now(dt.UTC)
    run_dir.mkdir(parents=True, exist_ok=True)
    groups: list[tuple[str, tuple[str, ...]]] = (
        [("all", scenario.transports)]
        if scenario.interleaved
        else [(t, (t,)) for t in scenario.transports]
    )
    runs: list[LocustRun] = []
    with running_server(
        scenario.source, run_dir / "server.log", extra_args=scenario.server_args()
    ) as server:
        console.print(f"server pid {server.pid} on {server.base_url}", highlight=False)
        for label, transports in groups:
            runs.append(
                run_locust(
                    scenario, scenario_file, transports, label, server, run_dir, workers, console
                )
            )
    try:
        result = merge(runs, scenario, workers, started, argv)
    except ResultsError as exc:
        raise LoadError(f"cannot merge the locust runs' results: {exc}") from None
    save_run(result, run_dir)
    shutil.rmtree(run_dir / "parts")
    return result, runs
