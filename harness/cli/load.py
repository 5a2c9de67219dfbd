"""`bench.py load`: a locust load test of the transports against the tokenwire server."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

from errors import UsageError
from harness.cli.common import (
    PROJECT_ROOT,
    add_out,
    add_scenario,
    add_transports,
    count_up_to,
    positive_float,
    positive_int,
)
from harness.load.names import with_users
from harness.measure.scenario import Scenario, load_scenario, validated, with_overrides

NAME = "load"
HELP = "load-test the transports with locust (headless, optionally with local workers)"
DESCRIPTION = (
    "Start the server on a free loopback port and run scenarios/locustfile.py headless against "
    "it: users per transport from the scenario's [load] table (steady, step or spike), one "
    "locust run per transport (or one for all, in interleaved order). Writes locust's CSV and "
    "HTML next to results.json (every stream's per-token record, the schema of `bench.py "
    "run`) and report.html. Exit status 1 when any stream failed."
)
DEFAULT_LOAD_SCENARIO = PROJECT_ROOT / "scenarios" / "load-steady.toml"
MAX_WORKERS = 32
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def duration_s(text: str) -> float:
    """`90`, `90s`, `2m`, `1m30s` or `1h` -> seconds."""
    match = _DURATION.fullmatch(text.strip())
    if text.strip().replace(".", "", 1).isdigit():
        seconds = float(text)
    elif match and any(match.groups()):
        hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise argparse.ArgumentTypeError(f"expected a duration like 60s, 2m or 1m30s, got {text!r}")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    return seconds


worker_count = count_up_to(MAX_WORKERS, "at most {maximum} local workers, got {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario(parser, "scenario TOML with a [load] table (default: scenarios/load-steady.toml)")
    add_transports(parser, "load")
    parser.add_argument("--users", type=positive_int, metavar="N", help="users per transport")
    parser.add_argument(
        "--spawn-rate", type=positive_float, metavar="R", help="users started per second"
    )
    parser.add_argument(
        "--run-time",
        type=duration_s,
        metavar="DURATION",
        help="length of each locust run, e.g. 20s, 2m, 1m30s",
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=0,
        metavar="N",
        help="run one locust master and N local worker processes (default 0: one process)",
    )
    add_out(parser, "run folder (default: results/<UTC time>-<scenario name>/)")


def scenario_from_args(args: argparse.Namespace) -> tuple[Scenario, Path]:
    path = args.scenario or DEFAULT_LOAD_SCENARIO
    scenario = with_overrides(load_scenario(path), transports=args.transports)
    given = {"users": args.users, "spawn_rate": args.spawn_rate, "run_time_s": args.run_time}
    load = replace(scenario.load, **{k: v for k, v in given.items() if v is not None})
    if scenario.conversation.turns:
        raise UsageError(
            "the load test's users run single streams: drop the scenario's [conversation] "
            "turns (bench.py run measures conversations)"
        )
    scenario = with_users(scenario)
    if scenario.speaks_http3():
        raise UsageError(
            "the load test's users are blocking clients (locust), which speak HTTP/1.1 and 2: "
            "drop http = 3 (bench.py run --rate measures open-loop load over HTTP/3)"
        )
    return validated(replace(scenario, load=load)), path.resolve()


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.analyse.results import default_run_dir
    from harness.load.launch import LoadError, locust_rows, run_load
    from harness.present.console import make_console, summary_table
    from harness.present.report import write_report

    scenario, scenario_file = scenario_from_args(args)
    run_dir = args.out or default_run_dir(scenario)
    console = make_console()
    try:
        result, runs = run_load(scenario, scenario_file, run_dir, args.workers, console, argv)
    except LoadError as exc:
        print(f"bench.py: error: {exc}", file=sys.stderr)
        return 1
    report = write_report(result, run_dir)
    console.print(summary_table(result.summaries, f"load test {scenario.name} ({run_dir})"))
    failures = 0
    for locust_run in runs:
        for row in locust_rows(locust_run.csv_prefix):
            failures += row.failures
            console.print(
                f"  {row.name:<18} {row.requests:>6} events  {row.failures:>4} failures  "
                f"median {row.median_ms:g} ms",
                highlight=False,
            )
    console.print(f"locust CSV/HTML: {run_dir}/locust-*; report: {report}", highlight=False)
    if failures or any(r.exit_code != 0 for r in runs):
        print(
            f"bench.py: {failures} failed streams; see {run_dir}/locust-*_failures.csv",
            file=sys.stderr,
        )
        return 1
    return 0
