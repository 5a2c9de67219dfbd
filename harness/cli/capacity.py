"""`bench.py capacity`: per transport, the most concurrent streams within an SLO."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from errors import UsageError
from harness.cli import run as run_command
from harness.cli.common import (
    add_out,
    add_scenario,
    add_source_flags,
    add_transports,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from harness.measure.scenario import Scenario

NAME = "capacity"
HELP = "find each transport's (and stack's) most concurrent streams within an SLO, per core"
DESCRIPTION = (
    "Per transport (and per server stack: --stack a,b): measure it unloaded (one stream at "
    "a time), then search for the largest number of concurrent streams whose run stays "
    "within the SLO: double from --start until a probe fails or --max passes, then bisect "
    "to within 10%. Every probe is a real benchmark run of that transport alone on a fresh "
    "server. Reports the capacity, the server cores busy at it, streams per server core, "
    "server memory per open stream (KiB) and the tokens per second delivered (for a "
    "threaded stack, whether its thread limit bound it); writes capacity.json, the charts "
    "and capacity.html to a run folder. A probe that fails on timing figures alone is "
    "re-run once (other work on the machine is noise) and its re-run's verdict counts. "
    "Definitions: harness/capacity/__init__.py."
)
MAX_PROBES = 30


def at_least_one(text: str) -> float:
    value = positive_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def probe_count(text: str) -> int:
    value = positive_int(text)
    if value > MAX_PROBES:
        raise argparse.ArgumentTypeError(f"at most {MAX_PROBES} probes per transport, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_scenario(
        parser,
        "scenario TOML (default: scenarios/default.toml); its requests and concurrency are "
        "the search's to set",
    )
    add_transports(parser, "search")
    run_command.add_transport_settings(parser)
    run_command.add_pinning(parser)
    run_command.add_stack(
        parser,
        "A comma list searches each transport on each stack (a cell each), then compares "
        "them in a table and the stack chart",
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        metavar="N",
        help="unmeasured warm-up streams before each probe (default: the scenario's)",
    )
    parser.add_argument(
        "--path",
        metavar="PATH",
        help="what stands between clients and server (one path: loopback, nginx, net:4g, ...; "
        "see `bench.py run --help`)",
    )
    add_out(parser, "run folder (default: results/<UTC time>-capacity/)")
    parser.add_argument(
        "--keep-probes",
        action="store_true",
        help="also save each probe's results.json (every raw record) under probes/ in the "
        "run folder, readable by `bench.py report`",
    )

    slo = parser.add_argument_group(
        "SLO (a probe passes when every limit holds; definitions: harness/capacity/__init__.py)"
    )
    slo.add_argument(
        "--slo-added-p99-ms",
        type=positive_float,
        default=50.0,
        metavar="MS",
        help="added delay p99 (client arrival minus server emit, per token) at most this "
        "(default 50). Short polling is allowed its poll interval on top (a token waits up to "
        "one interval for the next poll, by design), a webhook its batch_ms, unless --strict. "
        "The poll interval is the scenario's poll_interval_ms (--poll-interval-ms; 100 in "
        "scenarios/default.toml)",
    )
    slo.add_argument(
        "--strict",
        action="store_true",
        help="no allowances: not the delay a transport adds by design (short polling then "
        "fails even unloaded whenever its poll interval exceeds --slo-added-p99-ms, and "
        "the table says so), nor raised limits. Without it, a timing limit that a "
        "transport's unloaded probe already misses (a busy machine, a slow source) is "
        "raised by that unloaded value for its search, and the table says so",
    )
    slo.add_argument(
        "--slo-gap-error-p99-ms",
        type=positive_float,
        default=5.0,
        metavar="MS",
        help="source gap error p99 (how far the mock's emit gaps were from its plan) at most "
        "this (default 5): a server too busy to emit on time fails",
    )
    slo.add_argument(
        "--slo-lost",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="tokens lost plus streams failed, at most this (default 0)",
    )
    slo.add_argument(
        "--slo-ttft-factor",
        type=at_least_one,
        default=1.2,
        metavar="X",
        help="TTFT p99 at most X times its unloaded value (default 1.2). Unloaded is "
        "concurrency 1, measured first for each transport; since the mock draws each "
        "stream's first-token delay, the unloaded value is the p99 of the probe's own "
        "streams' planned first-token delays plus the transport's first-token overhead "
        "measured at concurrency 1",
    )
    slo.add_argument(
        "--slo-ttft-slack-ms",
        type=non_negative_float,
        default=5.0,
        metavar="MS",
        help="the TTFT limit is never tighter than the unloaded value plus this (default 5): "
        "with a near-instant source 20%% of the unloaded TTFT is below timer noise",
    )

    search = parser.add_argument_group("search (per transport)")
    search.add_argument(
        "--start", type=positive_int, default=50, metavar="C", help="first concurrency (default 50)"
    )
    search.add_argument(
        "--max",
        type=positive_int,
        default=4000,
        metavar="C",
        help="the most concurrent streams tried (default 4000)",
    )
    search.add_argument(
        "--max-probes",
        type=probe_count,
        default=8,
        metavar="N",
        help=f"search probes per transport (default 8, at most {MAX_PROBES}); the unloaded "
        "probe and re-runs of timing failures come on top",
    )
    search.add_argument(
        "--streams-per-probe",
        type=at_least_one,
        default=2.0,
        metavar="X",
        help="streams each probe runs, as a multiple of its concurrency (default 2), so that "
        "each probe has a steady part at full concurrency",
    )
    search.add_argument(
        "--unloaded-streams",
        type=positive_int,
        default=10,
        metavar="N",
        help="streams of the unloaded probe, one at a time (default 10)",
    )
    search.add_argument(
        "--time-budget-s",
        type=positive_float,
        default=1200.0,
        metavar="S",
        help="stop searching and report what was found after this long (default 1200); each "
        "transport gets an equal share of what is left when its turn comes, and always its "
        "unloaded probe",
    )
    add_source_flags(parser)


class _RunFlags(argparse.Namespace):
    """This command's flags as `bench.py run`'s: a run flag that capacity does not take
    (requests, concurrency, sweep, ...) reads as None, "not given"."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario `run` would build from these flags, checked for what a search needs."""
    scenario = run_command.scenario_from_args(_RunFlags(**vars(args)))
    if scenario.source.live:
        raise UsageError(
            "capacity needs a planned source (the mock, or a trace: --source trace:PATH): "
            "against a live model the search would find the upstream's limits, and the SLO's "
            "gap error and TTFT reference need the source's plan"
        )
    if scenario.sweep is not None and scenario.sweep.axis != "stack":  # stacks: the cells
        raise UsageError(
            f"capacity searches concurrency itself: drop the sweep over {scenario.sweep.axis} "
            "(the scenario's [sweep], --path with a comma list); a sweep over stacks "
            "(--stack a,b) searches each"
        )
    if scenario.client != "python":
        raise UsageError(
            f'capacity measures with the Python clients, not client = "{scenario.client}" '
            "(a browser holds too few streams); use the default client"
        )
    if getattr(scenario, "rate", 0):
        raise UsageError(
            "capacity searches concurrent streams in a closed loop: drop the scenario's rate"
        )
    if scenario.conversation.turns:
        raise UsageError(
            "capacity searches concurrent single streams: drop the scenario's [conversation] "
            "turns (bench.py run measures conversations)"
        )
    return scenario


def check_search(args: argparse.Namespace) -> None:
    if args.start > args.max:
        raise UsageError(
            f"--start {args.start} is above --max {args.max}: give a --start at most --max"
        )


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from harness.analyse.results import default_run_dir
    from harness.capacity.run import CapacitySettings, run_capacity
    from harness.capacity.search import SearchLimits
    from harness.capacity.slo import Slo
    from harness.present.console import make_console

    check_search(args)
    scenario = scenario_from_args(args)
    settings = CapacitySettings(
        slo=Slo(
            added_p99_ms=args.slo_added_p99_ms,
            gap_error_p99_ms=args.slo_gap_error_p99_ms,
            lost=args.slo_lost,
            ttft_factor=args.slo_ttft_factor,
            ttft_slack_ms=args.slo_ttft_slack_ms,
            strict=args.strict,
        ),
        limits=SearchLimits(start=args.start, maximum=args.max, max_probes=args.max_probes),
        streams_per_probe=args.streams_per_probe,
        unloaded_streams=args.unloaded_streams,
        time_budget_s=args.time_budget_s,
        keep_probes=args.keep_probes,
    )
    run_dir = args.out or default_run_dir(replace(scenario, name="capacity"))
    run_capacity(scenario, settings, run_dir, make_console(), argv)
    return 0
